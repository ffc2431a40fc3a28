// End-to-end figures for berthd on this machine (prints, does not assert):
//   1. acknowledged (durable) submissions per second through the REST API,
//      with C concurrent keep-alive clients, the jobs queueing behind a GPU
//      that a blocker job holds;
//   2. submit-to-process-start latency for a trivial command (`true`), as a
//      client sees it: from sending POST /api/v1/jobs to receiving the
//      JobStarted event on the event stream (p50, p90, p99);
//   3. with --healthz S: the HTTP server's own ceiling, GET /healthz answered
//      per second over C keep-alive clients for S seconds (no store work).
// Usage: berth_submit_bench [--seconds S] [--clients C] [--samples N] [--healthz S]
//                           [--berthd PATH]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/daemon_record.h"

namespace {

using nlohmann::json;

std::string ReadUrl(const std::string& dir) {
  auto rec = berth::ReadDaemonRecord(dir);
  return rec.ok() && *rec ? (*rec)->url : "";
}

pid_t StartDaemon(const std::string& berthd, const std::string& dir, const std::string& sync) {
  std::ofstream(dir + "/config.yaml") << "store:\n  synchronous: " << sync << "\n";
  pid_t pid = fork();
  if (pid == 0) {
    std::string log = dir + "/berthd.log";
    freopen(log.c_str(), "w", stderr);
    execl(berthd.c_str(), berthd.c_str(), "--gpus", "1", "--listen", "127.0.0.1:0", "--data-dir",
          dir.c_str(), "--config", (dir + "/config.yaml").c_str(), "--log-level", "warn", nullptr);
    _exit(127);
  }
  return pid;
}

std::string JobDoc(const std::string& cmd, const std::string& gpus) {
  json doc = {
      {"apiVersion", "berth/v1"},
      {"kind", "Job"},
      {"metadata", {{"name", "bench"}}},
      {"spec",
       {{"command", json::array({"/bin/sh", "-c", cmd})}, {"resources", {{"gpus", gpus}}}}}};
  return doc.dump();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct Run {
  std::string url;
  std::string host;
  int port = 0;
};

Run Parse(const std::string& url) {
  Run r;
  r.url = url;
  size_t c = url.rfind(':');
  r.host = url.substr(7, c - 7);
  r.port = std::stoi(url.substr(c + 1));
  return r;
}

double Throughput(const Run& r, int clients, double seconds) {
  httplib::Client c0(r.host, r.port);
  c0.set_default_headers({{"X-Berth-User", "bench"}});
  auto blocker = c0.Post("/api/v1/jobs", JobDoc("sleep 3600", "1"), "application/json");
  if (!blocker || blocker->status != 201) {
    std::fprintf(stderr, "blocker submit failed\n");
    return 0;
  }
  int64_t blocker_id = json::parse(blocker->body)["id"];
  std::string doc = JobDoc("true", "1");
  std::atomic<int64_t> ok{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  int64_t t0 = berth::MonotonicNanos();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      httplib::Client c(r.host, r.port);
      c.set_default_headers({{"X-Berth-User", "bench"}});
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      while (!stop) {
        auto res = c.Post("/api/v1/jobs", doc, "application/json");
        if (res && res->status == 201)
          ok++;
        else
          failed++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000)));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = (berth::MonotonicNanos() - t0) / 1e9;
  // Check durability: every acknowledged job is in the store.
  auto list = c0.Get("/api/v1/jobs?state=Pending");
  size_t pending = list ? json::parse(list->body)["items"].size() : 0;
  c0.Post("/api/v1/jobs/" + std::to_string(blocker_id) + "/cancel", "", "application/json");
  std::printf("  %lld acknowledged in %.2f s (%lld failed), %zu pending in the store\n",
              static_cast<long long>(ok.load()), elapsed, static_cast<long long>(failed.load()),
              pending);
  return ok / elapsed;
}

double HealthzRate(const Run& r, int clients, double seconds) {
  std::atomic<int64_t> ok{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  int64_t t0 = berth::MonotonicNanos();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      httplib::Client c(r.host, r.port);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      while (!stop) {
        auto res = c.Get("/healthz");
        if (res && res->status == 200)
          ok++;
        else
          failed++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000)));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = (berth::MonotonicNanos() - t0) / 1e9;
  std::printf("  %lld /healthz answered in %.2f s (%lld failed)\n",
              static_cast<long long>(ok.load()), elapsed, static_cast<long long>(failed.load()));
  return ok / elapsed;
}

