#include "collectives/watchdog.h"

#include <unistd.h>

#include <cstdio>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/status.h"

namespace loom::collectives {

Watchdog::Watchdog(Store store, WatchdogOptions options, std::function<void()> abort)
    : store_(std::move(store)), options_(std::move(options)), abort_(std::move(abort)) {
  thread_ = std::thread([this] { Loop(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::Begin(const OpDescriptor& op) {
  std::lock_guard<std::mutex> lock(mu_);
  current_ = op;
  running_ = true;
  reported_ = false;
  started_ = absl::Now();
  ++version_;
}

void Watchdog::End(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (current_.seq == seq) running_ = false;
  ++version_;
}

void Watchdog::Publish() {
  std::string value;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (version_ == published_version_) return;
    published_version_ = version_;
    value = absl::StrCat(current_.seq, " ", running_ ? "running" : "done", " ", Describe(current_));
  }
  // Best effort: a store that is gone shows up in the failure report instead.
  (void)store_.Set(absl::StrCat("progress/", options_.rank), value);
}

absl::StatusOr<std::vector<int>> Watchdog::DeadMembers() {
  std::vector<int> out;
  LOOM_ASSIGN_OR_RETURN(const std::vector<int> dead, store_.DeadRanks());
  for (int g : dead) {
    for (int r = 0; r < int(options_.global_ranks.size()); ++r) {
      if (options_.global_ranks[size_t(r)] == g && r != options_.rank) out.push_back(r);
    }
  }
  return out;
}

void Watchdog::ReportAndExit(const OpDescriptor& op, const absl::Status& why,
                             absl::Duration elapsed) {
  const absl::Status report = FailureReport(op, why, elapsed);
  std::fprintf(stderr, "watchdog: %s\n", std::string(report.message()).c_str());
  std::fflush(stderr);
  if (abort_) abort_();
  if (options_.exit_on_hang) _exit(kHangExitCode);
}

void Watchdog::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.publish_interval));
    if (stop_) break;
    const absl::Time now = absl::Now();
    const absl::Duration elapsed = now - started_;
    const bool active = running_ && !reported_;
    const bool hung = active && elapsed > options_.timeout + options_.hang_grace;
    const bool check_peers = active && elapsed > options_.dead_peer_check_after &&
                             now - last_peer_check_ >= absl::Seconds(1);
    if (check_peers) last_peer_check_ = now;
    const OpDescriptor op = current_;
    lock.unlock();
    Publish();
    bool printed = false;
    if (hung) {
      ReportAndExit(op, absl::DeadlineExceededError("the operation ignored its own timeout"),
                    elapsed);
      printed = true;
    } else if (check_peers) {
      const absl::StatusOr<std::vector<int>> dead = DeadMembers();
      if (!dead.ok()) {
        // The store's host (global rank 0) is gone: it died, or it reported this same failure
        // and exited first. Either way the op cannot complete; say so rather than hang.
        ReportAndExit(op,
                      absl::UnavailableError(absl::StrCat(
                          "the store is unreachable (its host, global rank 0, has exited): ",
                          dead.status().message())),
                      elapsed);
        printed = true;
      } else if (!dead->empty()) {
        ReportAndExit(op,
                      absl::UnavailableError(absl::StrCat(
                          "rank ", (*dead)[0], " of the group died while this operation ran")),
                      elapsed);
        printed = true;
      }
    }
    lock.lock();
    if (printed && current_.seq == op.seq) reported_ = true;  // once per op
  }
}

std::vector<std::string> Watchdog::MissingPeers(uint64_t seq, bool wait_for_death) {
  const int n = int(options_.global_ranks.size());
  std::vector<std::string> out;
  // A peer that died an instant ago may not be marked dead yet: give the store a moment.
  std::vector<int> dead;
  const absl::Time until =
      absl::Now() + (wait_for_death ? absl::Milliseconds(500) : absl::ZeroDuration());
  while (true) {
    absl::StatusOr<std::vector<int>> d = store_.DeadRanks();
    if (!d.ok()) {
      out.push_back(absl::StrCat("(cannot ask the store about peers: ", d.status().message(), ")"));
      return out;
    }
    dead.clear();
    for (int g : *d) {
      for (int r = 0; r < n; ++r) {
        if (options_.global_ranks[size_t(r)] == g && r != options_.rank) dead.push_back(r);
      }
    }
    if (!dead.empty() || absl::Now() >= until) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  for (int r = 0; r < n; ++r) {
    if (r == options_.rank) continue;
    const int global = options_.global_ranks[size_t(r)];
    const std::string who =
        global == r ? absl::StrCat("rank ", r) : absl::StrCat("rank ", r, " (global ", global, ")");
    if (std::find(dead.begin(), dead.end(), r) != dead.end()) {
      out.push_back(absl::StrCat(who, ": process died (its store connection closed)"));
      continue;
    }
    absl::StatusOr<std::optional<std::string>> p = store_.TryGet(absl::StrCat("progress/", r));
    if (!p.ok() || !p->has_value()) {
      out.push_back(absl::StrCat(who, ": did not arrive (no collective started yet)"));
      continue;
    }
    std::vector<std::string> parts = absl::StrSplit(**p, absl::MaxSplits(' ', 2));
    uint64_t peer_seq = 0;
    if (parts.size() == 3 && absl::SimpleAtoi(parts[0], &peer_seq) && peer_seq < seq) {
      out.push_back(absl::StrCat(who, ": did not arrive (last: ", parts[2], ", ", parts[1], ")"));
    }
  }
  return out;
}

absl::Status Watchdog::FailureReport(const OpDescriptor& op, const absl::Status& error,
                                     absl::Duration elapsed) {
  if (error.code() == absl::StatusCode::kFailedPrecondition) {
    // A mismatch: the message already names both sides.
    return absl::FailedPreconditionError(
        absl::StrCat("rank ", options_.rank, " of '", options_.group, "': ", error.message()));
  }
  Publish();
  // Peers publish their progress every publish_interval: after a fast failure (a peer's
  // connection closed) give them time to show the op they are in, or "did not arrive" lies.
  const absl::Duration settle = 3 * options_.publish_interval - elapsed;
  if (settle > absl::ZeroDuration()) absl::SleepFor(settle);
  // A fast failure (a closed connection) usually means a peer died: let the store notice.
  const bool fast = error.code() != absl::StatusCode::kDeadlineExceeded;
  const std::vector<std::string> missing = MissingPeers(op.seq, /*wait_for_death=*/fast);
  std::string text = absl::StrFormat(
      "collective failed on group '%s' (%d ranks) at rank %d: %s, %s, after %s: %s", options_.group,
      options_.global_ranks.size(), options_.rank, Describe(op), DescribeBytes(op),
      absl::FormatDuration(absl::Trunc(elapsed, absl::Milliseconds(1))), error.message());
  if (missing.empty()) {
    absl::StrAppend(&text, "; every peer arrived at seq ", op.seq);
  } else {
    absl::StrAppend(&text, "; peers: ", absl::StrJoin(missing, "; "));
  }
  return absl::Status(
      error.code() == absl::StatusCode::kOk ? absl::StatusCode::kInternal : error.code(), text);
}

}  // namespace loom::collectives
