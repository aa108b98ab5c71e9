#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace kervan {

// One reader thread -> any number of worker threads -> one consumer thread, for items that
// workers may finish out of order.
//
// Guarantees:
// - Order: the consumer gets the items in the order the reader pushed them, whichever worker
//   finished them first.
// - Bounded memory: at most `max_in_flight` items are between push() and the consumer's next()
//   (queued, being worked on, or done but waiting for an earlier one); push() blocks until
//   there is room.
// - Ending: after close(), next() returns null once every pushed item was consumed. stop()
//   (from any thread, e.g. the consumer after an error) wakes everyone: push() returns false and
//   take()/next() return null from then on.
template <class Item>
class OrderedPipeline {
 public:
  explicit OrderedPipeline(size_t max_in_flight) : max_in_flight_(max_in_flight) {}

  // Reader side. False when the pipeline was stopped.
  bool push(std::unique_ptr<Item> item) {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return stopped_ || produced_ - consumed_ < max_in_flight_; });
    if (stopped_) return false;
    waiting_.emplace_back(produced_++, std::move(item));
    cv_.notify_all();
    return true;
  }
  // Reader side: nothing more will be pushed.
  void close() {
    std::lock_guard lock(m_);
    closed_ = true;
    cv_.notify_all();
  }

  // Worker side: the next item to work on with its sequence number, or null at the end. The
  // worker hands it back with done(seq, item).
  std::pair<uint64_t, std::unique_ptr<Item>> take() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return stopped_ || !waiting_.empty() || closed_; });
    if (stopped_ || waiting_.empty()) return {0, nullptr};
    auto entry = std::move(waiting_.front());
    waiting_.pop_front();
    return entry;
  }
  void done(uint64_t seq, std::unique_ptr<Item> item) {
    std::lock_guard lock(m_);
    done_[seq] = std::move(item);
    cv_.notify_all();
  }

  // Consumer side: the items in the order they were pushed; null at the end.
  std::unique_ptr<Item> next() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return stopped_ || done_.contains(consumed_) || (closed_ && consumed_ == produced_); });
    if (stopped_ || !done_.contains(consumed_)) return nullptr;
    auto item = std::move(done_[consumed_]);
    done_.erase(consumed_++);
    cv_.notify_all();
    return item;
  }

  void stop() {
    std::lock_guard lock(m_);
    stopped_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  size_t max_in_flight_;
  uint64_t produced_ = 0, consumed_ = 0;
  bool closed_ = false, stopped_ = false;
  std::deque<std::pair<uint64_t, std::unique_ptr<Item>>> waiting_;
  std::map<uint64_t, std::unique_ptr<Item>> done_;
};

}  // namespace kervan
