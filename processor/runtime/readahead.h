// Read-ahead: after a miss that continues a sequential run, the manager
// fills the next pages too, before the program touches them. Linux keeps
// this apart from fault handling (mm/readahead.c, mm/memory.c); so does the
// runtime: fault.cc serves the fault, this decides what else to bring in.
//
// Runs of misses are told apart per program by ProcessSession::miss_streams
// (a few independent streams, so threads each scanning their own chunk, or a
// loop reading one array along rows and another down columns, are all
// recognised; stream_detector.h). The window doubles with each miss that
// extends a stream, up to readahead_max steps. A sequential stream's pages
// go in with FillRun, the missing fault's own fill, in runs of up to
// kFillRunMax pages: one zap wait, one read per stretch of one source and
// one UFFDIO_COPY per stretch installed alike. A strided stream (a constant
// distance other than one page between misses, such as one page per row of
// a matrix column) is read ahead at its predicted pages, a run of one each.
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
