#include "managers/placement.h"

#include <algorithm>

#include "remora/protocol.h"
#include "remora/types.h"

namespace remora {

std::uint64_t RegionCostPages(std::uint64_t region_pages) {
  const std::uint64_t meta = region_pages * wire::kNodeMetaBytesPerPage;
  return region_pages + (meta + kPageSize - 1) / kPageSize + 1;
}

std::vector<std::size_t> ChooseNodes(const std::vector<NodeLoad>& nodes, std::uint64_t region_pages,
                                     int replicas, const std::vector<std::size_t>& exclude,
                                     std::mt19937_64* rng) {
  std::vector<std::size_t> eligible;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!nodes[i].usable || nodes[i].free_pages() < region_pages) continue;
    if (std::find(exclude.begin(), exclude.end(), i) != exclude.end()) continue;
    eligible.push_back(i);
  }
  std::vector<std::size_t> chosen;
  while (static_cast<int>(chosen.size()) < replicas && !eligible.empty()) {
    std::size_t pick = 0;
    if (eligible.size() > 1) {
      std::uniform_int_distribution<std::size_t> d(0, eligible.size() - 1);
      std::size_t a = d(*rng), b = d(*rng);
      while (b == a) b = d(*rng);
      pick = nodes[eligible[a]].free_pages() >= nodes[eligible[b]].free_pages() ? a : b;
    }
    chosen.push_back(eligible[pick]);
    eligible.erase(eligible.begin() + static_cast<std::ptrdiff_t>(pick));
  }
  return chosen;
}

}  // namespace remora
