// The daemon's address record (berthd.addr) and the helpers around it.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include "common/daemon_record.h"
#include "common/net.h"

namespace berth {
namespace {

struct TempDir {
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "berth-rec-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

TEST(DaemonRecord, WriteThenRead) {
  TempDir d;
  auto none = ReadDaemonRecord(d.path);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  ASSERT_TRUE(WriteDaemonRecord(d.path, {"http://127.0.0.1:7420", 1234, "/var/lib/berth"}).ok());
  auto r = ReadDaemonRecord(d.path);
  ASSERT_TRUE(r.ok() && *r) << r.status().ToString();
  EXPECT_EQ((*r)->url, "http://127.0.0.1:7420");
  EXPECT_EQ((*r)->pid, 1234);
  EXPECT_EQ((*r)->data_dir, "/var/lib/berth");
  // Only the temporary file's rename left a trace.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(d.path), {}), 1);
  RemoveDaemonRecord(d.path, 999);  // not ours: stays
  EXPECT_TRUE(std::filesystem::exists(d.path + "/berthd.addr"));
  RemoveDaemonRecord(d.path, 1234);
  EXPECT_FALSE(std::filesystem::exists(d.path + "/berthd.addr"));
}

TEST(DaemonRecord, MalformedRecordsNameTheFileAndField) {
  TempDir d;
  std::string path = d.path + "/berthd.addr";
  for (auto [text, want] : std::vector<std::pair<std::string, std::string>>{
           {"url=http://x:1\npid=abc\n", "pid: expected a positive process id"},
           {"url=http://x:1\npid=-4\n", "pid: expected a positive process id"},
           {"url=ftp://x:1\npid=4\n", "url: expected http://HOST:PORT"},
           {"url=http://x:1\n", "pid: missing"},
           {"garbage\n", "line 1: expected key=value"}}) {
    std::ofstream(path) << text;
    auto r = ReadDaemonRecord(d.path);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status().message();
  }
  std::ofstream(path) << "url=http://x:1\npid=4\nfuture=1\n";  // unknown keys: ignored
  EXPECT_TRUE(ReadDaemonRecord(d.path).ok());
}

TEST(DaemonRecord, LivenessNeedsTheProcessAndItsLock) {
  TempDir d;
  EXPECT_TRUE(DaemonRecordLive({"http://x:1", ::getpid(), ""}));  // no data dir: the pid decides
  EXPECT_FALSE(DaemonRecordLive({"http://x:1", ::getpid(), d.path}));  // no lock file
  std::ofstream(d.path + "/berthd.lock") << ::getpid();
  EXPECT_FALSE(DaemonRecordLive({"http://x:1", ::getpid(), d.path}));  // nobody holds it
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(DaemonRecordLive({"http://x:1", child, ""}));
}

TEST(DataDirs, DefaultsFollowTheEnvironment) {
  struct Saved {  // restored afterwards: other tests share the environment
    std::vector<std::pair<std::string, std::optional<std::string>>> vars;
    Saved() {
      for (const char* k : {"XDG_DATA_HOME", "BERTH_DATA_DIR", "HOME"}) {
        const char* v = std::getenv(k);
        vars.push_back({k, v ? std::optional<std::string>(v) : std::nullopt});
      }
    }
    ~Saved() {
      for (const auto& [k, v] : vars)
        v ? ::setenv(k.c_str(), v->c_str(), 1) : ::unsetenv(k.c_str());
    }
  } saved;
  ::setenv("XDG_DATA_HOME", "/x", 1);
  ::setenv("BERTH_DATA_DIR", "", 1);
  EXPECT_EQ(UserDataDir(), "/x/berth");
  EXPECT_EQ(DefaultDataDir(), "/x/berth");
  ::setenv("BERTH_DATA_DIR", "/d", 1);
  EXPECT_EQ(DefaultDataDir(), "/d");
  EXPECT_EQ(UserDataDir(), "/x/berth");
  ::unsetenv("XDG_DATA_HOME");
  ::setenv("HOME", "/h", 1);
  EXPECT_EQ(UserDataDir(), "/h/.local/share/berth");
}

TEST(Net, ParseListenAndBindError) {
  std::string host = "127.0.0.1";
  int port = 0;
  ASSERT_TRUE(ParseListen(":9000", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9000);
  auto bad = ParseListen("h:70000", &host, &port);
  EXPECT_NE(bad.message().find("listen: expected HOST:PORT"), std::string::npos);

  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int taken = ntohs(a.sin_port);
  EXPECT_EQ(BindError("127.0.0.1", taken), "Address already in use");
  ::close(fd);
  EXPECT_EQ(BindError("127.0.0.1", taken), "");
}

}  // namespace
}  // namespace berth
