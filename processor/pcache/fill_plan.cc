// FillPlan's grouping of a decided run into stretches (fill_plan.h).
#include "processor/pcache/fill_plan.h"

namespace remora {

void FillPlan::Group() {
  nr_stretches_ = 0;
  for (std::uint32_t i = 0; i < n_;) {
    std::uint32_t j = i + 1;
    while (j < n_ && source_[j] == source_[i]) ++j;
    stretches_[nr_stretches_++] = {source_[i], i, j - i};
    i = j;
  }
}

}  // namespace remora
