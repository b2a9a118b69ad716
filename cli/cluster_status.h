// `remora stats --cluster FILE`: every memory node of a cluster description
// as it reports itself (reachable, capacity, pages in use, address spaces),
// and, when a processor manager answers on `processor_socket`, that
// processor's view of each node: its state there, the regions it placed,
// the pages it read and wrote, errors and reconnects, and re-replication.
#pragma once

#include <string>

namespace remora::cli {

// Returns the exit code: 0, 1 if a node or the processor could not be
// read, 2 for a bad description.
int PrintClusterStatus(const std::string& cluster_file, const std::string& processor_socket,
                       bool json, int timeout_ms);

}  // namespace remora::cli
