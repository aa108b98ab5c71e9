// Checkpoints under mpirun: every rank saves its part asynchronously (the state changes right
// after save() returns, so the snapshot must have been taken), rank 0 commits, and the collective
// resume finds, verifies (files split over the ranks) and loads it element-exact. A flipped byte
// in the newest checkpoint makes resume fall back to the previous one with a warning naming the
// file and tensor on every rank, or, strict, stop with that message on every rank.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/format.h"
#include "checkpoint/resume.h"
#include "checkpoint/saver.h"
#include "core/cpu/cpu_backend.h"
#include "core/model/gpt.h"
#include "core/rng.h"
#include "parallel/mpi_communicator.h"
#include "parallel/tensor_parallel.h"
#include "parallel/train_step.h"

namespace kervan {
namespace {

const GPTConfig kConfig{2, 4, 16, 50, 8};

float value_at(const std::string& name, int64_t g, int64_t step) {
  return normal_at(stream_key(static_cast<uint64_t>(step), name), static_cast<uint64_t>(g));
}

class CheckpointMpi : public ::testing::Test {
 protected:
  void SetUp() override {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    tp = size % 2 == 0 ? 2 : 1;
    world = split(0, "world");
    tp_comm = split(rank / tp, "tensor-parallel");
    dp_comm = split(rank % tp, "data-parallel");
    tp_group = std::make_unique<CommunicatorTpGroup>(*tp_comm);
    // One scratch folder for the job: rank 0 makes it, everyone gets its name.
    char name[256] = {};
    if (rank == 0) {
      std::snprintf(name, sizeof name, "%s/kervan_ckpt_mpi_XXXXXX", ::testing::TempDir().c_str());
      ASSERT_NE(mkdtemp(name), nullptr);
    }
    MPI_Bcast(name, sizeof name, MPI_CHAR, 0, MPI_COMM_WORLD);
    dir = name;
  }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) std::filesystem::remove_all(dir);
  }
  std::unique_ptr<MpiCommunicator> split(int color, const std::string& what) {
    MPI_Comm c;
    MPI_Comm_split(MPI_COMM_WORLD, color, rank, &c);
    return std::make_unique<MpiCommunicator>(c, what, 60.0);
  }
  WriterLayout layout() const { return {size, size / tp, tp, true, rank, rank / tp, rank % tp}; }

  // A model and optimizer of this rank's layout whose every element holds value_at(.., step).
  struct Rank {
    std::unique_ptr<GPT> model;
    std::unique_ptr<TrainStep> step;
  };
  Rank make_rank() {
    Rank r;
    r.model = std::make_unique<GPT>(kConfig, *be, 1, kConfig.max_seq_len, tp > 1 ? tp_group.get() : nullptr);
    r.step =
        std::make_unique<TrainStep>(*r.model, AdamWConfig{}, StepLayout{dp_comm.get(), tp_comm.get(), true});
    return r;
  }
  void fill(const StateDict& state, int64_t step, bool zero = false) {
    for (const StateTensor& t : state.tensors) {
      std::vector<float> host(t.slice.flat_count);
      for (int64_t i = 0; i < t.slice.flat_count; ++i)
        host[i] = zero ? 0.0f : value_at(t.name, t.slice.global_index(i), step);
      Tensor v = t.data;
      be->copy_from_host(v, host.data());
    }
  }
  void save(int64_t step) {
    Rank r = make_rank();
    StateDict state;
    r.step->state(state);
    fill(state, step);
    state.values["optim/step"] = step;
    CheckpointSaver saver({dir, /*async=*/true, {size, 60.0, 3, 0}}, layout(), *be);
    saver.save(step, state);
    fill(state, step, /*zero=*/true);  // training goes on: the save must not see this
    saver.wait();
    MPI_Barrier(MPI_COMM_WORLD);  // rank 0 has committed
  }
  void expect_loaded(const CheckpointReader& reader, int64_t step) {
    Rank r = make_rank();
    StateDict state;
    r.step->state(state);
    reader.read_tensors(state, *be);
    reader.read_values(state);
    r.step->load_state(state);
    StateDict after;
    r.step->state(after);
    EXPECT_EQ(after.value<int64_t>("optim/step"), step);
    for (const StateTensor& t : after.tensors) {
      const std::vector<float> got = be->to_host<float>(t.data);
      for (int64_t i = 0; i < t.slice.flat_count; ++i)
        ASSERT_EQ(got[i], value_at(t.name, t.slice.global_index(i), step))
            << "rank " << rank << " " << t.name;
    }
  }

  int rank = 0, size = 1, tp = 1;
  std::string dir;
  std::unique_ptr<Backend> be = make_cpu_backend();
  std::unique_ptr<MpiCommunicator> world, tp_comm, dp_comm;
  std::unique_ptr<CommunicatorTpGroup> tp_group;
};

TEST_F(CheckpointMpi, AsyncSaveOnEveryRankThenResumeLoadsItExactly) {
  save(4);
  std::vector<std::string> warnings;
  auto reader =
      find_resume_checkpoint(dir, false, *world, *be, [&](const std::string& w) { warnings.push_back(w); });
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(reader->manifest().step, 4);
  EXPECT_EQ(reader->manifest().layout.world_size, size);
  expect_loaded(*reader, 4);
}

TEST_F(CheckpointMpi, DamagedNewestFallsBackWithAWarningOrStopsWhenStrict) {
  save(2);
  save(4);
  // Rank 0 flips a byte in the middle of a tensor of the last rank's file, so that some other rank
  // finds it (the files are split over the ranks for verification).
  const std::string file = step_folder(dir, 4) + "/" + rank_file_name(size - 1);
  if (rank == 0) {
    const CheckpointReader reader(step_folder(dir, 4));
    const SavedTensor* victim = nullptr;
    for (const SavedTensor& t : reader.manifest().tensors)
      if (t.file == rank_file_name(size - 1)) victim = &t;
    ASSERT_NE(victim, nullptr);
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t d = H5Dopen2(f, victim->dataset.c_str(), H5P_DEFAULT);
    const auto at = static_cast<std::streamoff>(H5Dget_offset(d) + 4 * (victim->slice.flat_count / 2));
    H5Dclose(d);
    H5Fclose(f);
    std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(at);
    char c = 0;
    io.read(&c, 1);
    c ^= 0x01;
    io.seekp(at);
    io.write(&c, 1);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  std::vector<std::string> warnings;
  auto reader =
      find_resume_checkpoint(dir, false, *world, *be, [&](const std::string& w) { warnings.push_back(w); });
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->manifest().step, 2);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(file), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("damaged tensor"), std::string::npos) << warnings[0];
  expect_loaded(*reader, 2);
  try {
    find_resume_checkpoint(dir, true, *world, *be, [](const std::string&) {});
    ADD_FAILURE() << "strict resume loaded a damaged checkpoint";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("checkpoint.strict"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kervan
