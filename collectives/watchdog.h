// The watchdog of one communicator: publishes this rank's progress (sequence number and op) to
// the group's store, builds failure reports that say which peers did not arrive, and is the
// backstop that ends the process when an operation hangs past its timeout or a member of the
// group died while an operation is in flight.
//
//   Watchdog dog(group_store, {.group = "world", .rank = r, .global_ranks = {...},
//                              .timeout = absl::Seconds(300)}, [&] { AbortBackend(); });
//   dog.Begin(desc);                       // the worker starts an op
//   ... on failure: error = dog.FailureReport(desc, error, elapsed);
//   dog.End(desc.seq);
//
// How a report finds the missing peers: each rank's watchdog thread writes
// "progress/<rank>" = "<seq> <running|done> <op>" whenever it changed (every 100 ms at most,
// off the critical path). A peer whose last published seq is below the failed op's did not
// arrive; a peer whose store connection closed without a goodbye is dead (store.h).
#ifndef LOOM_COLLECTIVES_WATCHDOG_H_
#define LOOM_COLLECTIVES_WATCHDOG_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "collectives/collective_check.h"
#include "collectives/store.h"

namespace loom::collectives {

struct WatchdogOptions {
  std::string group = "world";
  int rank = 0;
  std::vector<int> global_ranks;  // of every member, by group rank
  absl::Duration timeout = absl::Seconds(300);
  bool exit_on_hang = true;
  absl::Duration hang_grace = absl::Seconds(10);
  absl::Duration publish_interval = absl::Milliseconds(100);
  // While an op has run longer than this, ask the store every second whether a member died;
  // if one did, report and exit (Gloo notices a dead peer only on the pairs it is using).
  absl::Duration dead_peer_check_after = absl::Milliseconds(500);
};

class Watchdog {
 public:
  // `store` is the group's store (its prefix is unique to the group). `abort` runs once when an
  // op hangs past timeout + hang_grace, before the process exits (NCCL: ncclCommAbort).
  Watchdog(Store store, WatchdogOptions options, std::function<void()> abort = nullptr);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void Begin(const OpDescriptor& op);
  void End(uint64_t seq);

  // `error` rewritten as the full report: group, rank, op, size, seq, time, the backend's
  // error, then the peers that did not arrive at this op (or are dead).
  absl::Status FailureReport(const OpDescriptor& op, const absl::Status& error,
                             absl::Duration elapsed);

  // Peer states as "rank 2 did not arrive (last: seq 16 done all_gather ...)", for reports.
  std::vector<std::string> MissingPeers(uint64_t seq, bool wait_for_death);

 private:
  void Loop();
  void Publish();
  // Group ranks (not me) whose process died, per the store; an error when the store cannot be
  // reached (its host is gone).
  absl::StatusOr<std::vector<int>> DeadMembers();
  void ReportAndExit(const OpDescriptor& op, const absl::Status& why, absl::Duration elapsed);

  Store store_;
  WatchdogOptions options_;
  std::function<void()> abort_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool running_ = false;  // an op is in flight
  OpDescriptor current_;
  absl::Time started_;
  absl::Time last_peer_check_ = absl::InfinitePast();
  bool reported_ = false;  // this op's hang or dead peer was reported
  uint64_t version_ = 0, published_version_ = 0;
  std::thread thread_;
};

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_WATCHDOG_H_
