// Store throughput: acknowledged SubmitJob commits per second with
// synchronous=FULL and NORMAL, from 1 to 64 threads (group commit batches
// concurrent submitters into one transaction and one fsync), and read costs.
//
//   berth_store_bench --benchmark_filter=Submit
//
// items_per_second is acknowledged submissions per second; the counters
// per_batch and per_fsync say how many shared one transaction and one fsync.
// The database lives in a fresh directory under $TMPDIR (or /tmp). Before the
// benchmarks it prints that directory's file system and its fsync latency
// (fdatasync after a 4 KiB append, 200 times; --fsync_probe=0 skips it):
// durable figures mean nothing on tmpfs.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace berth::store {
namespace {

std::string FreshDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "berth_store_bench_XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  return tmpl;
}

JobSpec BenchSpec(int64_t i) {
  JobSpec s;
  s.name = "bench-" + std::to_string(i);
  s.user = "ada";
  s.queue = "default";
  s.command = {"python", "train.py", "--epochs", "10"};
  s.env = {{"SEED", std::to_string(i)}};
  s.resources.gpus = 1000;
  s.resources.cpu = 4000;
  s.resources.memory = 16384;
  return s;
}

struct Shared {
  std::string dir;
  std::unique_ptr<Store> store;
  std::atomic<int64_t> next{0};
};
Shared* g_shared = nullptr;

