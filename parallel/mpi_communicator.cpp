#include "parallel/mpi_communicator.h"

#include <chrono>
#include <climits>
#include <cstdio>

#include "core/error.h"
#include "parallel/mpi_runtime.h"

namespace kervan {

namespace {

constexpr int kRollCallTag = 7001;

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32:
      return MPI_FLOAT;
    case DType::F64:
      return MPI_DOUBLE;
    case DType::I32:
      return MPI_INT32_T;
    case DType::BF16:
    case DType::U16:
      return MPI_UINT16_T;
  }
  return MPI_BYTE;
}

int mpi_count(const Tensor& t) {
  KERVAN_CHECK(t.numel() <= INT_MAX, "collective larger than 2^31 elements");
  return static_cast<int>(t.numel());
}

void scale(Tensor& t, double s) {
  if (t.dtype() == DType::F64) {
    double* p = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] *= s;
    return;
  }
  float* p = t.data<float>();
  const float f = static_cast<float>(s);
  for (int64_t i = 0; i < t.numel(); ++i) p[i] *= f;
}

std::string describe(const char* op, const Tensor& t) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s of %.3g MB (%lld x %s)", op, t.bytes() / 1e6,
                static_cast<long long>(t.numel()), std::string(dtype_name(t.dtype())).c_str());
  return buf;
}

// Completion state shared by the worker (which runs the collective) and the handle.
struct Completion {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
  double seconds = 0.0;
};

class MpiHandle final : public CommHandle {
 public:
  MpiHandle(MpiCommunicator& comm, std::shared_ptr<Completion> c, std::string what, int64_t seq)
      : comm_(comm), c_(std::move(c)), what_(std::move(what)), seq_(seq) {}
  void wait() override {
    std::unique_lock lock(c_->mu);
    const auto limit = std::chrono::duration<double>(comm_.timeout_s());
    if (!c_->cv.wait_for(lock, limit, [&] { return c_->done; })) {
      lock.unlock();
      comm_.report_timeout(what_, seq_);
    }
    if (c_->error) std::rethrow_exception(c_->error);
  }
  double seconds() const override { return c_->seconds; }

 private:
  MpiCommunicator& comm_;
  std::shared_ptr<Completion> c_;
  std::string what_;
  int64_t seq_;
};

}  // namespace

void MpiCommunicator::check_mpi(int rc, const char* call) const {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  std::string members;
  for (int r : world_ranks_) members += (members.empty() ? "" : ", ") + std::to_string(r);
  throw EnvironmentError(call, "the " + name_ + " group (world ranks " + members + ")",
                         std::string(msg, len));
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name, double timeout_s)
    : comm_(comm), name_(std::move(name)), timeout_s_(timeout_s) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  MPI_Comm_dup(comm_, &roll_call_comm_);
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  world_ranks_.resize(size_);
  MPI_Allgather(&world_rank, 1, MPI_INT, world_ranks_.data(), 1, MPI_INT, comm_);
  worker_ = std::thread([this] { worker_loop(); });
}

MpiCommunicator::~MpiCommunicator() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
  MPI_Comm_free(&roll_call_comm_);
  MPI_Comm_free(&comm_);
}

void MpiCommunicator::worker_loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

std::unique_ptr<CommHandle> MpiCommunicator::submit(std::string what, std::function<void()> work) {
  auto c = std::make_shared<Completion>();
  int64_t seq;
  {
    std::lock_guard lock(mu_);
    seq = next_seq_++;
    queue_.push_back([c, work = std::move(work)] {
      std::exception_ptr error;
      const auto t0 = std::chrono::steady_clock::now();
      try {
        work();
      } catch (...) {
        error = std::current_exception();
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::lock_guard l(c->mu);
      c->seconds = secs;
      c->done = true;
      c->error = std::move(error);
      c->cv.notify_all();
    });
  }
  cv_.notify_one();
  return std::make_unique<MpiHandle>(*this, std::move(c), std::move(what), seq);
}

std::unique_ptr<CommHandle> MpiCommunicator::all_reduce_async(Tensor& t, ReduceOp op) {
  KERVAN_CHECK(op != ReduceOp::Avg || t.dtype() == DType::F32 || t.dtype() == DType::F64,
               "average needs f32 or f64");
  return submit(describe("all_reduce", t), [this, t, op]() mutable {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.raw(), mpi_count(t), mpi_type(t.dtype()),
                            op == ReduceOp::Max ? MPI_MAX : MPI_SUM, comm_),
              "MPI_Allreduce");
    if (op == ReduceOp::Avg) scale(t, 1.0 / size_);
  });
}

