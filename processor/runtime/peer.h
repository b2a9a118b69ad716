// Who is on the other end of a manager connection, from the kernel rather
// than from anything the client says.
//
// Every connection to the manager's socket is pinned to its peer at accept:
// the uid, gid and pid from SO_PEERCRED and a pidfd for that process
// (SO_PEERPIDFD where the kernel has it, else pidfd_open of the credential's
// pid, then checked still alive). A session belongs to that uid and pid;
// a pid a client declares is never used. The pidfd is what makes the pid
// safe to use later: a /proc read or process_vm_readv of the pid followed by
// PeerAlive() true was about this process, not a later one reusing its pid,
// and the only signal the manager ever sends goes through a pidfd.
//
// A userfaultfd handed over is accepted only if it is one (its anon-inode
// name, its filesystem, and a UFFDIO_API that says the handshake is done)
// and the peer itself holds it: one of the peer's descriptors is the same
// inode (each uffd has an inode of its own). So nobody can pass a pipe of
// forged fault messages, or another process's uffd they could not get
// without already being able to ptrace it.
#pragma once

#include <sys/types.h>

#include <string>

#include "remora/status.h"

namespace remora {

struct Peer {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;
  int pidfd = -1;  // owned by whoever holds the Peer (ClosePeer)

  bool root() const { return uid == 0; }
  // May this peer see, or act on, what `owner` owns? Root sees everything.
  bool MaySee(uid_t owner) const { return uid == 0 || uid == owner; }
};

// The credentials of a connected unix socket's peer and a pidfd for it.
Status GetPeer(int sock, Peer* out);
void ClosePeer(Peer* peer);

// True while the process behind `pidfd` exists (a zombie counts).
bool PeerAlive(int pidfd);

// Checks that `fd` is an initialised userfaultfd held by `peer` (above).
Status CheckPeerUserfaultfd(int fd, const Peer& peer, int peer_fd_number);

// A forked child `child_pid` announced by `parent` (ForkDone): the child
// must be a child of the parent's process and run as the parent's uid
// (unless the parent is root). On success *child is the child, with a pidfd.
Status CheckForkedChild(pid_t child_pid, const Peer& parent, Peer* child);

// A thread `tid` of a process forked by `parent` (the kernel named it in a
// fault message): a thread pidfd for it, if it belongs to a child of the
// parent's process. -1 otherwise.
int ChildThreadPidfd(pid_t tid, const Peer& parent);

// Sends `sig` through a pidfd (never by pid). 0 or an errno.
int SignalPidfd(int pidfd, int sig);

}  // namespace remora
