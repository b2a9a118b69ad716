// transport_bench: what a page costs over each transport, against what the
// same bytes cost over a plain loopback TCP socket, all measured in one run.
//
// It starts a real `remora memory-node` (TCP on 127.0.0.1:0 and a unix socket
// for shared memory) and, in a child process of its own, a minimal echo
// server: blocking sockets, TCP_NODELAY, one thread per connection, no
// protocol — the cheapest round trip a socket can do. Baselines:
//   read  : 4 KiB request -> 4 KiB reply   (batched: n x 4 KiB each way)
//   write : 4 KiB request -> 48 B ack
// Then for TCP and shm: ReadPage / WritePage latency (median, p99) with one
// thread, and throughput (pages/s) with one thread, with several threads
// sharing one Transport, and with batched ReadPages. Every number is also
// given as a ratio to the matching echo measurement.
//
//   transport_bench [--json] [--iters N] [--seconds S] [--threads T] [--batch B]
//                   [--rounds R] [--pin none|same|cross]
//
// --pin: where the threads run. On a small VM a wake-up on the other vCPU
// costs several times one on the same vCPU, and unpinned runs land on either
// at random, so medians of separate runs can differ 2x. `same` puts the
// bench, the echo server and the memory node on CPU 0; `cross` puts the
// bench on CPU 0 and both servers on CPU 1. `none` leaves it to the kernel.
//
// Each case is measured in R interleaved slices (see "measurement" below);
// --iters and --seconds are totals per case.
//
// Targets: TCP page read <= 1.3x the echo; shm page read (one-sided memcpy
// from the shared region) < 0.1x the echo.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli/local_memory_node.h"
#include "remora/stats.h"
#include "remora/transport.h"

namespace remora {
namespace {

struct Config {
  bool json = false;
  std::string pin = "none";
  int iters = 20000;           // latency samples per measurement
  double seconds = 1.0;        // per throughput measurement
  int threads = 4;             // the "several threads" case
  int batch = 32;              // pages per batched read
  int rounds = 10;             // interleaved slices per case
  std::uint64_t pages = 2048;  // working set, read and written at random
};

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "transport_bench: %s\n", msg.c_str());
  std::exit(1);
}

// ---- CPU placement ----

void PinThread(pid_t tid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(tid, sizeof set, &set) != 0)
    Die("cannot pin to CPU " + std::to_string(cpu));
}

// Every thread of `pid`; threads it creates later inherit the mask.
void PinProcess(pid_t pid, int cpu) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) Die("cannot list " + dir);
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') PinThread(static_cast<pid_t>(std::atoi(e->d_name)), cpu);
  closedir(d);
}

// ---- the echo baseline ----

