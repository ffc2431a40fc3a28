// End-to-end tests of berthd's REST surface as docs/api.md documents it: the
// event stream (SSE) and `berth events`, error replies, /metrics, `berth gpus
// -o json`, and starting and stopping the daemon as a user does (`berth up
// --detach`, `berth down`, SIGINT).
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <set>

#include "harness.h"
#include "http/raw_client.h"
#include "owner_util.h"

namespace berth::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A job script that waits until the test creates `release.<job id>` in dir.
std::string Waiter(const std::string& dir) {
  return "while [ ! -e " + dir + "/release.$BERTH_JOB_ID ]; do sleep 0.02; done";
}

void Release(const std::string& dir, const std::string& id) {
  WriteFile(dir + "/release." + id, "");
}

// host and port of "http://H:P".
std::pair<std::string, int> HostPort(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  size_t colon = rest.rfind(':');
  return {rest.substr(0, colon), std::stoi(rest.substr(colon + 1))};
}

std::unique_ptr<httplib::Client> Http(const Daemon& d) {
  auto [host, port] = HostPort(d.url());
  auto c = std::make_unique<httplib::Client>(host, port);
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(5, 0);
  c->set_default_headers({d.AuthHeader()});  // TCP: the test account's token
  return c;
}

// The value of an unlabelled sample `name` in Prometheus text, if present.
std::optional<double> Metric(const std::string& text, const std::string& name) {
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

// Starts argv in the background with stdout and stderr in `out`; returns its pid.
pid_t Spawn(const std::vector<std::string>& args, const std::string& out) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::setpgid(0, 0);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits up to `timeout` for a child to exit; returns its exit status as a
// shell would (128+signal), or -1 if it is still running.
int WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  int status = 0;
  bool done = WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!done) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// True once `pid` no longer runs (gone, or a zombie nobody has reaped yet).
bool ProcessGone(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  size_t rp = stat.rfind(')');
  return rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] == 'Z';
}

// True when nobody holds the daemon's lock on `data_dir`.
bool LockFree(const std::string& data_dir) {
  int fd = ::open((data_dir + "/berthd.lock").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);
  return free;
}

// The `{"error": {"code", "message"}}` body docs/api.md documents for every
// error: exactly those two keys, both strings.
void ExpectErrorBody(const httplib::Result& r, int status, const std::string& code,
                     const std::string& message_part) {
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, status) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  json body = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << r->body;
  ASSERT_EQ(body.size(), 1u) << r->body;
  ASSERT_TRUE(body.contains("error") && body["error"].is_object()) << r->body;
  const json& e = body["error"];
  EXPECT_EQ(e.size(), 2u) << r->body;
  ASSERT_TRUE(e.contains("code") && e["code"].is_string()) << r->body;
  ASSERT_TRUE(e.contains("message") && e["message"].is_string()) << r->body;
  EXPECT_EQ(e["code"], code) << r->body;
  EXPECT_NE(e["message"].get<std::string>().find(message_part), std::string::npos) << r->body;
}

// --- 1. The event stream --------------------------------------------------

struct SseEvent {
  std::string id, type;
  json data;
};

