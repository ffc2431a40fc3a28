// The output log's rotation protocol (exec/task_log.h): a reader following a
// log by offsets sees exactly the writer's stream, across rotations, with
// rotated-away bytes reported as a gap and never as wrong bytes.
#include "exec/task_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "exec/run_files.h"
#include "exec_test_util.h"

namespace berth::exec {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Byte i of the test stream: a pattern where every offset is recognizable.
char StreamByte(int64_t i) {
  if (i % 64 == 63) return '\n';
  return static_cast<char>('a' + (i * 7 + i / 64) % 26);
}

std::string StreamSlice(int64_t from, int64_t n) {
  std::string s;
  for (int64_t i = from; i < from + n; ++i) s.push_back(StreamByte(i));
  return s;
}

TEST(TaskLog, ReadsAcrossRotationsWithStableOffsets) {
  TempDir tmp;
  TaskLogWriter w(tmp.path(), 100);
  ASSERT_TRUE(w.Open());
  std::string all = StreamSlice(0, 450);
  w.Write(all.data(), all.size());
  // Parts of 100: [300, 400) in output.log.1 and [400, 450) in output.log.
  auto c = ReadTaskLog(tmp.path(), 0, 1000);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->start, 300);
  EXPECT_EQ(c->end, 450);
  EXPECT_EQ(c->data, StreamSlice(300, 150));
  auto mid = ReadTaskLog(tmp.path(), 390, 20);
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->start, 390);
  EXPECT_EQ(mid->next, 410);
  EXPECT_EQ(mid->data, StreamSlice(390, 20));
}

TEST(TaskLog, ARestartedWriterContinuesTheStream) {
  TempDir tmp;
  {
    TaskLogWriter w(tmp.path(), 100);
    ASSERT_TRUE(w.Open());
    std::string a = StreamSlice(0, 250);
    w.Write(a.data(), a.size());
  }
  TaskLogWriter w(tmp.path(), 100);
  ASSERT_TRUE(w.Open());
  std::string b = StreamSlice(250, 100);
  w.Write(b.data(), b.size());
  auto c = ReadTaskLog(tmp.path(), 0, 1000);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->end, 350);
  EXPECT_EQ(c->data, StreamSlice(c->start, 350 - c->start));
}

TEST(TaskLog, AFollowerNeverSeesWrongBytesWhileTheWriterRotates) {
  TempDir tmp;
  const int64_t total = 400000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    TaskLogWriter w(tmp.path(), 4096);
    ASSERT_TRUE(w.Open());
    std::string s = StreamSlice(0, total);
    for (int64_t off = 0; off < total; off += 97) {
      int64_t n = std::min<int64_t>(97, total - off);
      w.Write(s.data() + off, static_cast<size_t>(n));
    }
    done = true;
  });
  int64_t offset = 0, gaps = 0, pages = 0;
  while (true) {
    bool finished = done.load();
    auto c = ReadTaskLog(tmp.path(), offset, 1500);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ++pages;
    ASSERT_GE(c->start, offset);
    if (c->start > offset) ++gaps;
    ASSERT_EQ(c->data, StreamSlice(c->start, static_cast<int64_t>(c->data.size())))
        << "at offset " << c->start << " after " << pages << " pages";
    offset = c->next;
    if (finished && offset >= total) break;
  }
  writer.join();
  EXPECT_EQ(offset, total);
  RecordProperty("gaps", static_cast<int>(gaps));
}

TEST(TaskLog, ASymlinkedLogIsNotFollowed) {
  TempDir tmp;
  std::string secret = tmp.path() + "/secret";
  std::ofstream(secret) << "root only\n";
  fs::create_directories(tmp.path() + "/run");
  fs::create_symlink(secret, tmp.path() + "/run/" + kOutputFile);
  auto c = ReadTaskLog(tmp.path() + "/run", 0, 100);
  EXPECT_FALSE(c.ok());
  TaskLogWriter w(tmp.path() + "/run", 100);
  EXPECT_FALSE(w.Open());
  std::ifstream in(secret);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "root only");
}

TEST(TaskLog, RefusesBadPages) {
  TempDir tmp;
  EXPECT_EQ(ReadTaskLog(tmp.path(), -5, 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTaskLog(tmp.path(), 0, 0).status().code(), StatusCode::kInvalidArgument);
  auto big = ReadTaskLog(tmp.path(), 0, int64_t{1} << 40);  // capped, not refused
  ASSERT_TRUE(big.ok());
  EXPECT_TRUE(big->data.empty());
}

}  // namespace
}  // namespace berth::exec
