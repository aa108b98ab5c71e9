#include "parallel/nccl_communicator.h"

#include <chrono>
#include <cstdio>
#include <exception>
#include <thread>

#include "core/cuda/device_select.h"
#include "core/error.h"
#include "parallel/mpi_runtime.h"

namespace kervan {

namespace {

// `what` names the group and the operation, so that the first run on a new machine says which
// collective failed (EnvironmentError: exit 4, as the CUDA backend's checks).
void check_nccl(ncclResult_t r, const char* call, const std::string& what) {
  if (r != ncclSuccess)
    throw EnvironmentError(call, what, std::string(ncclGetErrorString(r)) + " (NCCL_DEBUG=WARN says more)");
}
void check_cuda(cudaError_t e, const char* call, const std::string& what) {
  if (e != cudaSuccess)
    throw EnvironmentError(call, what, std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32:
      return ncclFloat32;
    case DType::F64:
      return ncclFloat64;
    case DType::BF16:
      return ncclBfloat16;
    case DType::I32:
      return ncclInt32;
    case DType::U16:
      break;
  }
  throw std::logic_error("NCCL has no type for " + std::string(dtype_name(t)));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Avg:
      return ncclAvg;
    case ReduceOp::Max:
      return ncclMax;
    case ReduceOp::Sum:
      break;
  }
  return ncclSum;
}

// The rule of the groups (launcher/device_groups.h): an NCCL group takes device tensors only.
void require_cuda(const Tensor& t, const std::string& what) {
  KERVAN_CHECK(t.device() == Device::CUDA, what + ": NCCL collectives take CUDA tensors, got a host tensor");
}

char* at(const Tensor& t, int64_t elements) { return static_cast<char*>(t.raw()) + elements * dtype_size(t.dtype()); }

class EventHandle final : public CommHandle {
 public:
  EventHandle(NcclCommunicator& comm, CudaEvent start, CudaEvent done, std::string what, std::vector<Tensor> keep)
      : comm_(comm), start_(std::move(start)), done_(std::move(done)), what_(std::move(what)), keep_(std::move(keep)) {}
  // (The tensors are released only after wait(), or with the handle when it is dropped unwaited:
  // an error path.)
  void wait() override {
    comm_.wait_event(done_.get(), what_);
    keep_.clear();
    float ms = 0;
    if (cudaEventElapsedTime(&ms, start_.get(), done_.get()) == cudaSuccess) seconds_ = ms / 1e3;
  }
  double seconds() const override { return seconds_; }

 private:
  NcclCommunicator& comm_;
  CudaEvent start_, done_;
  std::string what_;
  std::vector<Tensor> keep_;
  double seconds_ = 0;
};

// ncclGroupStart ... ncclGroupEnd, ended also when a call inside throws (NCCL's group state is
// per thread: one left open would swallow this thread's later NCCL calls).
class NcclGroup {
 public:
  explicit NcclGroup(const std::string& what) : what_(what) { check_nccl(ncclGroupStart(), "ncclGroupStart", what_); }
  ~NcclGroup() {
    if (open_) ncclGroupEnd();
  }
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;
  void end() {
    open_ = false;
    check_nccl(ncclGroupEnd(), "ncclGroupEnd", what_);
  }

 private:
  const std::string& what_;
  bool open_ = true;
};

}  // namespace

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, std::string name, double timeout_s, cudaStream_t compute)
    : compute_(compute), name_(std::move(name)), timeout_s_(timeout_s) {
  rank_ = bootstrap.rank();
  size_ = bootstrap.size();
  world_ranks_ = bootstrap.world_ranks();
  const std::string what = "the " + name_ + " group's NCCL communicator (" + std::to_string(size_) + " ranks)";
  // The id (128 bytes) travels as 32 int32 words of host memory over the bootstrap group.
  ncclUniqueId id{};
  static_assert(sizeof id % sizeof(int32_t) == 0);
  if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", what);
  Tensor word(std::make_shared<Storage>(&id, sizeof id, Device::CPU, [](void*) {}), 0,
              {static_cast<int64_t>(sizeof id / sizeof(int32_t))}, DType::I32);
  bootstrap.broadcast(word, 0);
  try {
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags", what);
    check_cuda(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming), "cudaEventCreate", what);
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank", what);
  } catch (...) {  // (no destructor runs for a constructor that throws)
    if (compute_done_) cudaEventDestroy(compute_done_);
    if (stream_) cudaStreamDestroy(stream_);
    throw;
  }
}

NcclCommunicator::~NcclCommunicator() {
  // No checks: a destructor must not throw. ncclCommDestroy finalizes (waits for this rank's
  // queued collectives, which need their peers); while an error unwinds, the peers may never come,
  // so the communicator is aborted instead (as MpiRuntime leaves MPI unfinalized then).
  if (comm_ && std::uncaught_exceptions() > 0)
    ncclCommAbort(comm_);
  else if (comm_)
    ncclCommDestroy(comm_);
  if (compute_done_) cudaEventDestroy(compute_done_);
  if (stream_) cudaStreamDestroy(stream_);
}

CudaEvent::CudaEvent(const std::string& what) {
  check_cuda(cudaEventCreate(&event_), "cudaEventCreate", what);
}

CudaEvent::~CudaEvent() {
  if (event_) cudaEventDestroy(event_);  // (allowed while pending: CUDA releases it once complete)
}

CudaEvent NcclCommunicator::begin() {
  const std::string what = "the " + name_ + " group's stream";
  check_cuda(cudaEventRecord(compute_done_, compute_), "cudaEventRecord", "the compute stream");
  // Waits for the event as recorded now: reusing compute_done_ for the next collective is safe.
  check_cuda(cudaStreamWaitEvent(stream_, compute_done_, 0), "cudaStreamWaitEvent", what);
  CudaEvent start(what);
  check_cuda(cudaEventRecord(start.get(), stream_), "cudaEventRecord", what);
  return start;
}

