// The manager's unix socket: where it is, who may connect.
//
// The socket is only as private as its directory: whoever can write the
// directory can replace the socket with their own (a squatter would then be
// handed every program's userfaultfd). So the directory must be one only
// this user (or root) can write — created 0700 if missing (0750 with the
// socket's group) — and the socket gets its mode explicitly, never from the
// umask: 0600, or 0660 with a configured group. It is bound, chmod'ed and
// chown'ed before listen(), so nobody can connect while its mode is still
// the umask's.
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/private_dir.h"
#include "processor/runtime/processor_manager.h"
#include "processor/runtime/runtime_socket.h"

namespace remora {
namespace {

std::string DirectoryOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Status ProcessorManager::Listen() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& path = options_.socket_path;
  if (path.size() >= sizeof(addr.sun_path))
    return {Code::kInvalidArgument, "socket path too long: " + path};
  const bool group = options_.socket_group != static_cast<gid_t>(-1);
  const std::string dir = DirectoryOf(path);
  Status st = EnsurePrivateDir(dir, group ? 0750 : 0700);
  if (!st.ok()) return {st.code(), "refusing the socket directory: " + st.message()};
  if (group) {
    // Group members must reach the socket: the directory they traverse
    // gets the group too (it stays writable by its owner only).
    struct stat ds {};
    if (::stat(dir.c_str(), &ds) != 0)
      return {Code::kIoError, "cannot inspect " + dir + ": " + std::strerror(errno)};
    if (ds.st_gid != options_.socket_group || (ds.st_mode & (S_IRGRP | S_IXGRP)) == 0) {
      if (::chown(dir.c_str(), static_cast<uid_t>(-1), options_.socket_group) != 0 ||
          ::chmod(dir.c_str(), (ds.st_mode & 07777) | S_IRGRP | S_IXGRP) != 0)
        return {Code::kIoError,
                "cannot give " + dir + " the socket's group: " + std::strerror(errno)};
    }
  }
  std::strcpy(addr.sun_path, path.c_str());
  listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return {Code::kIoError, std::string("socket: ") + std::strerror(errno)};
  // A stale socket file from a manager that died is replaced; a live one is
  // not (connect succeeds) — two managers on one socket would split programs.
  if (int probe = ConnectSeqpacket(path); probe >= 0) {
    ::close(probe);
    return {Code::kBusy, "a processor manager already listens on " + path};
  }
  struct stat old {};
  if (::lstat(path.c_str(), &old) == 0) {
    if (!S_ISSOCK(old.st_mode))
      return {Code::kInvalidArgument, path + " exists and is not a socket"};
    ::unlink(path.c_str());
  }
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return {Code::kIoError, "cannot bind " + path + ": " + std::strerror(errno)};
  bound_ = true;  // ours to remove from here on
  if (group && ::chown(path.c_str(), static_cast<uid_t>(-1), options_.socket_group) != 0)
    return {Code::kIoError, "cannot give " + path + " its group: " + std::strerror(errno)};
  if (::chmod(path.c_str(), group ? 0660 : 0600) != 0)
    return {Code::kIoError, "chmod " + path + ": " + std::strerror(errno)};
  if (::listen(listen_fd_, 128) != 0)
    return {Code::kIoError, "cannot listen on " + path + ": " + std::strerror(errno)};
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) return {Code::kIoError, std::string("eventfd: ") + std::strerror(errno)};
  return Status::Ok();
}

}  // namespace remora
