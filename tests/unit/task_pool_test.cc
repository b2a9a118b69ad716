// TaskPool: RunAll runs every function, the first on the caller's thread,
// and returns only when all have returned; a single function (one replica)
// runs inline.
#include "managers/task_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <thread>
#include <vector>

namespace remora {
namespace {

TEST(TaskPool, OneFunctionRunsOnTheCallersThread) {
  TaskPool pool(4);
  std::thread::id ran;
  pool.RunAll({[&] { ran = std::this_thread::get_id(); }});
  EXPECT_EQ(ran, std::this_thread::get_id());
}

TEST(TaskPool, RunAllWaitsForEveryFunctionAndRunsThemAtOnce) {
  TaskPool pool(3);
  std::atomic<int> started{0}, finished{0};
  std::vector<std::thread::id> ids(4);
  std::vector<std::function<void()>> fns;
  for (int i = 0; i < 4; ++i) {
    fns.push_back([&, i] {
      ids[i] = std::this_thread::get_id();
      ++started;
      // Every function waits for all four to have started: they only can
      // if they run at the same time, on four threads.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (started < 4 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      ++finished;
    });
  }
  pool.RunAll(fns);
  EXPECT_EQ(finished, 4) << "returned before every function had";
  EXPECT_EQ(started, 4);
  EXPECT_EQ(ids[0], std::this_thread::get_id());
  EXPECT_EQ(std::set<std::thread::id>(ids.begin(), ids.end()).size(), 4u);
}

TEST(TaskPool, ManyRoundsFromSeveralCallers) {
  TaskPool pool(2);
  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        std::vector<std::function<void()>> fns(1 + round % 3, [&] { ++total; });
        pool.RunAll(fns);
      }
    });
  }
  for (auto& t : callers) t.join();
  int expect = 0;
  for (int round = 0; round < 200; ++round) expect += 1 + round % 3;
  EXPECT_EQ(total, 3 * expect);
}

}  // namespace
}  // namespace remora
