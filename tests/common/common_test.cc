#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/net.h"

#include <thread>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"

namespace berth {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("x: must be even, got " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, ResultCarriesValueOrError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().ToString(), "invalid_argument: x: must be even, got 3");
  EXPECT_EQ(bad.status().WithContext("job 4").message(), "job 4: x: must be even, got 3");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(Clock, ManualClockMovesOnlyWhenTold) {
  ManualClock c(1000);
  EXPECT_EQ(c.Now(), 1000);
  c.Advance(500);
  EXPECT_EQ(c.Now(), 1500);
  c.Set(42);
  EXPECT_EQ(c.Now(), 42);
  // Safe across threads.
  std::thread t([&] {
    for (int i = 0; i < 1000; ++i) c.Advance(1);
  });
  for (int i = 0; i < 1000; ++i) c.Advance(1);
  t.join();
  EXPECT_EQ(c.Now(), 2042);
}

TEST(Clock, Formatting) {
  EXPECT_EQ(FormatTime(0), "");
  EXPECT_EQ(FormatTime(1700000000123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatDuration(45), "45ms");
  EXPECT_EQ(FormatDuration(3200), "3.2s");
  EXPECT_EQ(FormatDuration(62 * kSecond), "1m02s");
  EXPECT_EQ(FormatDuration(3 * kHour + 5 * kMinute), "3h05m");
  EXPECT_GT(SystemClock::Default().Now(), 1700000000000);
}

TEST(Quantity, FormatsMilliUnits) {
  EXPECT_EQ(FormatMilli(2000), "2");
  EXPECT_EQ(FormatMilli(500), "0.5");
  EXPECT_EQ(FormatMilli(125), "0.125");
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

TEST(FreeTcpPort, GivesAPortThatCanBeBound) {
  int port = FreeTcpPort("127.0.0.1");
  ASSERT_GT(port, 0);
  ASSERT_LT(port, 65536);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  EXPECT_GT(FreeTcpPort(), 0);  // any address
}

}  // namespace
}  // namespace berth
