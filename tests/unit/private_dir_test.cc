// EnsurePrivateDir and PrivateRuntimeDir (common/private_dir.h): where
// sockets and secrets may live. Run as root, the tests also hand directories
// to another uid to play the squatter.
#include "common/private_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace remora {
namespace {

class PrivateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/remora-private-dir-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)std::system(("rm -rf '" + dir_ + "'").c_str()); }
  mode_t ModeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  std::string dir_;
};

TEST_F(PrivateDirTest, CreatesTheDirectoryWithExactlyItsModeWhateverTheUmask) {
  const mode_t old = ::umask(0);
  EXPECT_TRUE(EnsurePrivateDir(dir_ + "/a").ok());
  EXPECT_EQ(ModeOf(dir_ + "/a"), 0700u);
  EXPECT_TRUE(EnsurePrivateDir(dir_ + "/b", 0750).ok());
  EXPECT_EQ(ModeOf(dir_ + "/b"), 0750u);
  ::umask(077);
  EXPECT_TRUE(EnsurePrivateDir(dir_ + "/c", 0750).ok());
  EXPECT_EQ(ModeOf(dir_ + "/c"), 0750u);
  ::umask(old);
  // An existing directory of ours is accepted as it is.
  EXPECT_TRUE(EnsurePrivateDir(dir_ + "/a").ok());
}

TEST_F(PrivateDirTest, RefusesADirectoryOthersCanWrite) {
  const std::string d = dir_ + "/open";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(d.c_str(), 01777), 0);  // like /tmp itself
  Status st = EnsurePrivateDir(d);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("can be written by others"), std::string::npos) << st.ToString();
  ASSERT_EQ(::chmod(d.c_str(), 0770), 0);
  EXPECT_FALSE(EnsurePrivateDir(d).ok());
  EXPECT_FALSE(EnsurePrivateDir("/tmp").ok());
}

TEST_F(PrivateDirTest, RefusesASymbolicLinkAndAFile) {
  ASSERT_EQ(::mkdir((dir_ + "/real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((dir_ + "/real").c_str(), (dir_ + "/link").c_str()), 0);
  EXPECT_EQ(EnsurePrivateDir(dir_ + "/link").code(), Code::kPermissionDenied);
  ASSERT_EQ(::close(::creat((dir_ + "/file").c_str(), 0600)), 0);
  EXPECT_FALSE(EnsurePrivateDir(dir_ + "/file").ok());
}

TEST_F(PrivateDirTest, RefusesAnotherUsersDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  const std::string d = dir_ + "/theirs";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  ASSERT_EQ(::chown(d.c_str(), 64123, 64123), 0);
  Status st = EnsurePrivateDir(d);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("belongs to uid 64123"), std::string::npos) << st.ToString();
}

TEST_F(PrivateDirTest, RuntimeDirPrefersXdgAndVerifiesIt) {
  const char* saved = std::getenv("XDG_RUNTIME_DIR");
  const std::string keep = saved ? saved : "";
  ASSERT_EQ(::setenv("XDG_RUNTIME_DIR", dir_.c_str(), 1), 0);
  std::string got;
  bool shared = false;
  EXPECT_TRUE(PrivateRuntimeDir(&got, &shared).ok());
  EXPECT_EQ(got, dir_);
  EXPECT_TRUE(shared);
  // A squatted XDG_RUNTIME_DIR (writable by others) is refused, not used.
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  EXPECT_FALSE(PrivateRuntimeDir(&got, &shared).ok());
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  if (saved)
    ::setenv("XDG_RUNTIME_DIR", keep.c_str(), 1);
  else
    ::unsetenv("XDG_RUNTIME_DIR");
}

}  // namespace
}  // namespace remora