// Per-rank element counts and displacements of n elements split by chunk_of.
static void chunk_layout(int64_t n, int parts, std::vector<int>& counts, std::vector<int>& displs) {
  KERVAN_CHECK(n <= INT_MAX, "collective larger than 2^31 elements");
  counts.resize(parts);
  displs.resize(parts);
  for (int r = 0; r < parts; ++r) {
    const Chunk c = chunk_of(n, parts, r);
    counts[r] = static_cast<int>(c.count);
    displs[r] = static_cast<int>(c.begin);
  }
}

std::unique_ptr<CommHandle> MpiCommunicator::reduce_scatter_async(Tensor& out, const Tensor& in,
                                                                  ReduceOp op) {
  KERVAN_CHECK(out.numel() == chunk_of(in.numel(), size_, rank_).count && in.dtype() == out.dtype(),
               "reduce_scatter sizes");
  return submit(describe("reduce_scatter", in), [this, out, in, op]() mutable {
    std::vector<int> counts, displs;
    chunk_layout(in.numel(), size_, counts, displs);
    check_mpi(MPI_Reduce_scatter(in.raw(), out.raw(), counts.data(), mpi_type(in.dtype()),
                                 op == ReduceOp::Max ? MPI_MAX : MPI_SUM, comm_),
              "MPI_Reduce_scatter");
    if (op == ReduceOp::Avg) scale(out, 1.0 / size_);
  });
}

std::unique_ptr<CommHandle> MpiCommunicator::all_gather_async(Tensor& out, const Tensor& in) {
  const Chunk mine = chunk_of(out.numel(), size_, rank_);
  KERVAN_CHECK(in.numel() == mine.count && in.dtype() == out.dtype(), "all_gather sizes");
  const bool in_place = in.raw() == static_cast<char*>(out.raw()) + mine.begin * dtype_size(out.dtype());
  return submit(describe("all_gather", out), [this, out, in, in_place]() mutable {
    std::vector<int> counts, displs;
    chunk_layout(out.numel(), size_, counts, displs);
    const MPI_Datatype t = mpi_type(out.dtype());
    check_mpi(MPI_Allgatherv(in_place ? MPI_IN_PLACE : in.raw(), counts[rank_], t, out.raw(), counts.data(),
                             displs.data(), t, comm_),
              "MPI_Allgatherv");
  });
}

std::unique_ptr<CommHandle> MpiCommunicator::broadcast_async(Tensor& t, int root) {
  return submit(describe("broadcast", t), [this, t, root]() mutable {
    check_mpi(MPI_Bcast(t.raw(), mpi_count(t), mpi_type(t.dtype()), root, comm_), "MPI_Bcast");
  });
}

void MpiCommunicator::barrier() {
  submit("barrier", [this] { check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); })->wait();
}

void MpiCommunicator::report_timeout(const std::string& what, int64_t seq) {
  // Roll call: tell every other member which collective we are stuck in, and see who answers.
  const double grace_s = std::min(3.0, std::max(0.5, timeout_s_));
  std::vector<MPI_Request> sends(size_, MPI_REQUEST_NULL), recvs(size_, MPI_REQUEST_NULL);
  std::vector<int64_t> their_seq(size_, -1);
  int64_t mine = seq;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    MPI_Isend(&mine, 1, MPI_INT64_T, r, kRollCallTag, roll_call_comm_, &sends[r]);
    MPI_Irecv(&their_seq[r], 1, MPI_INT64_T, r, kRollCallTag, roll_call_comm_, &recvs[r]);
  }
  std::vector<bool> answered(size_, false);
  answered[rank_] = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (int r = 0; r < size_; ++r) {
      if (answered[r]) continue;
      int flag = 0;
      MPI_Test(&recvs[r], &flag, MPI_STATUS_IGNORE);
      answered[r] = flag != 0;
      all = all && answered[r];
    }
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto join = [](const std::vector<int>& ranks) {
    std::string s;
    for (int r : ranks) {
      if (!s.empty()) s += ", ";
      s += std::to_string(r);
    }
    return s;
  };
  std::vector<int> absent;
  for (int r = 0; r < size_; ++r)
    if (!answered[r]) absent.push_back(world_ranks_[r]);
  const std::string missing = join(absent), members = join(world_ranks_);
  char head[160];
  std::snprintf(head, sizeof head,
                "rank %d: collective #%lld on the %s group (world ranks %s): ", world_ranks_[rank_],
                static_cast<long long>(seq), name_.c_str(), members.c_str());
  char limit[32];
  std::snprintf(limit, sizeof limit, "%g", timeout_s_);
  MpiRuntime::abort_job(std::string(head) + what + " did not complete within " + limit +
                            " s (parallel.collective_timeout_s); ranks that did not arrive: " +
                            (missing.empty() ? "none (all arrived; the collective itself stalled)" : missing),
                        kExitEnvironment);
}

}  // namespace kervan
