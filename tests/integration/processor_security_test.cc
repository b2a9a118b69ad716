// The processor manager under attack (docs/security.md, "Processor manager
// and shim"): a real `remora processor`, real sockets, real programs.
//
// Each test performs an attack that used to work — another user attaching
// to or reading a root program's session, a forged pid, a pipe of forged
// fault messages passed as the userfaultfd, a second agent hello, silent
// connections, a world-connectable socket, a slow munmap of a huge
// reservation — and checks it is refused while well-behaved programs keep
// being served byte for byte.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "processor/abi/fd_passing.h"
#include "processor/abi/runtime_protocol.h"
#include "run_util.h"

namespace remora::testing {
namespace {

constexpr uid_t kOtherUid = 64123;  // no such user: a stranger on the node

// ---- a raw client of the manager's protocol ----

int Connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

struct Answer {
  bool got = false;  // a reply arrived (else the connection closed or timed out)
  rt::Reply reply{};
  std::string text;
};

Answer Exchange(int sock, const rt::Request& req, int fd = -1) {
  Answer a;
  if (rt::SendWithFds(sock, &req, sizeof(req), &fd, fd >= 0 ? 1 : 0) !=
      static_cast<ssize_t>(sizeof(req)))
    return a;
  std::vector<char> buf(1 << 20);
  const ssize_t n = ::recv(sock, buf.data(), buf.size(), 0);
  if (n < static_cast<ssize_t>(sizeof(rt::Reply))) return a;
  std::memcpy(&a.reply, buf.data(), sizeof(a.reply));
  a.text.assign(buf.data() + sizeof(rt::Reply), static_cast<std::size_t>(n) - sizeof(rt::Reply));
  a.got = true;
  return a;
}

// A userfaultfd with its handshake done, as the shim makes one.
int OpenUffd() {
  // UFFD_USER_MODE_ONLY: what an unprivileged user may open.
  int fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | 1));
  if (fd < 0) return -1;
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(fd, UFFDIO_API, &api) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A program's two connections, attached the way the shim attaches.
struct RawProgram {
  int control = -1, agent = -1, uffd = -1;
  std::uint64_t session = 0;
  Answer hello, agent_hello;
  ~RawProgram() {
    for (int fd : {control, agent, uffd}) {
      if (fd >= 0) ::close(fd);
    }
  }
};

// Hello (claiming `claimed_pid`) and, if it is accepted, AgentHello.
void Attach(const std::string& sock, pid_t claimed_pid, RawProgram* p) {
  p->uffd = OpenUffd();
  p->control = Connect(sock);
  if (p->uffd < 0 || p->control < 0) return;
  rt::Request hello;
  hello.op = rt::Op::kHello;
  hello.pid = claimed_pid;
  hello.own_fd = p->uffd;
  p->hello = Exchange(p->control, hello, p->uffd);
  if (!p->hello.got || p->hello.reply.code != 0) return;
  p->session = p->hello.reply.session;
  p->agent = Connect(sock);
  rt::Request ah;
  ah.op = rt::Op::kAgentHello;
  ah.pid = claimed_pid;
  ah.session = p->session;
  p->agent_hello = Exchange(p->agent, ah);
}

Answer AgentHello(const std::string& sock, std::uint64_t session, pid_t pid, int* keep = nullptr) {
  int fd = Connect(sock);
  rt::Request ah;
  ah.op = rt::Op::kAgentHello;
  ah.pid = pid;
  ah.session = session;
  Answer a = Exchange(fd, ah);
  if (keep != nullptr)
    *keep = fd;
  else
    ::close(fd);
  return a;
}

nlohmann::json StatsOf(const std::string& sock) {
  int fd = Connect(sock);
  rt::Request req;
  req.op = rt::Op::kStats;
  Answer a = Exchange(fd, req);
  ::close(fd);
  if (!a.got || a.reply.code != 0) return {};
  return nlohmann::json::parse(a.text, nullptr, false);
}

// The sessions a stats reply lists, as (id, pid, uid).
struct SessionRow {
  std::uint64_t id;
  pid_t pid;
  uid_t uid;
};
std::vector<SessionRow> SessionsIn(const nlohmann::json& j) {
  std::vector<SessionRow> rows;
  if (!j.is_object() || !j.contains("sessions")) return rows;
  for (const auto& s : j["sessions"])
    rows.push_back({s["id"].get<std::uint64_t>(), s["pid"].get<pid_t>(), s["uid"].get<uid_t>()});
  return rows;
}

// utime + stime of a process, in clock ticks.
long CpuTicks(pid_t pid) {
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// True while the connection is open (no hang-up within `ms`).
bool StillOpen(int fd, int ms) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, ms) == 0;
}