void Latency(const Run& r, int samples) {
  // Follow the event stream from the current last event; record when each
  // job's JobStarted arrives.
  std::mutex mu;
  std::condition_variable cv;
  std::map<int64_t, int64_t> started_at;
  std::atomic<bool> stop{false};
  httplib::Client c(r.host, r.port);
  c.set_default_headers({{"X-Berth-User", "bench"}});
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);
  std::string doc = JobDoc("true", "0");
  int64_t after = 0;
  if (auto evs = c.Get("/api/v1/events?after=0"); evs) {
    auto items = json::parse(evs->body)["items"];
    if (!items.empty()) after = items.back()["seq"];
  }
  httplib::Client ev2(r.host, r.port);
  ev2.set_default_headers({{"X-Berth-User", "bench"}});
  ev2.set_read_timeout(600, 0);
  std::thread watcher2([&] {
    std::string buf;
    ev2.Get("/api/v1/events?follow=true&after=" + std::to_string(after),
            [&](const char* d, size_t n) {
              buf.append(d, n);
              size_t e;
              while ((e = buf.find("\n\n")) != std::string::npos) {
                std::string block = buf.substr(0, e);
                buf.erase(0, e + 2);
                size_t p = block.find("data: ");
                if (p == std::string::npos) continue;
                try {
                  json j = json::parse(block.substr(p + 6));
                  if (j["type"] == "JobStarted") {
                    std::lock_guard<std::mutex> l(mu);
                    started_at[j["job"].get<int64_t>()] = berth::MonotonicNanos();
                    cv.notify_all();
                  }
                } catch (const std::exception&) {
                }
              }
              return !stop;
            });
  });
  std::vector<double> lat_ms;
  for (int i = 0; i < samples; ++i) {
    int64_t t0 = berth::MonotonicNanos();
    auto res = c.Post("/api/v1/jobs", doc, "application/json");
    if (!res || res->status != 201) continue;
    int64_t id = json::parse(res->body)["id"];
    std::unique_lock<std::mutex> l(mu);
    if (!cv.wait_for(l, std::chrono::seconds(10), [&] { return started_at.count(id) > 0; }))
      continue;
    lat_ms.push_back((started_at[id] - t0) / 1e6);
  }
  stop = true;
  ev2.stop();
  watcher2.join();
  std::printf(
      "  submit-to-process-start over %zu jobs: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f "
      "ms\n",
      lat_ms.size(), Percentile(lat_ms, 0.5), Percentile(lat_ms, 0.9), Percentile(lat_ms, 0.99),
      Percentile(lat_ms, 1.0));
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5, healthz = 0;
  int clients = 4, samples = 200;
  std::string berthd = std::string(BERTH_SOURCE_DIR) + "/build/bin/berthd";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (a == "--clients")
      clients = std::atoi(argv[i + 1]);
    else if (a == "--samples")
      samples = std::atoi(argv[i + 1]);
    else if (a == "--berthd")
      berthd = argv[i + 1];
    else if (a == "--healthz")
      healthz = std::atof(argv[i + 1]);
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  auto start = [&](const std::string& sync, const std::string& tag, pid_t* pid) -> std::string {
    std::string dir = std::filesystem::temp_directory_path() /
                      ("berth-bench-" + std::to_string(getpid()) + "-" + tag);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    *pid = StartDaemon(berthd, dir, sync);
    std::string url;
    for (int i = 0; i < 500 && url.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      url = ReadUrl(dir);
    }
    if (url.empty())
      std::fprintf(stderr, "berthd did not start (see %s/berthd.log)\n", dir.c_str());
    return url.empty() ? "" : dir + "|" + url;
  };
  auto stop = [](pid_t pid, const std::string& handle) {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    std::filesystem::remove_all(handle.substr(0, handle.find('|')));
  };
  if (healthz > 0) {
    pid_t pid;
    std::string h = start("FULL", "healthz", &pid);
    if (h.empty()) return 1;
    std::printf("GET /healthz, %d clients, %.0f s:\n", clients, healthz);
    double rate = HealthzRate(Parse(h.substr(h.find('|') + 1)), clients, healthz);
    std::printf("  => %.0f requests/s\n", rate);
    stop(pid, h);
    return 0;
  }
  for (std::string sync : {"FULL", "NORMAL"}) {
    pid_t pid;
    std::string h = start(sync, sync + "-tput", &pid);
    if (h.empty()) return 1;
    std::printf("store synchronous=%s, %d clients, %.0f s:\n", sync.c_str(), clients, seconds);
    double tput = Throughput(Parse(h.substr(h.find('|') + 1)), clients, seconds);
    std::printf("  => %.0f acknowledged submissions/s\n", tput);
    stop(pid, h);
    // A fresh daemon for latency, so no queue from the throughput run is ahead.
    h = start(sync, sync + "-lat", &pid);
    if (h.empty()) return 1;
    Latency(Parse(h.substr(h.find('|') + 1)), samples);
    stop(pid, h);
  }
  return 0;
}
