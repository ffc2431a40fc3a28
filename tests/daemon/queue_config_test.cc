// berthd.yaml `queues`: the live-state rules per queue (issue 12), and
// errors that name the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemon/config.h"

namespace berth::daemon {
namespace {

using ::testing::HasSubstr;

TEST(QueueConfig, ParsesEachQueuesRules) {
  DaemonConfig c;
  Status st = ParseConfig(
      "queues:\n  research: {idlePolicy: reclaim, idleUtilPercent: 10, idleAfter: 45m, "
      "enforce: true}\n  \"*\": {idlePolicy: stop}\n",
      "b.yaml", &c);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(c.queues.size(), 2u);
  EXPECT_EQ(c.queues["research"].idle_policy, "reclaim");
  EXPECT_EQ(c.queues["research"].idle_util_percent, 10);
  EXPECT_EQ(c.queues["research"].idle_after, 45 * 60 * 1000);
  EXPECT_TRUE(c.queues["research"].enforce);
  EXPECT_EQ(c.queues["*"].idle_policy, "stop");
  EXPECT_EQ(c.queues["*"].idle_after, 30 * 60 * 1000);  // the default
  EXPECT_FALSE(c.queues["*"].enforce);
}

TEST(QueueConfig, BadRulesNameTheField) {
  auto err = [](const std::string& text) {
    DaemonConfig c;
    return ParseConfig(text, "b.yaml", &c).ToString();
  };
  EXPECT_THAT(err("queues:\n  q: {idlePolicy: kill}\n"), HasSubstr("queues.q.idlePolicy"));
  EXPECT_THAT(err("queues:\n  q: {idleUtilPercent: 0}\n"), HasSubstr("queues.q.idleUtilPercent"));
  EXPECT_THAT(err("queues:\n  q: {idleAfter: 10ms}\n"), HasSubstr("queues.q.idleAfter"));
  EXPECT_THAT(err("queues:\n  q: {idel: 1}\n"), HasSubstr("idel"));
  EXPECT_THAT(err("queues: [a]\n"), HasSubstr("queues"));
  EXPECT_THAT(err("queues:\n  q: 3\n"), HasSubstr("queues.q"));
}

}  // namespace
}  // namespace berth::daemon