// Runs `fn` in a child process as kOtherUid (no groups but kOtherUid);
// returns what it wrote to its pipe.
template <typename Fn>
std::string AsOtherUser(Fn fn) {
  int p[2];
  if (::pipe(p) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    const gid_t g = kOtherUid;
    if (::setgroups(1, &g) != 0 || ::setresgid(g, g, g) != 0 ||
        ::setresuid(kOtherUid, kOtherUid, kOtherUid) != 0)
      ::_exit(3);
    const std::string out = fn();
    (void)!::write(p[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) out += " [child status " + std::to_string(st) + "]";
  return out;
}

class ProcessorSecurityTest : public RunDirTest {
 protected:
  void SetUp() override {
    RunDirTest::SetUp();
    // Others may traverse the test's directory (to reach a group socket).
    ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
    sock_dir_ = dir_ + "/run";
    sock_ = sock_dir_ + "/processor.sock";
  }
  void TearDown() override {
    if (manager_.pid > 0) {
      EXPECT_EQ(StopProcess(manager_.pid), 0) << "the manager did not end well";
    }
    RunDirTest::TearDown();
  }
  // `remora processor` with a small pcache (so programs evict) and `extra`.
  void StartManager(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--pcache", "2M", "--ways", "8", "--log-level", "error"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string error;
    manager_ = StartProcessor(sock_, args, dir_, &error);
    ASSERT_GT(manager_.pid, 0) << error;
  }
  bool ManagerAlive() {
    return manager_.pid > 0 && ::kill(manager_.pid, 0) == 0 && StatsOf(sock_).is_object();
  }

  // mem_stress natively and under the manager, outputs compared byte for
  // byte; `during` runs while the managed one does.
  void RunProgramAlongside(const std::function<void()>& during, const std::string& mib = "24") {
    const std::vector<std::string> prog = {REMORA_MEM_STRESS, mib, "2", "3"};
    Result native = RunProgram(prog, dir_, "native");
    ASSERT_TRUE(native.Ok()) << native.Describe();
    std::vector<std::string> cmd = {RemoraBinary(), "run", "--processor", sock_, "--"};
    cmd.insert(cmd.end(), prog.begin(), prog.end());
    const auto t0 = Clock::now();
    Spawned managed = Spawn(cmd, dir_, "managed");
    if (during) during();
    Result r = Wait(managed, std::chrono::seconds(300), t0);
    ASSERT_TRUE(r.Ok()) << r.Describe();
    EXPECT_EQ(r.out, native.out) << "the managed program's output differs from the native run";
  }

  std::string sock_dir_, sock_;
  Spawned manager_;
};

// Another user reaches the socket (its group lets it) but gets nothing of
// root's: it cannot join a root session even knowing its id and pid, its
// stats list no root session, and the pid it claims is ignored.
TEST_F(ProcessorSecurityTest, OtherUserCannotAttachToOrReadRootSessions) {
  StartManager({"--socket-group", std::to_string(kOtherUid)});
  RawProgram root;
  Attach(sock_, ::getpid(), &root);
  ASSERT_TRUE(root.hello.got && root.hello.reply.code == 0) << root.hello.text;
  ASSERT_TRUE(root.agent_hello.got && root.agent_hello.reply.code == 0) << root.agent_hello.text;
  const std::uint64_t root_session = root.session;
  const pid_t me = ::getpid();

  RunProgramAlongside([&] {
    const std::string report = AsOtherUser([&]() -> std::string {
      std::string r;
      // 1. Join root's session with its exact id and pid.
      Answer a = AgentHello(sock_, root_session, me);
      r += "join=" + std::string(a.got && a.reply.code == 0 ? "accepted" : "refused") + "\n";
      // 2. Its own session, claiming root's pid.
      RawProgram mine;
      Attach(sock_, me, &mine);
      r += "own=" +
           std::string(mine.agent_hello.got && mine.agent_hello.reply.code == 0
                           ? "attached"
                           : "failed:" + mine.hello.text) +
           "\n";
      // 3. What stats show this user.
      nlohmann::json j = StatsOf(sock_);
      for (const SessionRow& s : SessionsIn(j)) {
        r += "session id=" + std::to_string(s.id) + " pid=" + std::to_string(s.pid) +
             " uid=" + std::to_string(s.uid) + "\n";
      }
      r += "attached=" +
           std::to_string(j.is_object() ? j["counters"].value("processes_attached", -1) : -1) +
           "\n";
      r += "self=" + std::to_string(::getpid()) + "\n";
      return r;
    });
    SCOPED_TRACE(report);
    EXPECT_NE(report.find("join=refused"), std::string::npos);
    EXPECT_NE(report.find("own=attached"), std::string::npos);
    EXPECT_EQ(report.find("uid=0"), std::string::npos) << "another user saw a root session";
    EXPECT_EQ(report.find("id=" + std::to_string(root_session)), std::string::npos);
    const auto self_at = report.find("self=");
    ASSERT_NE(self_at, std::string::npos);
    const std::string self = report.substr(self_at + 5, report.find('\n', self_at) - self_at - 5);
    // Exactly its own session, under its own pid (not the claimed one).
    EXPECT_NE(report.find("pid=" + self + " uid=" + std::to_string(kOtherUid)), std::string::npos);
    EXPECT_EQ(report.find("pid=" + std::to_string(me)), std::string::npos);
    EXPECT_NE(report.find("attached=1\n"), std::string::npos);
  });

  // Root's session is untouched, and root sees every session.
  EXPECT_TRUE(StillOpen(root.control, 0));
  bool found = false;
  for (const SessionRow& s : SessionsIn(StatsOf(sock_)))
    found |= s.id == root_session && s.pid == me;
  EXPECT_TRUE(found) << "root's session is gone or lost its pid";
  EXPECT_TRUE(ManagerAlive());
}

// A pid in a hello is ignored: the session belongs to the process that
// connected, whatever it claims.
TEST_F(ProcessorSecurityTest, ForgedPidIsIgnored) {
  StartManager();
  const pid_t victim = ::getppid();  // some other root process
  RawProgram p;
  Attach(sock_, victim, &p);
  ASSERT_TRUE(p.agent_hello.got && p.agent_hello.reply.code == 0) << p.hello.text;
  std::vector<SessionRow> rows = SessionsIn(StatsOf(sock_));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].pid, ::getpid());
  EXPECT_NE(rows[0].pid, victim);
  // Session ids are random 64-bit numbers, not a counter from 1.
  EXPECT_GT(rows[0].id, 1u << 20);
}

