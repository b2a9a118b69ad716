// DecodeRequest (processor/runtime/runtime_message.h): what the manager
// accepts from a program, and what ends its connection.
#include "processor/runtime/runtime_message.h"

#include <gtest/gtest.h>

#include <string>

namespace remora {
namespace {

constexpr std::uint64_t kSession = 0xabcdef0123456789ULL;

Status Decode(const rt::Request& r, int nfds, RequestChannel ch,
              std::size_t len = sizeof(rt::Request)) {
  rt::Request out;
  return DecodeRequest(&r, len, nfds, ch, kSession, &out);
}

rt::Request Control(rt::Op op, std::uint64_t start = 0, std::uint64_t len = 0) {
  rt::Request r;
  r.op = op;
  r.session = kSession;
  r.start = start;
  r.len = len;
  return r;
}

TEST(RuntimeMessageTest, FirstMessages) {
  rt::Request hello;
  hello.op = rt::Op::kHello;
  hello.own_fd = 7;
  EXPECT_TRUE(Decode(hello, 1, RequestChannel::kFirst).ok());
  EXPECT_FALSE(Decode(hello, 0, RequestChannel::kFirst).ok()) << "a hello without its uffd";
  EXPECT_FALSE(Decode(hello, 2, RequestChannel::kFirst).ok());
  hello.own_fd = -1;
  EXPECT_FALSE(Decode(hello, 1, RequestChannel::kFirst).ok()) << "the program's own uffd unnamed";

  rt::Request agent;
  agent.op = rt::Op::kAgentHello;
  EXPECT_FALSE(Decode(agent, 0, RequestChannel::kFirst).ok()) << "no session named";
  agent.session = 42;
  EXPECT_TRUE(Decode(agent, 0, RequestChannel::kFirst).ok());
  EXPECT_FALSE(Decode(agent, 1, RequestChannel::kFirst).ok());

  rt::Request stats;
  stats.op = rt::Op::kStats;
  EXPECT_TRUE(Decode(stats, 0, RequestChannel::kFirst).ok());
  // Control requests are not first messages, nor the reverse.
  EXPECT_FALSE(Decode(Control(rt::Op::kMap, 4096, 4096), 0, RequestChannel::kFirst).ok());
  EXPECT_FALSE(Decode(stats, 0, RequestChannel::kControl).ok());
}

TEST(RuntimeMessageTest, FramingMagicAndVersion) {
  rt::Request stats;
  stats.op = rt::Op::kStats;
  EXPECT_FALSE(Decode(stats, 0, RequestChannel::kFirst, sizeof(stats) - 1).ok());
  stats.magic = 0;
  EXPECT_FALSE(Decode(stats, 0, RequestChannel::kFirst).ok());
  stats.magic = rt::kMagic;
  stats.version = rt::kVersion - 1;
  Status st = Decode(stats, 0, RequestChannel::kFirst);
  EXPECT_NE(st.message().find("version"), std::string::npos) << st.ToString();
}

TEST(RuntimeMessageTest, ControlRangesAndSession) {
  EXPECT_TRUE(
      Decode(Control(rt::Op::kMap, 0x7f0000000000, 1 << 20), 0, RequestChannel::kControl).ok());
  EXPECT_FALSE(
      Decode(Control(rt::Op::kMap, 0x7f0000000001, 4096), 0, RequestChannel::kControl).ok());
  EXPECT_FALSE(Decode(Control(rt::Op::kMap, 4096, 0), 0, RequestChannel::kControl).ok());
  // Wrap-around and beyond any user address.
  EXPECT_FALSE(
      Decode(Control(rt::Op::kMap, ~std::uint64_t{4095}, 8192), 0, RequestChannel::kControl).ok());
  EXPECT_FALSE(
      Decode(Control(rt::Op::kUnmap, kUserAddressLimit, 4096), 0, RequestChannel::kControl).ok());
  EXPECT_FALSE(
      Decode(Control(rt::Op::kUnmap, 4096, ~std::uint64_t{0}), 0, RequestChannel::kControl).ok());
  // An unaligned release is rounded by the manager; that is fine.
  EXPECT_TRUE(Decode(Control(rt::Op::kUnmap, 4097, 100), 0, RequestChannel::kControl).ok());
  // File mappings carry exactly their descriptor.
  rt::Request file = Control(rt::Op::kMap, 1 << 20, 8192);
  file.flags = rt::kMapFile;
  EXPECT_TRUE(Decode(file, 1, RequestChannel::kControl).ok());
  EXPECT_FALSE(Decode(file, 0, RequestChannel::kControl).ok());
  EXPECT_FALSE(Decode(Control(rt::Op::kMap, 1 << 20, 8192), 1, RequestChannel::kControl).ok());
  file.flags = 0x80;
  EXPECT_FALSE(Decode(file, 0, RequestChannel::kControl).ok());
  // Another session's request on this connection.
  rt::Request other = Control(rt::Op::kDiscard, 4096, 4096);
  other.session = kSession + 1;
  EXPECT_FALSE(Decode(other, 0, RequestChannel::kControl).ok());
}

TEST(RuntimeMessageTest, Fork) {
  rt::Request prep = Control(rt::Op::kForkPrepare);
  prep.tid = 1234;
  EXPECT_TRUE(Decode(prep, 2, RequestChannel::kControl).ok());
  EXPECT_FALSE(Decode(prep, 1, RequestChannel::kControl).ok());
  prep.tid = 0;
  EXPECT_FALSE(Decode(prep, 2, RequestChannel::kControl).ok());
  rt::Request done = Control(rt::Op::kForkDone);
  done.child_pid = -1;  // the fork failed
  EXPECT_TRUE(Decode(done, 0, RequestChannel::kControl).ok());
  done.child_pid = std::int64_t{1} << 40;
  EXPECT_FALSE(Decode(done, 0, RequestChannel::kControl).ok());
}

}  // namespace
}  // namespace remora
