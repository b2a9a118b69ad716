#include "processor/pcache/replacement.h"

#include <algorithm>

namespace remora {

const char* ReplacementName(Replacement r) {
  switch (r) {
    case Replacement::kAdaptive:
      return "adaptive";
    case Replacement::kRecency:
      return "recency";
    case Replacement::kBimodal:
      return "bimodal";
  }
  return "?";
}

// Leaders: one recency and one bimodal leader per group of `stride` sets,
// one pair per kLeaderSpacing sets, at least one and at most kMaxPairs.
// Within its group a leader's offset moves with the group number, so that
// an access pattern striding over sets does not meet only leaders of one
// kind. One set cannot duel: it uses recency.
SetDueling::SetDueling(Replacement mode, std::uint32_t nr_sets)
    : mode_(mode), roles_(nr_sets, Role::kFollower) {
  if (mode != Replacement::kAdaptive || nr_sets < 2) return;
  const std::uint32_t pairs = std::clamp<std::uint32_t>(nr_sets / kLeaderSpacing, 1, kMaxPairs);
  const std::uint32_t stride = nr_sets / pairs;  // >= 2
  const std::uint32_t half = stride / 2;
  for (std::uint32_t i = 0; i < pairs; ++i) {
    const std::uint32_t offset = i % half;
    roles_[i * stride + offset] = Role::kRecencyLeader;
    roles_[i * stride + half + offset] = Role::kBimodalLeader;
  }
}

bool SetDueling::Bimodal(std::uint32_t set) const {
  switch (mode_) {
    case Replacement::kRecency:
      return false;
    case Replacement::kBimodal:
      return true;
    case Replacement::kAdaptive:
      break;
  }
  switch (roles_[set]) {
    case Role::kRecencyLeader:
      return false;
    case Role::kBimodalLeader:
      return true;
    case Role::kFollower:
      break;
  }
  return FollowersBimodal();
}

void SetDueling::OnFill(std::uint32_t set) {
  if (mode_ != Replacement::kAdaptive) return;
  const Role role = roles_[set];
  if (role == Role::kFollower) return;
  const int step = role == Role::kRecencyLeader ? 1 : -1;
  int v = selector_.load(std::memory_order_relaxed);
  int next;
  do {
    next = std::clamp(v + step, 0, kSelectorMax);
    if (next == v) return;
  } while (!selector_.compare_exchange_weak(v, next, std::memory_order_relaxed));
  // A store made stale by a thread that stopped between its step and its
  // store is put right by the next leader fill beyond the threshold.
  if (next > kSelectorMid + kHysteresis) {
    if (!FollowersBimodal()) followers_bimodal_.store(true, std::memory_order_relaxed);
  } else if (next < kSelectorMid - kHysteresis) {
    if (FollowersBimodal()) followers_bimodal_.store(false, std::memory_order_relaxed);
  }
}

}  // namespace remora
