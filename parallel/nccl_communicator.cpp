#include "parallel/nccl_communicator.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include "core/error.h"
#include "parallel/mpi_runtime.h"

namespace kervan {

namespace {

void check_nccl(ncclResult_t r, const char* op) {
  if (r != ncclSuccess) throw std::runtime_error(std::string(op) + ": " + ncclGetErrorString(r));
}
void check_cuda(cudaError_t e, const char* op) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(op) + ": " + cudaGetErrorString(e));
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

void require_cuda(const Tensor& t) { KERVAN_CHECK(t.device() == Device::CUDA, "NCCL collectives take CUDA tensors"); }

char* at(const Tensor& t, int64_t elements) { return static_cast<char*>(t.raw()) + elements * dtype_size(t.dtype()); }

class EventHandle final : public CommHandle {
 public:
  EventHandle(NcclCommunicator& comm, cudaEvent_t event, std::string what)
      : comm_(comm), event_(event), what_(std::move(what)) {}
  ~EventHandle() override { cudaEventDestroy(event_); }
  void wait() override { comm_.wait_event(event_, what_); }

 private:
  NcclCommunicator& comm_;
  cudaEvent_t event_;
  std::string what_;
};

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm group, std::string name, double timeout_s)
    : name_(std::move(name)), timeout_s_(timeout_s) {
  MPI_Comm_rank(group, &rank_);
  MPI_Comm_size(group, &size_);
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  world_ranks_.resize(size_);
  MPI_Allgather(&world_rank, 1, MPI_INT, world_ranks_.data(), 1, MPI_INT, group);
  ncclUniqueId id;
  if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, group);
  check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_) ncclCommDestroy(comm_);
  if (stream_) cudaStreamDestroy(stream_);
}

std::unique_ptr<CommHandle> NcclCommunicator::finish(const std::string& what) {
  cudaEvent_t event;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  check_cuda(cudaEventRecord(event, stream_), "cudaEventRecord");
  return std::make_unique<EventHandle>(*this, event, what);
}

void NcclCommunicator::wait_event(cudaEvent_t event, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
  for (;;) {
    const cudaError_t e = cudaEventQuery(event);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) check_cuda(e, "cudaEventQuery");
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess && async != ncclInProgress) check_nccl(async, what.c_str());
    if (std::chrono::steady_clock::now() > deadline) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", timeout_s_);
      MpiRuntime::abort_job("rank " + std::to_string(world_ranks_[rank_]) + ": " + what + " on the " + name_ +
                                " group (NCCL) did not complete within " + buf + " s (parallel.collective_timeout_s)",
                            3);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

std::unique_ptr<CommHandle> NcclCommunicator::all_reduce_async(Tensor& t, ReduceOp op) {
  require_cuda(t);
  check_nccl(ncclAllReduce(t.raw(), t.raw(), t.numel(), nccl_type(t.dtype()), nccl_op(op), comm_, stream_),
             "ncclAllReduce");
  return finish("all_reduce of " + std::to_string(t.bytes()) + " bytes");
}

std::unique_ptr<CommHandle> NcclCommunicator::reduce_scatter_async(Tensor& out, const Tensor& in, ReduceOp op) {
  require_cuda(in);
  const Chunk mine = chunk_of(in.numel(), size_, rank_);
  KERVAN_CHECK(out.numel() == mine.count && in.dtype() == out.dtype(), "reduce_scatter sizes");
  const ncclDataType_t type = nccl_type(in.dtype());
  if (in.numel() % size_ == 0) {
    check_nccl(ncclReduceScatter(in.raw(), out.raw(), mine.count, type, nccl_op(op), comm_, stream_),
               "ncclReduceScatter");
  } else {
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r) {
      const Chunk c = chunk_of(in.numel(), size_, r);
      check_nccl(ncclReduce(at(in, c.begin), r == rank_ ? out.raw() : nullptr, c.count, type, nccl_op(op), r, comm_,
                            stream_),
                 "ncclReduce");
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  }
  return finish("reduce_scatter of " + std::to_string(in.bytes()) + " bytes");
}

std::unique_ptr<CommHandle> NcclCommunicator::all_gather_async(Tensor& out, const Tensor& in) {
  require_cuda(out);
  const Chunk mine = chunk_of(out.numel(), size_, rank_);
  KERVAN_CHECK(in.numel() == mine.count && in.dtype() == out.dtype(), "all_gather sizes");
  const ncclDataType_t type = nccl_type(out.dtype());
  if (out.numel() % size_ == 0) {
    check_nccl(ncclAllGather(in.raw(), out.raw(), mine.count, type, comm_, stream_), "ncclAllGather");
  } else {
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r) {
      const Chunk c = chunk_of(out.numel(), size_, r);
      check_nccl(ncclBroadcast(r == rank_ ? in.raw() : nullptr, at(out, c.begin), c.count, type, r, comm_, stream_),
                 "ncclBroadcast");
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  }
  return finish("all_gather of " + std::to_string(out.bytes()) + " bytes");
}

std::unique_ptr<CommHandle> NcclCommunicator::broadcast_async(Tensor& t, int root) {
  require_cuda(t);
  check_nccl(ncclBroadcast(t.raw(), t.raw(), t.numel(), nccl_type(t.dtype()), root, comm_, stream_), "ncclBroadcast");
  return finish("broadcast of " + std::to_string(t.bytes()) + " bytes");
}

void NcclCommunicator::barrier() {
  if (!barrier_word_.defined()) {
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, sizeof(float)), "cudaMalloc");
    barrier_word_ = Tensor(std::make_shared<Storage>(p, sizeof(float), Device::CUDA, [](void* q) { cudaFree(q); }), 0,
                           {1}, DType::F32);
  }
  all_reduce_async(barrier_word_, ReduceOp::Sum)->wait();
}

}  // namespace kervan
