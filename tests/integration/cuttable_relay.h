// CuttableRelay: a TCP relay in front of a memory node, for tests of broken
// connections. Used by cluster_transport_test.cc and run_cluster_test.cc.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/socket_util.h"

namespace remora::testing {

// A TCP relay in front of a node whose connections the test can cut, as a
// reset or a network fault would while both ends live on (new connections
// are relayed again at once), or refuse, as if the node had died (Refuse:
// nothing listens at its address until Reopen).
class CuttableRelay {
 public:
  explicit CuttableRelay(std::string upstream) : upstream_(std::move(upstream)) {
    EXPECT_TRUE(net::ListenTcp("127.0.0.1:0", &lfd_, &address_).ok());
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CuttableRelay() {
    stop_ = true;
    Wake();
    thread_.join();
    if (lfd_ >= 0) close(lfd_);
    close(wake_);
  }
  const std::string& address() const { return address_; }
  // Closes every connection through the relay, both sides.
  void Cut() { Command(&cut_); }
  void Refuse() { Command(&refuse_); }
  void Reopen() { Command(&reopen_); }
  int accepted() const { return accepted_; }

 private:
  void Wake() {
    std::uint64_t one = 1;
    (void)!write(wake_, &one, sizeof one);
  }
  // Sets *flag and waits until the serving thread has done it.
  void Command(std::atomic<bool>* flag) {
    *flag = true;
    Wake();
    while (*flag) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void Serve() {
    std::vector<std::pair<int, int>> pairs;  // client, node
    char buf[65536];
    while (!stop_) {
      // A closed listener (-1) is left out by poll.
      std::vector<pollfd> p = {{lfd_, POLLIN, 0}, {wake_, POLLIN, 0}};
      for (auto [c, u] : pairs) {
        p.push_back({c, POLLIN, 0});
        p.push_back({u, POLLIN, 0});
      }
      if (poll(p.data(), p.size(), 100) <= 0) continue;
      if (p[1].revents) {
        std::uint64_t v;
        (void)!read(wake_, &v, sizeof v);
      }
      if (cut_ || refuse_) {
        for (auto [c, u] : pairs) close(c), close(u);
        pairs.clear();
        if (refuse_) close(lfd_), lfd_ = -1;
        cut_ = refuse_ = false;
        continue;
      }
      if (reopen_) {
        std::string bound;
        EXPECT_TRUE(net::ListenTcp(address_, &lfd_, &bound).ok());
        reopen_ = false;
        continue;
      }
      std::vector<std::pair<int, int>> keep;
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        bool alive = true;
        for (int dir = 0; dir < 2 && alive; ++dir) {
          if (!p[2 + 2 * i + dir].revents) continue;
          const int from = dir == 0 ? pairs[i].first : pairs[i].second;
          const int to = dir == 0 ? pairs[i].second : pairs[i].first;
          const ssize_t n = recv(from, buf, sizeof buf, 0);
          alive = n > 0 && net::WriteFull(to, buf, n, net::DeadlineAfterMs(2000)).ok();
        }
        if (alive) {
          keep.push_back(pairs[i]);
        } else {
          close(pairs[i].first);
          close(pairs[i].second);
        }
      }
      pairs.swap(keep);
      if (lfd_ >= 0 && p[0].revents) {
        const int c = accept(lfd_, nullptr, nullptr);
        int u = -1;
        if (c >= 0 && net::ConnectTcp(upstream_, 2000, &u).ok()) {
          // As the real ends do: no Nagle delay on the relayed requests.
          const int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          pairs.emplace_back(c, u);
          ++accepted_;
        } else if (c >= 0) {
          close(c);
        }
      }
    }
    for (auto [c, u] : pairs) close(c), close(u);
  }

  std::string upstream_, address_;
  int lfd_ = -1, wake_ = -1;
  std::atomic<bool> stop_{false}, cut_{false}, refuse_{false}, reopen_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace remora::testing