bool WriteAll(int fd, const void* p, std::size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, void* p, std::size_t n) {
  char* c = static_cast<char*>(p);
  while (n) {
    ssize_t r = recv(fd, c, n, 0);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

void NoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Each connection first sends {request bytes, reply bytes}; then every
// request of that size is answered with a reply of that size.
[[noreturn]] void EchoServerMain(int listen_fd) {
  for (;;) {
    int c = accept(listen_fd, nullptr, nullptr);
    if (c < 0) continue;
    NoDelay(c);
    std::thread([c] {
      std::uint32_t sizes[2];
      if (ReadAll(c, sizes, sizeof sizes)) {
        std::vector<char> req(sizes[0]), rep(sizes[1], 'e');
        while (ReadAll(c, req.data(), req.size()) && WriteAll(c, rep.data(), rep.size())) {
        }
      }
      close(c);
    }).detach();
  }
}

class EchoServer {
 public:
  explicit EchoServer(int cpu) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      Die("echo server: cannot listen on loopback");
    port_ = ntohs(a.sin_port);
    // A process of its own, like the memory node, so both baselines and
    // transports cross the same process boundary.
    pid_ = fork();
    if (pid_ < 0) Die("fork failed");
    if (pid_ == 0) {
      if (cpu >= 0) PinThread(0, cpu);
      EchoServerMain(fd);
    }
    close(fd);
  }
  ~EchoServer() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

class EchoClient {
 public:
  EchoClient(std::uint16_t port, std::uint32_t req, std::uint32_t rep) : req_(req, 'r'), rep_(rep) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      Die("cannot connect to the echo server");
    NoDelay(fd_);
    std::uint32_t sizes[2] = {req, rep};
    if (!WriteAll(fd_, sizes, sizeof sizes)) Die("echo handshake failed");
  }
  ~EchoClient() { close(fd_); }
  void RoundTrip() {
    if (!WriteAll(fd_, req_.data(), req_.size()) || !ReadAll(fd_, rep_.data(), rep_.size()))
      Die("echo round trip failed");
  }

 private:
  int fd_ = -1;
  std::vector<char> req_, rep_;
};

// ---- measurement ----
//
// The machine may be shared and load changes over seconds, so no case is
// measured in one block: every case runs a slice in each of `rounds` rounds,
// baselines and transports interleaved, and the slices are merged. A ratio
// then compares numbers taken under the same conditions.

struct Result {
  std::string group;     // "latency" | "throughput"
  std::string name;      // e.g. "tcp ReadPage"
  std::string baseline;  // name of the echo result it is compared with
  int threads = 1;
  int batch = 1;
  double median_ns = 0, p99_ns = 0;
  double pages_per_s = 0;
  double ratio = 0;  // latency: median / baseline median; throughput: rate / baseline rate
};

// One operation of a measurement; `rng` is the calling thread's.
using Op = std::function<void(std::mt19937_64& rng)>;

struct LatencyCase {
  std::string name, baseline;
  Op op;
  std::vector<std::uint64_t> ns;
};

struct ThroughputCase {
  std::string name, baseline;
  int threads = 1, batch = 1;
  std::function<Op(int)> make_op;  // each thread's operation (its own connection)
  std::uint64_t calls = 0;
  double seconds = 0;
};

void LatencySlice(LatencyCase& c, int n, std::mt19937_64& rng) {
  for (int i = 0; i < n; ++i) {
    const std::uint64_t t0 = MonotonicNs();
    c.op(rng);
    c.ns.push_back(MonotonicNs() - t0);
  }
}

void ThroughputSlice(ThroughputCase& c, double seconds) {
  std::vector<Op> ops;
  for (int t = 0; t < c.threads; ++t) ops.push_back(c.make_op(t));
  std::atomic<bool> go{false}, stop{false};
  std::atomic<std::uint64_t> total{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < c.threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 11);
      while (!go.load()) std::this_thread::yield();
      std::uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        ops[static_cast<std::size_t>(t)](rng);
        ++n;
      }
      total.fetch_add(n);
    });
  }
  const std::uint64_t t0 = MonotonicNs();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  c.seconds += static_cast<double>(MonotonicNs() - t0) / 1e9;
  c.calls += total.load();
}

Result Summarize(LatencyCase& c) {
  std::sort(c.ns.begin(), c.ns.end());
  Result r;
  r.group = "latency";
  r.name = c.name;
  r.baseline = c.baseline.empty() ? "-" : c.baseline;
  r.median_ns = static_cast<double>(c.ns[c.ns.size() / 2]);
  r.p99_ns = static_cast<double>(c.ns[c.ns.size() * 99 / 100]);
  r.pages_per_s = 1e9 / r.median_ns;
  return r;
}

Result Summarize(const ThroughputCase& c) {
  Result r;
  r.group = "throughput";
  r.name = c.name;
  r.baseline = c.baseline.empty() ? "-" : c.baseline;
  r.threads = c.threads;
  r.batch = c.batch;
  r.pages_per_s = static_cast<double>(c.calls) * c.batch / c.seconds;
  return r;
}

// ---- the memory node side ----

constexpr std::uint64_t kBase = 0x7f0000000000ull;

struct Node {
  std::unique_ptr<LocalMemoryNode> process;
  std::unique_ptr<Transport> tcp, shm;
  StatsRegistry tcp_stats, shm_stats;
};

std::unique_ptr<Transport> ConnectKind(const LocalMemoryNode& n, TransportKind kind,
                                       StatsRegistry* stats) {
  TransportOptions o = n.ClientOptions(kind, 1);
  o.stats = stats;
  Status st;
  auto t = ConnectTransport(o, &st);
  if (!t) Die("cannot connect: " + st.ToString());
  return t;
}

void Check(const Status& st, const char* what) {
  if (!st.ok()) Die(std::string(what) + ": " + st.ToString());
}

// ---- output ----

