#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "coordinator/coordinator_client.h"

namespace kervan {

// Keeps one work-unit lease alive while its holder works: renews it on a background thread every
// third of its term. The lease counts as lost when the coordinator says it is no longer ours, or
// when no renewal has succeeded for 90% of the term (the coordinator may then give the unit to
// another worker, and two writers of one unit must not overlap). The holder checks lost() between
// steps of its work and abandons the unit when it is.
class LeaseKeeper {
 public:
  // `client` should be one of its own with a short retry time (a renewal must not wait out a long one).
  LeaseKeeper(std::shared_ptr<CoordinatorClient> client, uint64_t worker_id, uint64_t lease_id,
              std::chrono::milliseconds term);
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  bool lost() const { return lost_; }
  const std::string& why_lost() const { return why_; }  // read after lost() is true

 private:
  void renew_loop();

  std::shared_ptr<CoordinatorClient> client_;
  uint64_t worker_id_, lease_id_;
  std::chrono::milliseconds term_;
  std::atomic<bool> lost_ = false;
  std::string why_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kervan