// Reads /api/v1/events?follow=1 on a thread, parsing each event as it comes.
class EventStream {
 public:
  EventStream(const Daemon& d, const std::string& query) : client_(Http(d)) {
    thread_ = std::thread([this, query] {
      client_->Get(("/api/v1/events?follow=1" + query).c_str(),
                   [this](const httplib::Response& r) {
                     status_ = r.status;
                     content_type_ = r.get_header_value("Content-Type");
                     connected_ = true;
                     return true;
                   },
                   [this](const char* data, size_t len) {
                     std::lock_guard<std::mutex> l(mu_);
                     buf_.append(data, len);
                     for (size_t end; (end = buf_.find("\n\n")) != std::string::npos;) {
                       std::string block = buf_.substr(0, end);
                       buf_.erase(0, end + 2);
                       SseEvent ev;
                       std::string payload;
                       std::stringstream ss(block);
                       for (std::string line; std::getline(ss, line);) {
                         if (line.rfind("id: ", 0) == 0)
                           ev.id = line.substr(4);
                         else if (line.rfind("event: ", 0) == 0)
                           ev.type = line.substr(7);
                         else if (line.rfind("data: ", 0) == 0)
                           payload += line.substr(6);
                         else if (line.rfind(":", 0) == 0)
                           ++pings_;
                       }
                       if (payload.empty()) continue;
                       ev.data = json::parse(payload, nullptr, false);
                       events_.push_back(ev);
                     }
                     return !stop_;
                   });
    });
  }
  ~EventStream() {
    stop_ = true;
    client_->stop();
    thread_.join();
  }
  bool connected() const { return connected_; }
  int status() const { return status_; }
  const std::string& content_type() const { return content_type_; }
  std::vector<SseEvent> events() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }

 private:
  std::unique_ptr<httplib::Client> client_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, connected_{false};
  std::atomic<int> status_{0};
  std::string content_type_;
  std::mutex mu_;
  std::string buf_;
  std::vector<SseEvent> events_;
  int pings_ = 0;
};

// The types of `job`'s lifecycle events, in stream order.
std::vector<std::string> Lifecycle(const std::vector<SseEvent>& events, const std::string& job) {
  static const std::set<std::string> kTypes = {"JobSubmitted", "JobScheduled", "JobStarted",
                                               "JobExited"};
  std::vector<std::string> out;
  for (const auto& e : events)
    if (e.data.is_object() && e.data.value("job", json()).dump() == job && kTypes.count(e.type))
      out.push_back(e.type);
  return out;
}

TEST(Api, EventStreamDeliversAJobsLifecycleInOrder) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  EventStream all(d, "");
  ASSERT_TRUE(WaitFor([&] { return all.connected(); }, 5s));
  EXPECT_EQ(all.status(), 200);
  EXPECT_EQ(all.content_type().rfind("text/event-stream", 0), 0u) << all.content_type();

  std::string id = SubmitScript(d, {"--gpus", "1"}, "exit 0");
  const std::vector<std::string> want = {"JobSubmitted", "JobScheduled", "JobStarted", "JobExited"};
  EXPECT_TRUE(WaitFor([&] { return Lifecycle(all.events(), id).size() >= want.size(); }, 10s))
      << d.Get("/api/v1/events").dump();
  auto events = all.events();
  EXPECT_EQ(Lifecycle(events, id), want);

  // Each event: `id:` is its sequence number (increasing), `event:` its type,
  // and the data is the event JSON of docs/api.md.
  int64_t last = 0;
  for (const auto& e : events) {
    ASSERT_TRUE(e.data.is_object());
    EXPECT_EQ(e.id, e.data["seq"].dump());
    EXPECT_EQ(e.type, e.data["type"]);
    EXPECT_GT(e.data["seq"].get<int64_t>(), last);
    last = e.data["seq"].get<int64_t>();
    for (const char* k : {"seq", "time", "type", "job", "state", "message", "data"})
      EXPECT_TRUE(e.data.contains(k)) << k << " in " << e.data.dump();
    if (e.type == "JobExited") {
      EXPECT_EQ(e.data["state"], "Succeeded");
      EXPECT_EQ(e.data["data"]["exitCode"], 0);
    }
  }

  // after=SEQ and job=ID filter a follow stream too: the replay starts after
  // the job's submission and holds only that job's events.
  int64_t submitted = 0;
  for (const auto& e : events)
    if (e.type == "JobSubmitted" && e.data["job"].dump() == id) submitted = e.data["seq"];
  EventStream one(d, "&job=" + id + "&after=" + std::to_string(submitted));
  EXPECT_TRUE(WaitFor([&] { return Lifecycle(one.events(), id).size() >= 3; }, 5s));
  EXPECT_EQ(Lifecycle(one.events(), id),
            (std::vector<std::string>{"JobScheduled", "JobStarted", "JobExited"}));
  for (const auto& e : one.events()) EXPECT_EQ(e.data["job"].dump(), id) << e.data.dump();
}