// A pipe passed as the "userfaultfd", full of forged fault messages that
// name an unrelated root process: refused before a byte is read, nothing is
// signalled, no thread spins, and programs keep being served.
TEST_F(ProcessorSecurityTest, PipePassedAsUffdIsRefusedAndNothingIsSignalled) {
  StartManager();
  const pid_t sentinel = ::fork();
  if (sentinel == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(sentinel, 0);
  int pfd[2];
  ASSERT_EQ(::pipe(pfd), 0);
  // A FORK event naming descriptor 0..15 and page faults from the sentinel.
  std::vector<uffd_msg> forged;
  for (int fd = 0; fd < 16; ++fd) {
    uffd_msg m{};
    m.event = UFFD_EVENT_FORK;
    m.arg.fork.ufd = static_cast<__u32>(fd);
    forged.push_back(m);
  }
  for (int i = 0; i < 16; ++i) {
    uffd_msg m{};
    m.event = UFFD_EVENT_PAGEFAULT;
    m.arg.pagefault.address = 0x10000 + i * 4096;
    m.arg.pagefault.feat.ptid = static_cast<__u32>(sentinel);
    forged.push_back(m);
  }
  ASSERT_EQ(::write(pfd[1], forged.data(), forged.size() * sizeof(uffd_msg)),
            static_cast<ssize_t>(forged.size() * sizeof(uffd_msg)));
  ::close(pfd[1]);  // and then end-of-file, forever

  int control = Connect(sock_);
  rt::Request hello;
  hello.op = rt::Op::kHello;
  hello.own_fd = pfd[0];
  Answer a = Exchange(control, hello, pfd[0]);
  EXPECT_TRUE(a.got);
  EXPECT_NE(a.reply.code, 0);
  EXPECT_NE(a.text.find("not a userfaultfd"), std::string::npos) << a.text;
  ::close(control);

  // A real uffd that was never initialised is refused too.
  const int raw = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  ASSERT_GE(raw, 0);
  control = Connect(sock_);
  hello.own_fd = raw;
  a = Exchange(control, hello, raw);
  EXPECT_TRUE(a.got && a.reply.code != 0) << a.text;
  ::close(control);
  ::close(raw);

  // A real, initialised uffd that is not the one the program holds (it
  // names another descriptor of its own).
  const int uffd = OpenUffd();
  ASSERT_GE(uffd, 0);
  control = Connect(sock_);
  hello.own_fd = pfd[0];
  a = Exchange(control, hello, uffd);
  EXPECT_TRUE(a.got && a.reply.code != 0) << a.text;
  ::close(control);
  ::close(uffd);
  ::close(pfd[0]);

  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(ProcessGone(sentinel)) << "the manager signalled an unrelated process";
  ::kill(sentinel, SIGKILL);
  ::waitpid(sentinel, nullptr, 0);
  EXPECT_TRUE(SessionsIn(StatsOf(sock_)).empty());
  // No fault thread spins on a fake descriptor: the manager is idle.
  const long before = CpuTicks(manager_.pid);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_LT(CpuTicks(manager_.pid) - before, 30) << "the manager is busy with nothing to do";
  RunProgramAlongside({});
  EXPECT_TRUE(ManagerAlive());
}

// A second agent hello for a live session, and a malformed request on a
// control connection, each end that session — only it: the manager and a
// program running alongside go on.
TEST_F(ProcessorSecurityTest, ProtocolAbuseEndsOnlyThatSession) {
  StartManager();
  RunProgramAlongside([&] {
    RawProgram dup;
    Attach(sock_, 0, &dup);
    ASSERT_TRUE(dup.agent_hello.got && dup.agent_hello.reply.code == 0) << dup.hello.text;
    Answer second = AgentHello(sock_, dup.session, ::getpid());
    EXPECT_TRUE(!second.got || second.reply.code != 0) << "a second agent was accepted";
    EXPECT_FALSE(StillOpen(dup.control, 5000)) << "the session outlived a duplicate agent";

    RawProgram bad;
    Attach(sock_, 0, &bad);
    ASSERT_TRUE(bad.agent_hello.got && bad.agent_hello.reply.code == 0) << bad.hello.text;
    rt::Request wrong;
    wrong.op = rt::Op::kMap;
    wrong.session = bad.session;
    wrong.start = 0x12345;  // misaligned
    wrong.len = 4096;
    Answer a = Exchange(bad.control, wrong);
    EXPECT_TRUE(!a.got || a.reply.code != 0);
    EXPECT_FALSE(StillOpen(bad.control, 5000)) << "the session outlived a malformed request";

    // Out of order: a Hello on a live control connection.
    RawProgram late;
    Attach(sock_, 0, &late);
    ASSERT_TRUE(late.agent_hello.got && late.agent_hello.reply.code == 0);
    rt::Request again;
    again.op = rt::Op::kHello;
    again.session = late.session;
    (void)Exchange(late.control, again);
    EXPECT_FALSE(StillOpen(late.control, 5000));
    EXPECT_TRUE(ManagerAlive());
  });
  EXPECT_TRUE(ManagerAlive());
}

// Clients that connect and say nothing hold up nobody: with 16 of them
// connected, `remora run --processor` starts and runs its program.
TEST_F(ProcessorSecurityTest, SilentConnectionsDoNotBlockOthers) {
  StartManager();
  std::vector<int> silent;
  for (int i = 0; i < 16; ++i) {
    const int fd = Connect(sock_);
    ASSERT_GE(fd, 0);
    silent.push_back(fd);
  }
  const auto t0 = Clock::now();
  nlohmann::json j = StatsOf(sock_);
  EXPECT_TRUE(j.is_object());
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2))
      << "a stats request waited for silent peers";
  RunProgramAlongside({}, "16");
  for (int fd : silent) ::close(fd);
}

