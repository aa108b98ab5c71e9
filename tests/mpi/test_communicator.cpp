// Every collective against hand-computed results, on the world and on sub-groups (ranks split by
// rank % groups), with element counts that divide into nothing convenient.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <thread>

#include "core/backend.h"
#include "core/cpu/cpu_backend.h"
#include "parallel/mpi_communicator.h"

namespace kervan {
namespace {

int world(int which) {
  int v;
  if (which == 0)
    MPI_Comm_rank(MPI_COMM_WORLD, &v);
  else
    MPI_Comm_size(MPI_COMM_WORLD, &v);
  return v;
}

class Collectives : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    const int groups = std::min(GetParam(), world(1));
    MPI_Comm c;
    MPI_Comm_split(MPI_COMM_WORLD, world(0) % groups, world(0), &c);
    comm = std::make_unique<MpiCommunicator>(c, "test", 30.0);
    r = comm->rank();
    n = comm->size();
  }
  // Element i as held by group rank q.
  static float value(int q, int64_t i) { return q * 100.0f + static_cast<float>(i) + 0.5f; }
  Tensor filled(int64_t count, int q) {
    Tensor t = be->empty({count}, DType::F32);
    for (int64_t i = 0; i < count; ++i) t.data<float>()[i] = value(q, i);
    return t;
  }
  double sum_over_ranks(int64_t i) const {
    double s = 0;
    for (int q = 0; q < n; ++q) s += value(q, i);
    return s;
  }
  std::unique_ptr<Backend> be = make_cpu_backend();
  std::unique_ptr<MpiCommunicator> comm;
  int r = 0, n = 1;
};

TEST_P(Collectives, AllReduceSumAndAvg) {
  for (int64_t count : {1, 7, 1001}) {
    Tensor s = filled(count, r), a = filled(count, r);
    comm->all_reduce(s, ReduceOp::Sum);
    auto h = comm->all_reduce_async(a, ReduceOp::Avg);
    h->wait();
    for (int64_t i = 0; i < count; ++i) {
      ASSERT_FLOAT_EQ(s.data<float>()[i], static_cast<float>(sum_over_ranks(i))) << i;
      ASSERT_FLOAT_EQ(a.data<float>()[i], static_cast<float>(sum_over_ranks(i) / n)) << i;
    }
  }
}

TEST_P(Collectives, ReduceScatterEvenAndUneven) {
  for (int64_t total : {int64_t{5} * n, int64_t{5} * n + 2, int64_t{1}}) {
    const Chunk mine = chunk_of(total, n, r);
    Tensor in = filled(total, r), out = be->empty({std::max<int64_t>(mine.count, 1)}, DType::F32);
    Tensor o = out.slice_flat(0, {mine.count});
    comm->reduce_scatter(o, in, ReduceOp::Avg);
    for (int64_t i = 0; i < mine.count; ++i)
      ASSERT_FLOAT_EQ(o.data<float>()[i], static_cast<float>(sum_over_ranks(mine.begin + i) / n)) << total;
  }
}

TEST_P(Collectives, AllGatherAndBroadcast) {
  for (int64_t total : {int64_t{3} * n, int64_t{3} * n + 1}) {
    const Chunk mine = chunk_of(total, n, r);
    Tensor in = be->empty({mine.count}, DType::F32), out = be->empty({total}, DType::F32);
    for (int64_t i = 0; i < mine.count; ++i) in.data<float>()[i] = value(r, i);
    comm->all_gather(out, in);
    for (int q = 0; q < n; ++q) {
      const Chunk c = chunk_of(total, n, q);
      for (int64_t i = 0; i < c.count; ++i) ASSERT_EQ(out.data<float>()[c.begin + i], value(q, i));
    }
    // In place: each rank's chunk already sits in `out`.
    Tensor out2 = be->zeros({total});
    Tensor my_part = out2.slice_flat(mine.begin, {mine.count});
    for (int64_t i = 0; i < mine.count; ++i) my_part.data<float>()[i] = value(r, i);
    comm->all_gather(out2, my_part);
    for (int q = 0; q < n; ++q) {
      const Chunk c = chunk_of(total, n, q);
      for (int64_t i = 0; i < c.count; ++i) ASSERT_EQ(out2.data<float>()[c.begin + i], value(q, i));
    }
  }
  Tensor b = filled(11, r);
  const int root = n - 1;
  comm->broadcast(b, root);
  for (int64_t i = 0; i < 11; ++i) ASSERT_EQ(b.data<float>()[i], value(root, i));
  comm->barrier();
}

// Collectives run in issue order: each all-reduce is followed, without waiting, by an all-gather
// that reads the all-reduced buffer. Only if the all-reduce ran first does every gathered chunk
// hold the sum; a gather that overtook it would hold each rank's own, unreduced values.
TEST_P(Collectives, ManyInFlightCompleteInOrder) {
  std::vector<Tensor> ts, gathered;
  std::vector<std::unique_ptr<CommHandle>> hs;
  for (int k = 0; k < 8; ++k) {
    ts.push_back(filled(100 + k, r));
    gathered.push_back(be->empty({n * (100 + k)}, DType::F32));
  }
  for (int k = 0; k < 8; ++k) {
    hs.push_back(comm->all_reduce_async(ts[k], ReduceOp::Sum));
    hs.push_back(comm->all_gather_async(gathered[k], ts[k]));
  }
  for (auto& h : hs) h->wait();
  for (int k = 0; k < 8; ++k)
    for (int q = 0; q < n; ++q)
      for (int64_t i = 0; i < 100 + k; ++i)
        ASSERT_FLOAT_EQ(gathered[k].data<float>()[q * (100 + k) + i], static_cast<float>(sum_over_ranks(i)))
            << "collective pair " << k << ", chunk of rank " << q;
}

// A handle reports how long its collective ran: a partner that arrives 1 s late makes the early
// rank's collective take about that long (at least half of it, leaving room for a descheduled
// rank 0 on a loaded machine).
TEST_P(Collectives, HandlesMeasureTheirCollective) {
  Tensor t = filled(4, r);
  comm->barrier();
  if (r == 1) std::this_thread::sleep_for(std::chrono::seconds(1));
  auto h = comm->all_reduce_async(t, ReduceOp::Sum);
  h->wait();
  if (n > 1 && r == 0) {
    EXPECT_GE(h->seconds(), 0.5) << "rank 0 waited for the late rank inside the collective";
  }
  EXPECT_LT(h->seconds(), 30.0);
  EXPECT_GT(h->seconds(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Groups, Collectives, ::testing::Values(1, 2));

}  // namespace
}  // namespace kervan