// Args: {synchronous (0 FULL, 1 NORMAL), max_submit_batch}.
void BM_SubmitJob(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_shared = new Shared;
    g_shared->dir = FreshDir();
    StoreOptions opt;
    opt.synchronous = state.range(0) == 0 ? "FULL" : "NORMAL";
    opt.max_submit_batch = static_cast<int>(state.range(1));
    auto s = Store::Open(g_shared->dir + "/berth.db", opt);
    if (!s.ok()) {
      state.SkipWithError(s.status().ToString().c_str());
      return;
    }
    g_shared->store = std::move(s).value();
  }
  for (auto _ : state) {
    int64_t i = g_shared->next.fetch_add(1);
    auto id = g_shared->store->SubmitJob(BenchSpec(i), i);
    if (!id.ok()) {
      state.SkipWithError(id.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    state.SetLabel(state.range(0) == 0 ? "FULL" : "NORMAL");
    StoreStats st = g_shared->store->Stats();
    state.counters["per_batch"] =
        st.submit_batches > 0 ? static_cast<double>(st.submissions) / st.submit_batches : 0;
    state.counters["per_fsync"] =
        st.wal_syncs > 0 ? static_cast<double>(st.submissions) / st.wal_syncs : 0;
    g_shared->store.reset();
    std::filesystem::remove_all(g_shared->dir);
    delete g_shared;
    g_shared = nullptr;
  }
}
BENCHMARK(BM_SubmitJob)
    ->ArgNames({"normal", "batch"})
    ->Args({0, 256})
    ->Args({1, 256})
    ->Args({0, 1})
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->Threads(64)
    ->UseRealTime()
    ->MinTime(1.0);

// Transition Pending -> Scheduled (select, update, event insert, commit).
void BM_Transition(benchmark::State& state) {
  std::string dir = FreshDir();
  StoreOptions opt;
  opt.synchronous = state.range(0) == 0 ? "FULL" : "NORMAL";
  auto s = Store::Open(dir + "/berth.db", opt);
  if (!s.ok()) {
    state.SkipWithError(s.status().ToString().c_str());
    return;
  }
  Store& store = **s;
  int64_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto id = store.SubmitJob(BenchSpec(i), i);
    state.ResumeTiming();
    JobUpdate u;
    u.schedule_time = i;
    u.placement = model::Placement{"node-1", {0}, {"GPU-0"}, 1000};
    Status st = store.Transition(*id, JobState::kPending, JobState::kScheduled, u, "", "", i);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  s->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Transition)->ArgName("normal")->Arg(0)->Arg(1)->UseRealTime()->MinTime(0.5);

// Reads: GetJob and ListActiveJobs over `range(0)` jobs (spec parsing dominates).
void BM_GetJob(benchmark::State& state) {
  std::string dir = FreshDir();
  auto s = Store::Open(dir + "/berth.db", {.synchronous = "OFF"});
  Store& store = **s;
  for (int64_t i = 0; i < 1000; ++i) (void)store.SubmitJob(BenchSpec(i), i);
  int64_t i = 0;
  for (auto _ : state) {
    auto job = store.GetJob(1 + (i++ % 1000));
    benchmark::DoNotOptimize(job);
  }
  state.SetItemsProcessed(state.iterations());
  s->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_GetJob);

void BM_ListActiveJobs(benchmark::State& state) {
  std::string dir = FreshDir();
  auto s = Store::Open(dir + "/berth.db", {.synchronous = "OFF"});
  Store& store = **s;
  for (int64_t i = 0; i < state.range(0); ++i) (void)store.SubmitJob(BenchSpec(i), i);
  for (auto _ : state) {
    auto jobs = store.ListActiveJobs();
    benchmark::DoNotOptimize(jobs);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  s->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ListActiveJobs)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

// Read latency while another thread submits continuously (FULL). Arg: 1 =
// reads on their own connections, 0 = reads share the writer connection.
void BM_GetJobWhileSubmitting(benchmark::State& state) {
  std::string dir = FreshDir();
  StoreOptions opt;
  opt.read_connections = state.range(0) == 1;
  auto s = Store::Open(dir + "/berth.db", opt);
  if (!s.ok()) abort();
  Store& store = **s;
  for (int64_t i = 0; i < 100; ++i) (void)store.SubmitJob(BenchSpec(i), i);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> writes{0};
  std::thread writer([&] {
    for (int64_t i = 100; !stop; ++i) {
      (void)store.SubmitJob(BenchSpec(i), i);
      ++writes;
    }
  });
  int64_t i = 0;
  for (auto _ : state) {
    auto job = store.GetJob(1 + (i++ % 100));
    if (!job.ok()) state.SkipWithError(job.status().ToString().c_str());
  }
  stop = true;
  writer.join();
  state.SetItemsProcessed(state.iterations());
  state.counters["writes"] = static_cast<double>(writes.load());
  s->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_GetJobWhileSubmitting)
    ->ArgName("own_readers")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->MinTime(1.0);

// fdatasync latency of `n` 4 KiB appends to a file in `dir`, and the file
// system it is on.
void FsyncProbe(const std::string& dir, int n) {
  struct statfs fs {};
  const char* kind = "?";
  if (statfs(dir.c_str(), &fs) == 0) {
    switch (static_cast<unsigned long>(fs.f_type)) {
      case 0x01021994:
        kind = "tmpfs (NOT a disk: durable figures are meaningless)";
        break;
      case 0xEF53:
        kind = "ext2/3/4";
        break;
      case 0x58465342:
        kind = "xfs";
        break;
      case 0x9123683E:
        kind = "btrfs";
        break;
      default:
        kind = "other";
        break;
    }
  }
  std::string path = dir + "/fsync_probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "fsync probe: %s: %s\n", path.c_str(), std::strerror(errno));
    return;
  }
  std::vector<char> block(4096, 'x');
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) break;
    auto t0 = std::chrono::steady_clock::now();
    if (::fdatasync(fd) != 0) break;
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  ::close(fd);
  ::unlink(path.c_str());
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * (ms.size() - 1) + 0.5))];
  };
  std::printf(
      "data dir %s: %s; fdatasync of a 4 KiB append over %zu: p50 %.2f ms, p90 %.2f ms, p99 %.2f "
      "ms\n",
      dir.c_str(), kind, ms.size(), pct(0.5), pct(0.9), pct(0.99));
}

}  // namespace
}  // namespace berth::store

int main(int argc, char** argv) {
  bool probe = true;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--fsync_probe=0") == 0) {
      probe = false;
      continue;
    }
    args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  if (probe) {
    std::string dir = berth::store::FreshDir();
    berth::store::FsyncProbe(dir, 200);
    std::filesystem::remove_all(dir);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
