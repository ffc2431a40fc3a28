// Helpers for executor tests: an event recorder that waits with deadlines, a
// temporary directory, and file polling.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "exec/executor.h"

namespace berth::exec::testing {

// Collects events from a sink; Wait* block until a matching event or deadline.
class EventLog {
 public:
  TaskEventSink Sink() {
    return [this](const TaskEvent& ev) {
      std::lock_guard<std::mutex> l(mu_);
      events_.push_back(ev);
      cv_.notify_all();
    };
  }

  // The first event of `type` for `key`, waiting up to `timeout`.
  std::optional<TaskEvent> WaitFor(const TaskKey& key, TaskEventType type,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock<std::mutex> l(mu_);
    std::optional<TaskEvent> found;
    cv_.wait_for(l, timeout, [&] {
      for (const auto& e : events_) {
        if (e.key == key && e.type == type) {
          found = e;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  // The first terminal event (kExited, kStartFailed, kLost) for `key`.
  std::optional<TaskEvent> WaitEnd(const TaskKey& key,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock<std::mutex> l(mu_);
    std::optional<TaskEvent> found;
    cv_.wait_for(l, timeout, [&] {
      for (const auto& e : events_) {
        if (e.key == key && e.type != TaskEventType::kStarted) {
          found = e;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  std::vector<TaskEvent> For(const TaskKey& key) {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<TaskEvent> out;
    for (const auto& e : events_) {
      if (e.key == key) out.push_back(e);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<TaskEvent> events_;
};

// Polls `pred` every few ms until it holds or `timeout` passes.
inline bool WaitUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  int64_t deadline = MonotonicNanos() + static_cast<int64_t>(timeout.count()) * 1000000;
  while (!pred()) {
    if (MonotonicNanos() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

inline std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh directory under the test temp dir, removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "berth-exec-XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    path_ = p != nullptr ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace berth::exec::testing