TEST(Api, BerthEventsPrintsAndFollowsTheLog) {
  TempDir work;
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");

  // `berth events -f -o json --job ID` prints each event as one JSON line as
  // it happens: start it before the job exists.
  std::string first = SubmitScript(d, {"--gpus", "1"}, "exit 3");
  ASSERT_TRUE(WaitFor([&] { return d.State(first) == "Failed"; }, 10s));
  std::string next = std::to_string(std::stoll(first) + 1);
  std::string out = work / "events.out";
  pid_t follower = Spawn({BinDir() + "/berth", "--server", d.socket_url(), "events", "-f", "-o",
                          "json", "--job", next},
                         out);
  std::string second = SubmitScript(d, {"--gpus", "1"}, Waiter(work.path()));
  ASSERT_EQ(second, next);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(out).find("JobStarted") != std::string::npos; }, 10s))
      << ReadFile(out);
  EXPECT_EQ(ReadFile(out).find("JobExited"), std::string::npos);  // still running
  Release(work.path(), second);
  EXPECT_TRUE(WaitFor([&] { return ReadFile(out).find("JobExited") != std::string::npos; }, 10s))
      << ReadFile(out);
  ::kill(follower, SIGTERM);
  EXPECT_NE(WaitExit(follower, 5s), -1);
  std::vector<std::string> types;
  std::stringstream ss(ReadFile(out));
  for (std::string line; std::getline(ss, line);) {
    json e = json::parse(line, nullptr, false);
    ASSERT_TRUE(e.is_object()) << line;
    EXPECT_EQ(e["job"].dump(), second) << line;
    if (e["type"] == "Audit") continue;  // who submitted it (its place among them varies)
    types.push_back(e["type"]);
  }
  EXPECT_EQ(types,
            (std::vector<std::string>{"JobSubmitted", "JobScheduled", "JobStarted", "JobExited"}));

  // Without -f: a table line per event (time, type, job, message); --job filters.
  CommandResult r = d.Cli({"events", "--job", first});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  std::stringstream ls(r.out);
  for (std::string line; std::getline(ls, line);)
    if (line.find("  Audit  ") == std::string::npos) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_NE(lines[0].find("  JobSubmitted  job " + first), std::string::npos) << r.out;
  EXPECT_NE(lines[3].find("  JobExited  job " + first + "  exited with code 3"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("job " + second), std::string::npos) << r.out;

  // --after SEQ skips what came before it.
  json all = d.Get("/api/v1/events");
  int64_t seq_of_second = 0;
  for (const auto& e : all["items"])
    if (e["type"] == "JobSubmitted" && e["job"].dump() == second) seq_of_second = e["seq"];
  CommandResult after = d.Cli({"events", "-o", "json", "--after", std::to_string(seq_of_second)});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(after.out.find("\"job\":" + first + ","), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("JobExited"), std::string::npos) << after.out;
}

// --- 2. Error replies -----------------------------------------------------

