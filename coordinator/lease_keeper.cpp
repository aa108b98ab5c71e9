#include "coordinator/lease_keeper.h"

#include <fmt/format.h>

namespace kervan {

using Clock = std::chrono::steady_clock;

LeaseKeeper::LeaseKeeper(std::shared_ptr<CoordinatorClient> client, uint64_t worker_id, uint64_t lease_id,
                         std::chrono::milliseconds term)
    : client_(std::move(client)), worker_id_(worker_id), lease_id_(lease_id), term_(term) {
  thread_ = std::thread([this] { renew_loop(); });
}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseKeeper::renew_loop() {
  Clock::time_point renewed = Clock::now();
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, term_ / 3, [&] { return stopping_; })) {
    lock.unlock();
    try {
      client_->renew_lease(worker_id_, lease_id_);
      renewed = Clock::now();
    } catch (const CoordinatorRefusal& e) {
      why_ = e.what();
      lost_ = true;
    } catch (const EnvironmentError& e) {  // unreachable for this renewal's retry time
      if (Clock::now() - renewed > term_ * 9 / 10) {
        why_ = fmt::format("no renewal for {:.1f} s of its {:.1f} s term ({})",
                           std::chrono::duration<double>(Clock::now() - renewed).count(),
                           std::chrono::duration<double>(term_).count(), e.what());
        lost_ = true;
      }
    }
    lock.lock();
    if (lost_) return;
  }
}

}  // namespace kervan
