#include "common/private_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace remora {

Status EnsurePrivateDir(const std::string& dir, mode_t mode) {
  if (dir.empty()) return {Code::kInvalidArgument, "empty directory name"};
  if (::mkdir(dir.c_str(), mode) == 0) {
    // mkdir applied the umask; set exactly what was asked for.
    if (::chmod(dir.c_str(), mode) != 0)
      return {Code::kIoError, "chmod " + dir + ": " + std::strerror(errno)};
  } else if (errno != EEXIST) {
    return {Code::kIoError, "cannot create " + dir + ": " + std::strerror(errno)};
  }
  struct stat st {};
  // lstat: a symbolic link could point anywhere, including at a directory
  // someone else controls.
  if (::lstat(dir.c_str(), &st) != 0)
    return {Code::kIoError, "cannot inspect " + dir + ": " + std::strerror(errno)};
  if (!S_ISDIR(st.st_mode))
    return {Code::kPermissionDenied, dir + " is not a directory (a symbolic link?)"};
  const uid_t me = ::geteuid();
  if (st.st_uid != me && st.st_uid != 0)
    return {Code::kPermissionDenied,
            dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to this user"};
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char octal[8];
    std::snprintf(octal, sizeof(octal), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return {Code::kPermissionDenied, dir + " can be written by others (mode " + octal +
                                         "); use a directory only its owner can write"};
  }
  return Status::Ok();
}

Status PrivateRuntimeDir(std::string* dir, bool* shared_dir) {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  *shared_dir = false;
  if (xdg != nullptr && *xdg == '/') {
    *dir = xdg;
    *shared_dir = true;
  } else if (::geteuid() == 0) {
    *dir = "/run/remora";
  } else {
    *dir = "/tmp/remora-" + std::to_string(::geteuid());
  }
  return EnsurePrivateDir(*dir, 0700);
}

}  // namespace remora
