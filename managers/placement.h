// Placement: which memory nodes get a new region. Infiniswap's rule (Gu et
// al., NSDI 2017): for each replica, draw two of the eligible nodes at random
// and take the one with more free memory. Two choices spread load almost as
// well as asking every node, and no node is picked by every processor at
// once the way "the emptiest node" would be.
//
// Free memory is the node's capacity minus what it last reported in use
// (every processor's pages) and minus a whole region for each region this
// processor placed on it since that report (placed, not yet written back,
// so not in the report yet). A node without room for a whole region is not
// eligible, nor is one that is down or lost: a node out of memory gets no
// new regions, so a program can use more memory than any single node has.
// (When no node is eligible, the pool asks every node for a fresh report
// and, failing that, settles for nodes with any room: ClusterTransport.)
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace remora {

struct NodeLoad {
  std::uint64_t capacity_pages = 0;
  std::uint64_t used_pages = 0;     // as the node last reported
  std::uint64_t pending_pages = 0;  // regions placed there since that report, in pages
  bool usable = true;               // up, and not reported full since its last report

  std::uint64_t free_pages() const {
    const std::uint64_t taken = used_pages + pending_pages;
    return taken >= capacity_pages ? 0 : capacity_pages - taken;
  }
};

// What a region of `region_pages` costs a memory node once it is full: its
// pages, the page-table entries the node charges to the same capacity
// (wire::kNodeMetaBytesPerPage each), and a page for its space's and ranges'
// entries. Placement asks a node for this much room, so that it never gives
// a node more regions than it can hold.
std::uint64_t RegionCostPages(std::uint64_t region_pages);

// Up to `replicas` distinct indexes into `nodes` for a region of
// `region_pages` of room (RegionCostPages), never one in `exclude` (replicas the region already
// has). Fewer (possibly none) when fewer nodes are eligible.
std::vector<std::size_t> ChooseNodes(const std::vector<NodeLoad>& nodes, std::uint64_t region_pages,
                                     int replicas, const std::vector<std::size_t>& exclude,
                                     std::mt19937_64* rng);

}  // namespace remora