std::unique_ptr<CommHandle> NcclCommunicator::finish(CudaEvent start, const std::string& what,
                                                     std::vector<Tensor> keep) {
  CudaEvent done(what);
  check_cuda(cudaEventRecord(done.get(), stream_), "cudaEventRecord", what);
  return std::make_unique<EventHandle>(*this, std::move(start), std::move(done), what, std::move(keep));
}

void NcclCommunicator::wait_event(cudaEvent_t event, const std::string& what) {
  const auto begun = std::chrono::steady_clock::now();
  const auto deadline = begun + std::chrono::duration<double>(timeout_s_);
  for (;;) {
    const cudaError_t e = cudaEventQuery(event);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) check_cuda(e, "cudaEventQuery", what);
    ncclResult_t async = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError", what);
    if (async != ncclSuccess && async != ncclInProgress) check_nccl(async, "NCCL (asynchronous)", what);
    const auto now = std::chrono::steady_clock::now();
    if (now > deadline) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", timeout_s_);
      MpiRuntime::abort_job("rank " + std::to_string(world_ranks_[rank_]) + ": " + what + " on the " + name_ +
                                " group (NCCL) did not complete within " + buf + " s (parallel.collective_timeout_s)",
                            3);
    }
    // Spin for the first millisecond (a tensor-parallel all-reduce inside a layer is short), then
    // poll gently.
    if (now - begun < std::chrono::milliseconds(1))
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

std::unique_ptr<CommHandle> NcclCommunicator::all_reduce_async(Tensor& t, ReduceOp op) {
  const std::string what = "all_reduce of " + std::to_string(t.bytes()) + " bytes";
  require_cuda(t, what);
  CudaEvent start = begin();
  check_nccl(ncclAllReduce(t.raw(), t.raw(), t.numel(), nccl_type(t.dtype()), nccl_op(op), comm_, stream_),
             "ncclAllReduce", what);
  return finish(std::move(start), what, {t});
}

std::unique_ptr<CommHandle> NcclCommunicator::reduce_scatter_async(Tensor& out, const Tensor& in, ReduceOp op) {
  const std::string what = "reduce_scatter of " + std::to_string(in.bytes()) + " bytes";
  require_cuda(in, what);
  require_cuda(out, what);
  const Chunk mine = chunk_of(in.numel(), size_, rank_);
  KERVAN_CHECK(out.numel() == mine.count && in.dtype() == out.dtype(), "reduce_scatter sizes");
  const ncclDataType_t type = nccl_type(in.dtype());
  CudaEvent start = begin();
  if (in.numel() % size_ == 0) {
    check_nccl(ncclReduceScatter(in.raw(), out.raw(), mine.count, type, nccl_op(op), comm_, stream_),
               "ncclReduceScatter", what);
  } else {
    NcclGroup group(what);
    for (int r = 0; r < size_; ++r) {
      const Chunk c = chunk_of(in.numel(), size_, r);
      check_nccl(ncclReduce(at(in, c.begin), r == rank_ ? out.raw() : nullptr, c.count, type, nccl_op(op), r, comm_,
                            stream_),
                 "ncclReduce", what);
    }
    group.end();
  }
  return finish(std::move(start), what, {out, in});
}

std::unique_ptr<CommHandle> NcclCommunicator::all_gather_async(Tensor& out, const Tensor& in) {
  const std::string what = "all_gather of " + std::to_string(out.bytes()) + " bytes";
  require_cuda(in, what);
  require_cuda(out, what);
  const Chunk mine = chunk_of(out.numel(), size_, rank_);
  KERVAN_CHECK(in.numel() == mine.count && in.dtype() == out.dtype(), "all_gather sizes");
  const ncclDataType_t type = nccl_type(out.dtype());
  CudaEvent start = begin();
  if (out.numel() % size_ == 0) {
    check_nccl(ncclAllGather(in.raw(), out.raw(), mine.count, type, comm_, stream_), "ncclAllGather", what);
  } else {
    NcclGroup group(what);
    for (int r = 0; r < size_; ++r) {
      const Chunk c = chunk_of(out.numel(), size_, r);
      check_nccl(ncclBroadcast(r == rank_ ? in.raw() : nullptr, at(out, c.begin), c.count, type, r, comm_, stream_),
                 "ncclBroadcast", what);
    }
    group.end();
  }
  return finish(std::move(start), what, {out, in});
}

std::unique_ptr<CommHandle> NcclCommunicator::broadcast_async(Tensor& t, int root) {
  const std::string what = "broadcast of " + std::to_string(t.bytes()) + " bytes";
  require_cuda(t, what);
  CudaEvent start = begin();
  check_nccl(ncclBroadcast(t.raw(), t.raw(), t.numel(), nccl_type(t.dtype()), root, comm_, stream_), "ncclBroadcast",
             what);
  return finish(std::move(start), what, {t});
}

void NcclCommunicator::barrier() {
  if (!barrier_word_.defined()) {
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, sizeof(float)), "cudaMalloc", "the " + name_ + " group's barrier word");
    barrier_word_ = Tensor(std::make_shared<Storage>(p, sizeof(float), Device::CUDA, [](void* q) { cudaFree(q); }), 0,
                           {1}, DType::F32);
  }
  all_reduce_async(barrier_word_, ReduceOp::Sum)->wait();
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, const std::string& name,
                                                     double timeout_s, Backend& compute) {
  return std::make_unique<NcclCommunicator>(bootstrap, name, timeout_s, cuda_compute_stream(compute));
}

}  // namespace kervan