TEST(Api, ErrorRepliesHaveTheDocumentedStatusAndShape) {
  TempDir cfg;
  Daemon d(OwnersAreNotAccounts(cfg, {"--gpus", "2"}));
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  auto http = Http(d);
  auto post = [&](const std::string& body) {
    return http->Post("/api/v1/jobs", body, "application/json");
  };

  // Malformed documents: 400 invalid_argument naming the field.
  ExpectErrorBody(post(R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["/bin/true"],)"
                       R"("resources":{"gpus":"-1"}}})"),
                  400, "invalid_argument", "spec.resources.gpus: must be >= 0, got -1");
  ExpectErrorBody(
      post(R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["/bin/true"],"gpu":1}})"),
      400, "invalid_argument", "spec.gpu");
  ExpectErrorBody(
      post(R"({"apiVersion":"berth/v2","kind":"Job","spec":{"command":["/bin/true"]}})"), 400,
      "invalid_argument", "apiVersion");
  ExpectErrorBody(post("{\"apiVersion\": "), 400, "invalid_argument", "malformed");
  ExpectErrorBody(
      post(R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["no-such-command-xyz"]}})"),
      400, "invalid_argument", "command not found");

  // A job no node could ever hold: 422 unschedulable; nothing is stored.
  ExpectErrorBody(post(R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["/bin/true"],)"
                       R"("resources":{"gpus":"64"}}})"),
                  422, "unschedulable", "");
  EXPECT_TRUE(d.Get("/api/v1/jobs")["items"].empty()) << d.Get("/api/v1/jobs").dump();
  // The CLI says why and exits with its usage code.
  CommandResult cli = d.Cli({"run", "--gpus", "64", "--", "/bin/true"});
  EXPECT_EQ(cli.exit_code, 2) << cli.out << cli.err;
  EXPECT_NE(cli.err.find("berth: error: "), std::string::npos) << cli.err;

  // Unknown job ids and routes: 404 not_found. A malformed id is a bad value: 400.
  ExpectErrorBody(http->Get("/api/v1/jobs/999"), 404, "not_found", "999");
  ExpectErrorBody(http->Get("/api/v1/jobs/999/logs"), 404, "not_found", "999");
  ExpectErrorBody(http->Post("/api/v1/jobs/999/cancel", "", "application/json"), 404, "not_found",
                  "999");
  ExpectErrorBody(http->Delete("/api/v1/jobs/999"), 404, "not_found", "999");
  ExpectErrorBody(http->Get("/api/v1/nothing-here"), 404, "not_found", "/api/v1/nothing-here");
  ExpectErrorBody(http->Get("/api/v1/jobs/abc"), 400, "invalid_argument", "job id");
  ExpectErrorBody(http->Get("/api/v1/jobs?state=Sleeping"), 400, "invalid_argument", "state");
  ExpectErrorBody(http->Get("/api/v1/events?after=x"), 400, "invalid_argument", "after");
  // A known path with a method it does not take: 405, naming what it allows.
  auto put = http->Put("/api/v1/jobs", "{}", "application/json");
  ExpectErrorBody(put, 405, "not_found", "no route for PUT /api/v1/jobs");
  EXPECT_EQ(put->get_header_value("Allow"), "GET, POST");
  // A body over the limit is refused by the HTTP server itself: still the documented JSON.
  ExpectErrorBody(post(std::string((16 << 20) + 1, ' ')), 413, "invalid_argument",
                  "larger than 16 MiB");

  // Cancelling a job that already ended: 409 failed_precondition, for both
  // spellings of cancel; the job keeps its state.
  auto ok = post(R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["/bin/true"]}})");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 201) << ok->body;
  std::string id = json::parse(ok->body)["id"].dump();
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded"; }, 10s)) << d.Job(id).dump();
  ExpectErrorBody(http->Post(("/api/v1/jobs/" + id + "/cancel").c_str(), "", "application/json"),
                  409, "failed_precondition", "already ended (Succeeded)");
  ExpectErrorBody(http->Delete(("/api/v1/jobs/" + id).c_str()), 409, "failed_precondition",
                  "already ended");
  EXPECT_EQ(d.State(id), "Succeeded");
}

// --- 3. Many streams, and the Unix socket ---------------------------------

