// Ctrl-C while a command waits on a job (`berth run/submit/train --wait`),
// as srun does it: the first SIGINT cancels the job and the command keeps
// streaming until the job has ended, then exits 130; a second SIGINT stops
// waiting at once (exit 130). With `detach`, the first SIGINT stops waiting
// and leaves the job running instead.
#pragma once

#include <atomic>
#include <string>
#include <thread>

namespace berth::cli {

// The exit code of a wait that Ctrl-C ended.
constexpr int kExitInterrupted = 130;

class WaitInterrupts {
 public:
  // Takes over SIGINT until destroyed (one at a time per process). `server` is berthd's URL (the
  // cancel request goes there), `what` names the job in messages ("job 12").
  WaitInterrupts(std::string server, std::string job_id, std::string what, bool detach);
  ~WaitInterrupts();  // gives SIGINT back its previous handling
  WaitInterrupts(const WaitInterrupts&) = delete;
  WaitInterrupts& operator=(const WaitInterrupts&) = delete;

  // Whether a SIGINT asked for the job to be cancelled.
  bool interrupted() const { return interrupted_.load(); }

 private:
  void Watch();

  std::string server_, job_id_, what_;
  bool detach_;
  std::atomic<bool> interrupted_{false};
  std::thread watcher_;
};

}  // namespace berth::cli
