#include "cli/interrupt.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>

#include "cli/client.h"

namespace berth::cli {
namespace {

// What the handler needs, prepared before it is installed: it may only write
// and _exit. Cancelling the job (an HTTP request) is the watcher thread's.
int g_pipe[2] = {-1, -1};
volatile sig_atomic_t g_count = 0;
bool g_detach = false;
// Set once the cancel request has been answered (and g_exit_message says how):
// a second interrupt before that waits for it, so the job is never left
// running behind a "being cancelled".
std::atomic<bool> g_cancel_done{false};
std::string g_exit_message;  // what the interrupt that ends the wait prints
struct sigaction g_previous {};

constexpr char kInterrupt = 'i';
constexpr char kQuit = 'q';

void OnSigint(int) {
  int saved = errno;
  g_count = g_count + 1;
  if (g_detach || (g_count > 1 && g_cancel_done.load())) {
    (void)!::write(STDERR_FILENO, g_exit_message.data(), g_exit_message.size());
    ::_exit(kExitInterrupted);
  }
  char c = kInterrupt;
  (void)!::write(g_pipe[1], &c, 1);
  errno = saved;
}

}  // namespace

WaitInterrupts::WaitInterrupts(std::string server, std::string job_id, std::string what,
                               bool detach)
    : server_(std::move(server)),
      job_id_(std::move(job_id)),
      what_(std::move(what)),
      detach_(detach) {
  if (::pipe2(g_pipe, O_CLOEXEC) != 0) return;  // no pipe: Ctrl-C keeps its default (exit)
  g_count = 0;
  g_detach = detach_;
  g_cancel_done = false;
  g_exit_message = "\nberth: interrupted: " + what_ + " keeps running; `berth logs -f " + job_id_ +
                   "` to follow\n";
  watcher_ = std::thread([this] { Watch(); });
  struct sigaction sa {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &g_previous);
}

WaitInterrupts::~WaitInterrupts() {
  if (!watcher_.joinable()) return;
  ::sigaction(SIGINT, &g_previous, nullptr);
  char c = kQuit;
  (void)!::write(g_pipe[1], &c, 1);
  watcher_.join();
  ::close(g_pipe[0]);
  ::close(g_pipe[1]);
  g_pipe[0] = g_pipe[1] = -1;
}

void WaitInterrupts::Watch() {
  bool cancelled = false;
  while (true) {
    char c = 0;
    ssize_t n = ::read(g_pipe[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == kQuit) return;
    if (cancelled) {  // a second interrupt that came while the cancel request was under way
      std::cerr << g_exit_message << std::flush;
      ::_exit(kExitInterrupted);
    }
    cancelled = true;
    std::cerr << "\nberth: interrupted: cancelling " << what_ << " (Ctrl-C again to stop waiting)"
              << std::endl;
    interrupted_ = true;
    ApiClient api(server_);
    auto r = api.Post("/api/v1/jobs/" + job_id_ + "/cancel", "");
    if (r.ok()) {
      g_exit_message = "\nberth: stopped waiting; " + what_ + " is being cancelled (`berth get " +
                       job_id_ + "` shows its state)\n";
    } else {
      std::cerr << "berth: could not cancel " << what_ << ": " << r.status().message()
                << " (Ctrl-C again to stop waiting)" << std::endl;
      g_exit_message = "\nberth: stopped waiting; " + what_ + " may still run (`berth cancel " +
                       job_id_ + "`)\n";
    }
    g_cancel_done = true;
  }
}

}  // namespace berth::cli