// The audit of issue 11 found 70 open event streams starving /healthz (they
// shared the request threads): streams have their own pool now.
TEST(Api, HundredEventStreamsDoNotStarveHealthz) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  int port = HostPort(d.url()).second;
  std::vector<int> streams;
  const std::string request =
      "GET /api/v1/events?follow=1 HTTP/1.1\r\nHost: t\r\nAuthorization: " + d.AuthHeader().second +
      "\r\n\r\n";
  for (int i = 0; i < 100; ++i) {
    int fd = http::testing::ConnectTcp(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(http::testing::SendAll(fd, request));
    streams.push_back(fd);
  }
  for (int fd : streams) {
    std::string carry;
    auto r = http::testing::ReadReply(fd, &carry);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  for (int i = 0; i < 10; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto r = http::testing::Fetch(http::testing::ConnectTcp(port), "GET", "/healthz", "", "", 2000);
    ASSERT_TRUE(r) << "no answer from /healthz within 2 s with 100 event streams open";
    EXPECT_EQ(r->status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  }
  // Work still flows to every stream.
  std::string id = SubmitScript(d, {"--gpus", "0"}, "exit 0");
  for (int fd : {streams.front(), streams.back()}) {
    std::string buf;
    EXPECT_TRUE(WaitFor(
        [&] {
          http::testing::RecvSome(fd, &buf, 100);
          return buf.find("event: JobSubmitted") != std::string::npos;
        },
        5s))
        << buf;
  }
  for (int fd : streams) ::close(fd);
}

TEST(Api, ServesTheApiOnAUnixSocketInTheDataDirectory) {
  TempDir cfg;
  Daemon d(OwnersAreNotAccounts(cfg, {"--gpus", "1"}));
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string path = d.data_dir() + "/berthd.sock";
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0) << path;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  auto health = http::testing::Fetch(http::testing::ConnectUnix(path), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["dataDir"], d.data_dir()) << health->body;
  // The same routes as over TCP: a submission, seen over TCP.
  std::string doc = R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["/bin/true"]}})";
  // A header naming another user changes nothing: the kernel's uid decides.
  auto sub = http::testing::Fetch(http::testing::ConnectUnix(path), "POST", "/api/v1/jobs", doc,
                                  "X-Berth-User: sockuser\r\nContent-Type: application/json\r\n");
  ASSERT_TRUE(sub);
  ASSERT_EQ(sub->status, 201) << sub->body;
  std::string id = json::parse(sub->body)["id"].dump();
  EXPECT_EQ(d.Job(id)["user"], cli::CallerName());
  auto missing = http::testing::Fetch(http::testing::ConnectUnix(path), "GET", "/api/v1/jobs/999");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // A crash leaves the socket file behind; the next berthd replaces it.
  d.Kill();
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_LT(http::testing::ConnectUnix(path), 0);
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  auto again = http::testing::Fetch(http::testing::ConnectUnix(path), "GET", "/healthz");
  ASSERT_TRUE(again);
  EXPECT_EQ(json::parse(again->body)["pid"], d.pid()) << again->body;
  // A clean stop removes it.
  EXPECT_EQ(d.Stop(), 0);
  EXPECT_FALSE(std::filesystem::exists(path));
}

// --- 4. Starting and stopping the daemon ----------------------------------

TEST(Api, UpDetachThenDown) {
  TempDir dir;
  std::string data = dir / "data";
  CommandResult up = RunCommand({BinDir() + "/berth", "up", "--detach", "--data-dir", data,
                                 "--listen", "127.0.0.1:0", "--gpus", "2"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err << ReadFile(data + "/berthd.log");
  auto rec = ReadDaemonRecord(data);
  ASSERT_TRUE(rec.ok() && *rec) << rec.status().ToString();
  std::string url = (*rec)->url;
  ASSERT_FALSE(url.empty());
  EXPECT_NE(HostPort(url).second, 0) << url;
  // It says where it is: the real port, not :0.
  EXPECT_NE(up.out.find("is up at " + url + " "), std::string::npos) << up.out;
  pid_t pid = std::stoi(ReadFile(data + "/berthd.lock"));
  ASSERT_GT(pid, 0);
  EXPECT_FALSE(ProcessGone(pid));
  EXPECT_FALSE(LockFree(data));

  // A fresh client each time: an idle keep-alive connection would hold up
  // berthd's shutdown for cpp-httplib's keep-alive timeout (5 s).
  auto healthy = [&] { return cli::ApiClient(url).Get("/healthz").ok(); };
  auto health = cli::ApiClient(url).Get("/healthz");
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ((*health)["status"], "ok");
  EXPECT_EQ((*health)["gpus"], 2);

  // A second `up` on the same data directory fails and says why.
  CommandResult again = RunCommand(
      {BinDir() + "/berth", "up", "--detach", "--data-dir", data, "--listen", "127.0.0.1:0"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("another berthd is already using"), std::string::npos) << again.err;
  EXPECT_TRUE(healthy());

  CommandResult down = RunCommand({BinDir() + "/berth", "down", "--data-dir", data});
  EXPECT_EQ(down.exit_code, 0) << down.out << down.err;
  EXPECT_NE(down.out.find("(pid " + std::to_string(pid) + ", data "), std::string::npos)
      << down.out;
  EXPECT_NE(down.out.find(") stopped"), std::string::npos) << down.out;
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }, 5s));
  EXPECT_TRUE(WaitFor([&] { return LockFree(data); }, 5s));
  EXPECT_FALSE(healthy());
  EXPECT_NE(ReadFile(data + "/berthd.log").find("berthd stopped"), std::string::npos);

  // Nothing left to stop: `down` says so and fails.
  CommandResult none = RunCommand({BinDir() + "/berth", "down", "--data-dir", data});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("no berthd is running"), std::string::npos) << none.err;
  if (!ProcessGone(pid)) ::kill(pid, SIGKILL);
}

