// The shim: a small library preloaded into every program run under Remora
// (LD_PRELOAD, together with a real allocator so malloc traffic arrives here
// as mmap calls). It
//
//   * opens a userfaultfd, hands a copy to the processor manager (Hello) and
//     keeps its own, so faults can never silently turn into zero pages;
//   * registers the program's private memory as it is mapped (shim_mmap.cc):
//     anonymous private mmaps, and private file mappings converted to
//     anonymous memory the manager fills from the file;
//   * tells the manager before memory goes away (munmap, madvise DONTNEED,
//     MAP_FIXED over it, mremap), so lines and memory-node pages are freed;
//   * runs the agent thread (shim_agent.cc) that zaps pages the manager
//     evicted and stops the program if the manager dies;
//   * wraps fork() (shim_fork.cc) so the manager can write-protect what
//     parent and child will share before the kernel copies the page tables,
//     and hand the child its own connections and uffd.
//
// What stays local, and why (docs/runtime.md, "What stays local", has the
// bounds): memory mapped before the shim attaches (the loader's, program
// and library data; the shim attaches on the first mmap that reaches it),
// thread stacks and other mappings libc makes with its internal mmap (no
// symbol to interpose), MAP_SHARED memory (shared with other processes or
// files: no single owner to page it), huge-page and grows-down mappings,
// executable file mappings, and brk/sbrk memory.
//
// Everything here avoids malloc on the mmap path: the allocator calls mmap,
// so allocating inside it would recurse.
#pragma once

#include <cstddef>
#include <cstdint>

#include "processor/abi/runtime_protocol.h"

namespace remora::shim {

// True once the manager accepted this program (set before any mapping is
// registered and before the agent thread is created, never cleared: a lost
// manager ends the program instead).
bool Active();
// Called by the interposed mmap while not Active: attaches to the manager
// if that has not been tried yet (the first mmap may come before the
// shim's constructor runs).
void BeforeFirstMmap();
int Uffd();

// Raw system calls, bypassing the interposed symbols.
void* RawMmap(void* addr, std::size_t len, int prot, int flags, int fd, long off);
int RawMunmap(void* addr, std::size_t len);
int RawMadvise(void* addr, std::size_t len, int advice);
void* RawMremap(void* old_addr, std::size_t old_len, std::size_t new_len, int flags,
                void* new_addr);

// One request/reply on the control connection (serialised across threads).
// fd >= 0 is passed along. Returns the reply code (0 = ok). A broken
// connection is fatal.
int Call(const rt::Request& req, int fd = -1);
int CallWithFds(const rt::Request& req, const int* fds, int nfds, rt::Reply* reply);
// The reason that came with the last reply on the control connection ("" if
// none): valid under the control lock until the next call.
const char* ReplyText();

// Fork (shim_fork.cc). ForkSupported: the kernel granted
// UFFD_FEATURE_EVENT_FORK. SetInFork marks a fork made through the shim, so
// the atfork child handler leaves the child to BecomeForkedChild, which
// swaps the parent's connections and uffd for the child's own (`control`,
// `agent`: socketpair ends the parent passed to the manager; `fresh`: the
// parent had no registered memory, so the child attaches as a new program)
// and re-makes the control lock the forking thread held.
bool ForkSupported();
void SetInFork(bool in_fork);
void BecomeForkedChild(int control, int agent, bool fresh);

// Writes "remora: <what>" to stderr and ends the program with
// rt::kFatalExitCode. Never returns; async-signal-safe.
[[noreturn]] void Fatal(const char* what);

// Starts the agent thread on the agent connection `fd`.
void StartAgent(int fd);
// In a forked child (where the agent thread does not exist): closes the
// inherited agent connection.
void CloseAgentInChild();

// The registered ranges (shim_ranges.cc), guarded by the control lock.
void LockControl();
void UnlockControl();

}  // namespace remora::shim
