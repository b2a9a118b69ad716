// Read-ahead: after a miss that continues a sequential run, the manager
// fills the next pages too, before the program touches them. Linux keeps
// this apart from fault handling (mm/readahead.c, mm/memory.c); so does the
// runtime: fault.cc serves the fault, this decides what else to bring in.
//
// Two kinds of runs are followed per program. Sequential runs of misses,
// any number interleaved (ProcessSession::sequential_misses,
// sequential_streams.h): the window doubles with each miss that extends a
// run, up to readahead_max pages, and the pages go in with FillRun, the
// missing fault's own fill, in runs of up to kFillRunMax pages: one zap
// wait, one read per stretch of one source and one UFFDIO_COPY per stretch
// installed alike. And each thread's strided walk (a column of a matrix),
// whose misses skip the steps still resident (ProcessSession::stride_walks,
// stride_walks.h): a few strides ahead, resident pages are marked used and
// missing ones read ahead, a run of one each.
#pragma once

#include "processor/runtime/fault.h"

namespace remora {

// Reads ahead of vmf.key.uva, the page a missing fault has just filled (its
// thread already runs again: UFFDIO_COPY woke it). A write run is read ahead
// writable and dirty: it will be written next. Pages already resident are
// stepped over; a failure only ends the read-ahead (the fault was served).
// The caller holds the session's fault gate, as for the fault.
void Readahead(const Fault& vmf);

}  // namespace remora