// The socket's mode does not come from the umask, and its directory is one
// only its owner can write; a directory others can write, or another user
// owns, is refused.
TEST_F(ProcessorSecurityTest, SocketAndDirectoryModesUnderUmask000) {
  const mode_t old = ::umask(0);
  StartManager();
  struct stat st {};
  ASSERT_EQ(::stat(sock_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat(sock_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(StopProcess(manager_.pid), 0);
  manager_.pid = -1;

  // With a group: 0660 and a 0750 directory of that group.
  sock_dir_ = dir_ + "/group";
  sock_ = sock_dir_ + "/processor.sock";
  StartManager({"--socket-group", std::to_string(kOtherUid)});
  ASSERT_EQ(::stat(sock_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_gid, kOtherUid);
  ASSERT_EQ(::stat(sock_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, kOtherUid);
  EXPECT_EQ(StopProcess(manager_.pid), 0);
  manager_.pid = -1;

  // Refused: a directory anyone can write (a squatter could swap the
  // socket), and one another user owns.
  for (const auto& [name, prepare] :
       std::vector<std::pair<std::string, std::function<void(const std::string&)>>>{
           {"open", [](const std::string& d) { ::mkdir(d.c_str(), 0777); }},
           {"theirs",
            [](const std::string& d) {
              ::mkdir(d.c_str(), 0700);
              (void)!::chown(d.c_str(), kOtherUid, kOtherUid);
            }},
           {"link", [this](const std::string& d) { (void)!::symlink(dir_.c_str(), d.c_str()); }},
       }) {
    const std::string d = dir_ + "/" + name;
    prepare(d);
    Result r = RunProgram(
        {RemoraBinary(), "processor", "--socket", d + "/processor.sock", "--pcache", "2M"}, dir_,
        "refused-" + name, std::chrono::seconds(60));
    EXPECT_FALSE(r.Ok()) << name << ": " << r.Describe();
    EXPECT_NE(r.err.find("refusing the socket directory"), std::string::npos)
        << name << ": " << r.err;
    EXPECT_NE(::access((d + "/processor.sock").c_str(), F_OK), 0) << name;
  }
  ::umask(old);
}

// munmap of a 64 GiB PROT_NONE reservation costs what is resident, not the
// range: natively it is microseconds, and so it is under Remora.
TEST_F(ProcessorSecurityTest, MunmapOfAHugeReservationIsFast) {
  const std::vector<std::string> prog = {REMORA_RESERVE_UNMAP, "64", "16"};
  Result native = RunProgram(prog, dir_, "native");
  ASSERT_TRUE(native.Ok()) << native.Describe();
  std::vector<std::string> cmd = {RemoraBinary(), "run", "--pcache", "4M", "--"};
  cmd.insert(cmd.end(), prog.begin(), prog.end());
  Result r = RunProgram(cmd, dir_, "managed");
  ASSERT_TRUE(r.Ok()) << r.Describe();
  EXPECT_EQ(r.out, native.out);
  const auto at = r.err.find("munmap_seconds=");
  ASSERT_NE(at, std::string::npos) << r.err;
  const double seconds = std::stod(r.err.substr(at + 15));
  EXPECT_LT(seconds, 0.2) << r.err;
}

}  // namespace
}  // namespace remora::testing