TEST(Api, ForegroundDaemonStopsCleanlyOnSigint) {
  TempDir dir;
  std::string log = dir / "berthd.log";
  pid_t pid = Spawn(
      {BinDir() + "/berthd", "--listen", "127.0.0.1:0", "--data-dir", dir.path(), "--gpus", "1"},
      log);
  std::string url;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto rec = ReadDaemonRecord(dir.path());
        url = rec.ok() && *rec ? (*rec)->url : "";
        return !url.empty() && cli::ApiClient(url).Get("/healthz").ok();
      },
      10s))
      << ReadFile(log);
  ::kill(pid, SIGINT);
  int code = WaitExit(pid, 10s);
  if (code == -1) ::kill(pid, SIGKILL), ::waitpid(pid, nullptr, 0);
  EXPECT_EQ(code, 0) << ReadFile(log);
  std::string text = ReadFile(log);
  EXPECT_NE(text.find("received Interrupt, shutting down"), std::string::npos) << text;
  EXPECT_NE(text.find("berthd stopped"), std::string::npos) << text;
  EXPECT_TRUE(LockFree(dir.path()));
  EXPECT_FALSE(cli::ApiClient(url).Get("/healthz").ok());
}

// --- 5. /metrics ----------------------------------------------------------

TEST(Api, MetricsCountQueueWaitAndFreeGpus) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  auto metric = [&](const std::string& name) {
    return Metric(d.GetText("/metrics"), name).value_or(-1);
  };
  EXPECT_EQ(metric("berth_gpus"), 2);
  EXPECT_EQ(metric("berth_gpus_free"), 2);
  EXPECT_EQ(metric("berth_gpus_allocated"), 0);
  EXPECT_EQ(metric("berth_queue_wait_seconds_count"), 0);

  std::string a = SubmitScript(d, {"--gpus", "1"}, Waiter(work.path()));
  std::string b = SubmitScript(d, {"--gpus", "1"}, Waiter(work.path()));
  ASSERT_TRUE(WaitFor([&] { return d.State(a) == "Running" && d.State(b) == "Running"; }, 10s));
  EXPECT_TRUE(WaitFor([&] { return metric("berth_gpus_free") == 0; }, 5s)) << d.GetText("/metrics");
  EXPECT_EQ(metric("berth_gpus_allocated"), 2);

  // A third waits until the first is released.
  std::string c = SubmitScript(d, {"--gpus", "1"}, Waiter(work.path()));
  ASSERT_TRUE(WaitFor([&] { return d.State(c) == "Pending"; }, 5s));
  ASSERT_TRUE(WaitFor([&] { return !d.Job(c).value("waitingReason", "").empty(); }, 5s));
  Release(work.path(), a);
  ASSERT_TRUE(WaitFor([&] { return d.State(c) == "Running"; }, 10s)) << d.Job(c).dump();
  std::string text = d.GetText("/metrics");
  EXPECT_GE(Metric(text, "berth_queue_wait_seconds_count").value_or(-1), 3) << text;
  double sum = Metric(text, "berth_queue_wait_seconds_sum").value_or(-1);
  EXPECT_GT(sum, 0) << text;
  // The waiting job's own wait is in the sum: it waited from its submission
  // until it was scheduled.
  json jc = d.Job(c);
  auto ms = [](const std::string& t) {  // "...T19:27:55.123Z" -> ms of the day
    int h = 0, m = 0, s = 0, milli = 0;
    std::sscanf(t.c_str() + t.find('T') + 1, "%d:%d:%d.%dZ", &h, &m, &s, &milli);
    return ((h * 60 + m) * 60 + s) * 1000 + milli;
  };
  double waited = (ms(jc["scheduledTime"]) - ms(jc["submitTime"])) / 1000.0;
  EXPECT_GE(sum + 0.002, waited) << text << jc.dump();
  // The histogram's +Inf bucket counts every observation.
  EXPECT_NE(
      text.find("berth_queue_wait_seconds_bucket{le=\"+Inf\"} " +
                std::to_string(static_cast<int>(*Metric(text, "berth_queue_wait_seconds_count")))),
      std::string::npos)
      << text;

  Release(work.path(), b);
  Release(work.path(), c);
  ASSERT_TRUE(WaitFor([&] { return d.State(b) == "Succeeded" && d.State(c) == "Succeeded"; }, 10s));
  EXPECT_TRUE(WaitFor([&] { return metric("berth_gpus_free") == 2; }, 5s)) << d.GetText("/metrics");
  EXPECT_EQ(metric("berth_gpus_allocated"), 0);
  EXPECT_NE(d.GetText("/metrics")
                .find("berth_jobs_finished_total{state=\"Succeeded\",queue=\"default\"} 3"),
            std::string::npos);
}