// The 1-minute load average: a benchmark on a busy machine should say so.
std::string LoadAverage() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) < 1) return "?";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", l[0]);
  return b;
}

std::string Us(double ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", ns / 1000.0);
  return b;
}

void PrintTable(const std::vector<Result>& rs, const Config& cfg, const std::string& load) {
  std::printf(
      "Transport benchmark: %d latency samples and %.1f s of throughput per case, "
      "in %d interleaved rounds; %u CPUs, pin %s, load average %s (start) %s (end)\n\n",
      cfg.iters, cfg.seconds, cfg.rounds, std::thread::hardware_concurrency(), cfg.pin.c_str(),
      load.c_str(), LoadAverage().c_str());
  std::printf("%-40s %10s %10s %12s  %s\n", "round trip (1 thread)", "median us", "p99 us",
              "x baseline", "baseline");
  for (const auto& r : rs)
    if (r.group == "latency")
      std::printf("%-40s %10s %10s %12.3f  %s\n", r.name.c_str(), Us(r.median_ns).c_str(),
                  Us(r.p99_ns).c_str(), r.ratio, r.baseline.c_str());
  std::printf("\n%-40s %7s %6s %12s %12s  %s\n", "throughput", "threads", "batch", "pages/s",
              "x baseline", "baseline");
  for (const auto& r : rs)
    if (r.group == "throughput")
      std::printf("%-40s %7d %6d %12.0f %12.3f  %s\n", r.name.c_str(), r.threads, r.batch,
                  r.pages_per_s, r.ratio, r.baseline.c_str());
}

void PrintJson(const std::vector<Result>& rs, const Config& cfg, const std::string& load,
               const std::vector<std::pair<std::string, std::int64_t>>& counters) {
  utsname u{};
  uname(&u);
  std::printf(
      "{\n  \"config\": {\"iters\": %d, \"seconds\": %.2f, \"threads\": %d, \"batch\": %d, "
      "\"rounds\": %d, \"pin\": \"%s\", \"pages\": %llu, \"cpus\": %u, \"kernel\": \"%s\", "
      "\"loadavg_start\": %s, \"loadavg_end\": %s},\n",
      cfg.iters, cfg.seconds, cfg.threads, cfg.batch, cfg.rounds, cfg.pin.c_str(),
      static_cast<unsigned long long>(cfg.pages), std::thread::hardware_concurrency(), u.release,
      load.c_str(), LoadAverage().c_str());
  std::printf("  \"results\": [\n");
  for (std::size_t i = 0; i < rs.size(); ++i) {
    const Result& r = rs[i];
    std::printf(
        "    {\"group\": \"%s\", \"name\": \"%s\", \"baseline\": \"%s\", \"threads\": %d, "
        "\"batch\": %d, \"median_ns\": %.0f, \"p99_ns\": %.0f, \"pages_per_s\": %.0f, "
        "\"ratio\": %.4f}%s\n",
        r.group.c_str(), r.name.c_str(), r.baseline.c_str(), r.threads, r.batch, r.median_ns,
        r.p99_ns, r.pages_per_s, r.ratio, i + 1 < rs.size() ? "," : "");
  }
  std::printf("  ],\n  \"client_counters\": {");
  for (std::size_t i = 0; i < counters.size(); ++i)
    std::printf("%s\"%s\": %lld", i ? ", " : "", counters[i].first.c_str(),
                static_cast<long long>(counters[i].second));
  std::printf("}\n}\n");
}

Config ParseArgs(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) Die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--json")
      c.json = true;
    else if (a == "--iters")
      c.iters = std::max(100, std::atoi(next()));
    else if (a == "--seconds")
      c.seconds = std::max(0.1, std::atof(next()));
    else if (a == "--threads")
      c.threads = std::max(1, std::atoi(next()));
    else if (a == "--batch")
      c.batch = std::clamp(std::atoi(next()), 1, 256);
    else if (a == "--rounds")
      c.rounds = std::max(1, std::atoi(next()));
    else if (a == "--pin") {
      c.pin = next();
      if (c.pin != "none" && c.pin != "same" && c.pin != "cross") Die("--pin none|same|cross");
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: transport_bench [--json] [--iters N] [--seconds S] [--threads T] "
          "[--batch B] [--rounds R] [--pin none|same|cross]\n");
      std::exit(0);
    } else {
      Die("unknown argument " + a);
    }
  }
  return c;
}

