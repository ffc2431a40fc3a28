// SIGHUP rereads berthd's configuration instead of stopping it (deploy/berthd.service's
// ExecReload): what may change at run time changes, the rest is logged as waiting for the next
// start, and a bad file changes nothing.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "harness.h"

namespace berth::testing {
namespace {

bool LogHas(const Daemon& d, const std::string& text) {
  return ReadFile(d.data_dir() + "/berthd.log").find(text) != std::string::npos;
}

TEST(Reload, SighupRereadsTheConfigurationAndBerthdStaysUp) {
  TempDir work;
  std::string config = work / "berthd.yaml";
  WriteFile(config, "logLevel: info\n");
  Daemon d({"--config", config});
  ASSERT_TRUE(d.Start());

  WriteFile(config, "logLevel: debug\nstore:\n  synchronous: NORMAL\n");
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitFor([&] { return LogHas(d, "reload: logLevel: info -> debug"); }))
      << ReadFile(d.data_dir() + "/berthd.log");
  EXPECT_TRUE(LogHas(d, "reload: store: changed")) << ReadFile(d.data_dir() + "/berthd.log");
  EXPECT_TRUE(d.Alive());
  EXPECT_EQ(d.Cli({"ps"}).exit_code, 0);

  // A bad file is refused with its error, and the daemon keeps going.
  WriteFile(config, "logLevel: loud\n");
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitFor([&] { return LogHas(d, "reload refused, the configuration is unchanged"); }))
      << ReadFile(d.data_dir() + "/berthd.log");
  EXPECT_TRUE(d.Alive());
  CommandResult r = d.Cli({"run", "--wait", "--", "true"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(Reload, SighupWithoutAConfigurationFileChangesNothing) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitFor([&] { return LogHas(d, "started without --config, nothing to reread"); }))
      << ReadFile(d.data_dir() + "/berthd.log");
  EXPECT_TRUE(d.Alive());
  EXPECT_EQ(d.Cli({"ps"}).exit_code, 0);
}

}  // namespace
}  // namespace berth::testing