// --- 6. berth gpus -o json ------------------------------------------------

TEST(Api, GpusJsonListsDeclaredGpusWithTheirAllocation) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  auto gpus = [&] {
    CommandResult r = d.Cli({"gpus", "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j;
  };
  json idle = gpus();
  ASSERT_EQ(idle["nodes"].size(), 1u) << idle.dump();
  const json& node = idle["nodes"][0];
  for (const char* k : {"name", "address", "cpu", "memoryMiB", "gpus"})
    EXPECT_TRUE(node.contains(k)) << k;
  ASSERT_EQ(node["gpus"].size(), 2u) << idle.dump();
  for (int i = 0; i < 2; ++i) {
    const json& g = node["gpus"][i];
    EXPECT_EQ(g["index"], i);
    EXPECT_FALSE(g.value("uuid", "").empty());
    EXPECT_FALSE(g.value("model", "").empty());
    EXPECT_EQ(g["allocated"], "0");
    EXPECT_TRUE(g["jobs"].is_array() && g["jobs"].empty());
  }

  std::string id = SubmitScript(d, {"--gpus", "1", "--name", "holder"}, Waiter(work.path()));
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Running"; }, 10s));
  json held = gpus();
  int gpu = d.Job(id)["gpus"][0];
  int allocated = 0;
  for (const auto& g : held["nodes"][0]["gpus"]) {
    if (g["index"] == gpu) {
      EXPECT_EQ(g["allocated"], "1") << held.dump();
      ASSERT_EQ(g["jobs"].size(), 1u) << held.dump();
      EXPECT_EQ(g["jobs"][0]["job"].dump(), id);
      EXPECT_EQ(g["jobs"][0]["name"], "holder");
      EXPECT_EQ(g["jobs"][0]["queue"], "default");
      EXPECT_EQ(g["jobs"][0]["share"], "1");
      EXPECT_FALSE(g["jobs"][0].value("user", "").empty());
      ++allocated;
    } else {
      EXPECT_EQ(g["allocated"], "0") << held.dump();
      EXPECT_TRUE(g["jobs"].empty()) << held.dump();
    }
  }
  EXPECT_EQ(allocated, 1);
  Release(work.path(), id);
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded"; }, 10s));
  EXPECT_EQ(gpus()["nodes"][0]["gpus"][gpu]["allocated"], "0");
}

}  // namespace
}  // namespace berth::testing