int Main(int argc, char** argv) {
  const Config cfg = ParseArgs(argc, argv);
  const std::string load = LoadAverage();
  const int client_cpu = cfg.pin == "none" ? -1 : 0;
  const int server_cpu = cfg.pin == "none" ? -1 : cfg.pin == "same" ? 0 : 1;
  if (server_cpu >= static_cast<int>(std::thread::hardware_concurrency()))
    Die("--pin cross needs two CPUs");
  EchoServer echo(server_cpu);                    // forked before any thread exists
  if (client_cpu >= 0) PinThread(0, client_cpu);  // inherited by every later thread

  Node node;
  LocalMemoryNodeOptions lo;
  lo.remora_binary = REMORA_BIN;
  lo.capacity = "256M";
  lo.extra_args = {"--log-level", "warn"};
  Status st;
  node.process = LocalMemoryNode::Start(lo, &st);
  if (!node.process) Die("cannot start the memory node: " + st.ToString());
  if (server_cpu >= 0) PinProcess(node.process->pid(), server_cpu);
  node.tcp = ConnectKind(*node.process, TransportKind::kTcp, &node.tcp_stats);
  node.shm = ConnectKind(*node.process, TransportKind::kShm, &node.shm_stats);

  // One address space with `pages` stored pages; reads and writes pick one
  // at random (writes overwrite, so the node's memory stays constant).
  constexpr Asid asid = MakeAsid(1, 1);
  Check(node.tcp->CreateSpace(asid), "create space");
  Check(node.tcp->RegisterRange(asid, kBase, cfg.pages * kPageSize), "register range");
  {
    std::vector<char> page(kPageSize, 'p');
    for (std::uint64_t i = 0; i < cfg.pages; ++i)
      Check(node.tcp->WritePage(asid, kBase + i * kPageSize, page.data()), "fill");
  }
  auto uva_of = [&cfg](std::mt19937_64& rng) { return kBase + (rng() % cfg.pages) * kPageSize; };

  // Per-thread scratch for the closures (each op owns its buffers).
  auto read_op = [&](Transport* t) -> Op {
    auto buf = std::make_shared<std::vector<char>>(kPageSize);
    return [t, buf, uva_of](std::mt19937_64& rng) {
      Check(t->ReadPage(asid, uva_of(rng), buf->data()), "read");
    };
  };
  auto write_op = [&](Transport* t) -> Op {
    auto buf = std::make_shared<std::vector<char>>(kPageSize, 'w');
    return [t, buf, uva_of](std::mt19937_64& rng) {
      Check(t->WritePage(asid, uva_of(rng), buf->data()), "write");
    };
  };
  auto batch_op = [&](Transport* t) -> Op {
    auto buf = std::make_shared<std::vector<char>>(kPageSize * cfg.batch);
    auto uvas = std::make_shared<std::vector<std::uint64_t>>(cfg.batch);
    return [t, buf, uvas, uva_of](std::mt19937_64& rng) {
      for (auto& u : *uvas) u = uva_of(rng);
      Check(t->ReadPages(asid, *uvas, buf->data()), "batched read");
    };
  };
  auto echo_op = [&](std::uint32_t req, std::uint32_t rep) -> Op {
    auto c = std::make_shared<EchoClient>(echo.port(), req, rep);
    return [c](std::mt19937_64&) { c->RoundTrip(); };
  };

  const std::uint32_t kPage = kPageSize, kAck = 48;
  const std::uint32_t kBatchBytes = kPage * static_cast<std::uint32_t>(cfg.batch);
  const std::string echo_read = "echo tcp 4K->4K";
  const std::string echo_write = "echo tcp 4K->48B";
  const std::string echo_batch =
      "echo tcp " + std::to_string(cfg.batch) + "x4K->" + std::to_string(cfg.batch) + "x4K";

  // Latency, one thread.
  std::vector<LatencyCase> lat = {
      {echo_read, "", echo_op(kPage, kPage), {}},
      {"tcp ReadPage", echo_read, read_op(node.tcp.get()), {}},
      {"shm ReadPage (one-sided)", echo_read, read_op(node.shm.get()), {}},
      {echo_write, "", echo_op(kPage, kAck), {}},
      {"tcp WritePage", echo_write, write_op(node.tcp.get()), {}},
      {"shm WritePage (unix socket)", echo_write, write_op(node.shm.get()), {}},
  };
  // Throughput: 1 thread, then several threads (echo: a connection each;
  // transports: one Transport shared, as the processor uses it), then
  // batched reads.
  std::vector<ThroughputCase> tput;
  for (int threads : {1, cfg.threads}) {
    auto add = [&](std::string name, std::string base, std::function<Op(int)> make) {
      tput.push_back({std::move(name), std::move(base), threads, 1, std::move(make), 0, 0});
    };
    add(echo_read, "", [&](int) { return echo_op(kPage, kPage); });
    add("tcp ReadPage", echo_read, [&](int) { return read_op(node.tcp.get()); });
    add("shm ReadPage (one-sided)", echo_read, [&](int) { return read_op(node.shm.get()); });
    add(echo_write, "", [&](int) { return echo_op(kPage, kAck); });
    add("tcp WritePage", echo_write, [&](int) { return write_op(node.tcp.get()); });
    add("shm WritePage (unix socket)", echo_write, [&](int) { return write_op(node.shm.get()); });
  }
  tput.push_back(
      {echo_batch, "", 1, cfg.batch, [&](int) { return echo_op(kBatchBytes, kBatchBytes); }, 0, 0});
  tput.push_back({"tcp ReadPages", echo_batch, 1, cfg.batch,
                  [&](int) { return batch_op(node.tcp.get()); }, 0, 0});
  tput.push_back({"shm ReadPages (one-sided)", echo_batch, 1, cfg.batch,
                  [&](int) { return batch_op(node.shm.get()); }, 0, 0});

  std::mt19937_64 rng(1);
  for (auto& c : lat)  // warm up: connections, caches, the node's buffers
    for (int i = 0; i < 200; ++i) c.op(rng);
  const int slice = std::max(1, cfg.iters / cfg.rounds);
  for (int round = 0; round < cfg.rounds; ++round) {
    for (auto& c : lat) LatencySlice(c, slice, rng);
    for (auto& c : tput) ThroughputSlice(c, cfg.seconds / cfg.rounds);
  }

  std::vector<Result> rs;
  auto find = [&rs](const std::string& group, const std::string& name,
                    int threads) -> const Result& {
    for (const auto& r : rs)
      if (r.group == group && r.name == name && r.threads == threads) return r;
    Die("no result " + name);
  };
  for (auto& c : lat) {
    rs.push_back(Summarize(c));
    rs.back().ratio =
        c.baseline.empty() ? 1.0 : rs.back().median_ns / find("latency", c.baseline, 1).median_ns;
  }
  for (auto& c : tput) {
    rs.push_back(Summarize(c));
    rs.back().ratio =
        c.baseline.empty()
            ? 1.0
            : rs.back().pages_per_s / find("throughput", c.baseline, c.threads).pages_per_s;
  }

  std::vector<std::pair<std::string, std::int64_t>> counters;
  {
    StatsSnapshot s = node.shm_stats.Snapshot();
    for (const char* c : {"shm_reads_onesided", "shm_read_retries", "shm_read_fallbacks"})
      counters.emplace_back(c, s.Counter(c));
  }
  if (cfg.json) {
    PrintJson(rs, cfg, load, counters);
  } else {
    PrintTable(rs, cfg, load);
    std::printf("\nshm client:");
    for (const auto& [k, v] : counters)
      std::printf(" %s=%lld", k.c_str(), static_cast<long long>(v));
    const double tcp_x = find("latency", "tcp ReadPage", 1).ratio;
    const double shm_x = find("latency", "shm ReadPage (one-sided)", 1).ratio;
    std::printf(
        "\n\ntargets: tcp ReadPage <= 1.3x echo: %.3fx %s; shm ReadPage < 0.1x echo: "
        "%.3fx %s\n",
        tcp_x, tcp_x <= 1.3 ? "met" : "MISSED", shm_x, shm_x < 0.1 ? "met" : "MISSED");
  }
  Check(node.tcp->DestroySpace(asid), "destroy space");
  return 0;
}

}  // namespace
}  // namespace remora

int main(int argc, char** argv) { return remora::Main(argc, argv); }
