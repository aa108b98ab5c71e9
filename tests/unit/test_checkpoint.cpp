// Checkpoints written and read in one process: layouts simulated rank by rank (simulated_ranks.h)
// go through the same saver, commit and reader that `kervan train` uses.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/format.h"
#include "checkpoint/reader.h"
#include "checkpoint/saver.h"
#include "checkpoint/verify.h"
#include "core/cpu/cpu_backend.h"
#include "simulated_ranks.h"
#include "temp_dir_test.h"

namespace kervan::test {
namespace {

// 4 heads, vocabulary 50 (padded to 128): splits over TP = 1, 2 and 4.
const GPTConfig kTiny{2, 4, 16, 50, 8};

struct Layout {
  int dp, tp;
  bool zero1;
};
std::string name_of(const Layout& l) {
  return "DP=" + std::to_string(l.dp) + " x TP=" + std::to_string(l.tp) + (l.zero1 ? " ZeRO-1" : "");
}

// A synchronous save (no copy) points at host tensors, but must still copy device tensors: the
// writer reads host memory. The device tensor here is host memory labelled CUDA (the CPU backend's
// copy_to_host is a memcpy), which is what the snapshot sees of a GPU tensor.
TEST(Snapshot, UncopiedSnapshotStillCopiesDeviceTensors) {
  auto be = make_cpu_backend();
  std::vector<float> host_values{1, 2, 3}, device_values{4, 5, 6, 7};
  const auto as_tensor = [](std::vector<float>& v, Device d) {
    return Tensor(std::make_shared<Storage>(v.data(), v.size() * sizeof(float), d, [](void*) {}), 0,
                  {static_cast<int64_t>(v.size())}, DType::F32);
  };
  StateDict state;
  state.tensors.push_back({"host", TensorSlice::whole({3}), as_tensor(host_values, Device::CPU)});
  state.tensors.push_back({"device", TensorSlice::whole({4}), as_tensor(device_values, Device::CUDA)});
  for (const bool copy : {false, true}) {
    StateSnapshot snapshot;
    snapshot.take(state, *be, copy);
    ASSERT_EQ(snapshot.tensors().size(), 2u);
    const SnapshotTensor& host = snapshot.tensors()[0];
    const SnapshotTensor& device = snapshot.tensors()[1];
    EXPECT_EQ(host.data == host_values.data(), !copy) << "copy " << copy;
    EXPECT_NE(device.data, device_values.data()) << "copy " << copy;
    EXPECT_EQ(std::memcmp(device.data, device_values.data(), 16), 0) << "copy " << copy;
    EXPECT_EQ(std::memcmp(host.data, host_values.data(), 12), 0) << "copy " << copy;
  }
}

TEST(CheckpointLayouts, WriterSlicesCoverEveryGlobalTensorExactlyOnce) {
  auto be = make_cpu_backend();
  for (const Layout& l :
       {Layout{1, 1, false}, Layout{2, 1, false}, Layout{2, 1, true}, Layout{3, 1, true}, Layout{1, 2, false},
        Layout{1, 4, false}, Layout{2, 2, true}, Layout{3, 2, false}, Layout{16, 4, true}}) {
    std::map<std::string, std::vector<int>> writes;  // per global element
    for (auto& rank : simulate_layout(*be, kTiny, l.dp, l.tp, l.zero1)) {
      for (const StateTensor& t : rank->state().tensors) {
        std::vector<int>& w = writes[t.name];
        w.resize(shape_numel(t.slice.global_shape), 0);
        if (!t.writer) continue;
        for (int64_t i = 0; i < t.slice.flat_count; ++i) ++w[t.slice.global_index(i)];
      }
    }
    ASSERT_EQ(writes.size(), 3 * simulate_layout(*be, kTiny, 1, 1, false)[0]->model->params().all().size())
        << name_of(l) << ": model, m and v of every parameter";
    for (const auto& [name, w] : writes)
      for (size_t g = 0; g < w.size(); ++g)
        ASSERT_EQ(w[g], 1) << name_of(l) << ": element " << g << " of " << name;
  }
}

class Checkpoint : public TempDirTest {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend();

  // Every rank saves `step` through its own synchronous saver; rank 0 goes last, so its commit
  // finds every other rank's part already written.
  void save_ranks(std::vector<std::unique_ptr<SimulatedRank>>& ranks, int64_t step) {
    for (size_t r = ranks.size(); r-- > 0;) {
      StateDict state = ranks[r]->state();
      state.values["optim/step"] = step;
      CommitOptions commit{static_cast<int>(ranks.size()), 10.0, 3, 0};
      CheckpointSaver saver({dir.string(), /*async=*/false, commit}, ranks[r]->layout, *be);
      saver.save(step, state);
    }
  }

  // Loads `folder` into every rank of `ranks` and checks each element against value_at.
  void expect_loaded(const std::string& folder, std::vector<std::unique_ptr<SimulatedRank>>& ranks,
                     int64_t step, const std::string& what) {
    const CheckpointReader reader(folder);
    for (auto& rank : ranks) {
      StateDict state = rank->state();
      reader.read_tensors(state, *be);
      reader.read_values(state);
      rank->train_step->load_state(state);
      const StateDict after = rank->state();
      EXPECT_EQ(after.value<int64_t>("optim/step"), step) << what;
      for (const StateTensor& t : after.tensors) {
        const std::vector<float> got = be->to_host<float>(t.data);
        for (int64_t i = 0; i < t.slice.flat_count; ++i)
          ASSERT_EQ(got[i], value_at(t.name, t.slice.global_index(i)))
              << what << ", rank " << rank->layout.rank << ": " << t.name << " " << t.slice.describe()
              << " element " << i;
      }
    }
  }
};

TEST_F(Checkpoint, SixtyFourRanksLoadIntoOneTwoAndThree) {
  auto writers = simulate_layout(*be, kTiny, 16, 4, /*zero1=*/true);
  for (auto& rank : writers) fill_known_values(*be, rank->state());
  save_ranks(writers, 7);

  const std::string folder = step_folder(dir.string(), 7);
  const CheckpointReader reader(folder);
  EXPECT_EQ(reader.manifest().layout.describe(), "DP=16 x TP=4, ZeRO-1 (64 ranks)");
  EXPECT_EQ(reader.manifest().files.size(), 64u) << "every rank owns a ZeRO-1 chunk";
  EXPECT_TRUE(verify_checkpoint(reader).empty());
  EXPECT_EQ(read_latest(dir.string()), 7);

  for (const Layout& l : {Layout{1, 1, false}, Layout{2, 1, true}, Layout{1, 2, false}, Layout{3, 1, true},
                          Layout{3, 1, false}}) {
    auto readers = simulate_layout(*be, kTiny, l.dp, l.tp, l.zero1);
    expect_loaded(folder, readers, 7, name_of(l));
  }
}

TEST_F(Checkpoint, AnyLayoutLoadsIntoAnyOther) {
  const std::vector<Layout> layouts{{1, 1, false}, {2, 2, true}, {3, 1, true}, {1, 4, false}, {2, 1, false}};
  int64_t step = 0;
  for (const Layout& from : layouts) {
    auto writers = simulate_layout(*be, kTiny, from.dp, from.tp, from.zero1);
    for (auto& rank : writers) fill_known_values(*be, rank->state());
    save_ranks(writers, ++step);
    for (const Layout& to : layouts) {
      auto readers = simulate_layout(*be, kTiny, to.dp, to.tp, to.zero1);
      expect_loaded(step_folder(dir.string(), step), readers, step, name_of(from) + " -> " + name_of(to));
    }
  }
}

TEST_F(Checkpoint, AnotherModelShapeIsAnErrorNamingTheTensorAndBothShapes) {
  auto writers = simulate_layout(*be, kTiny, 1, 1, false);
  save_ranks(writers, 1);
  GPTConfig wider = kTiny;
  wider.d_model = 32;
  auto other = simulate_layout(*be, wider, 1, 1, false);
  const CheckpointReader reader(step_folder(dir.string(), 1));
  try {
    reader.read_tensors(other[0]->state(), *be);
    FAIL() << "a 16-wide checkpoint loaded into a 32-wide model";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "tensor model/wte is [128, 16] in the checkpoint but [128, 32] in the model"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(Checkpoint, FlippedByteIsNamedByFileAndTensor) {
  auto writers = simulate_layout(*be, kTiny, 1, 1, false);
  fill_known_values(*be, writers[0]->state());
  save_ranks(writers, 3);
  const std::string folder = step_folder(dir.string(), 3), file = folder + "/" + rank_file_name(0);
  // Find optim/v/h.1.mlp.c_fc.weight's bytes in the file and flip one in the middle.
  const std::string target = "optim/v/h.1.mlp.c_fc.weight";
  const StateDict state = writers[0]->state();
  const StateTensor* t = nullptr;
  for (const StateTensor& s : state.tensors)
    if (s.name == target) t = &s;
  ASSERT_NE(t, nullptr);
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = bytes.find(std::string(static_cast<const char*>(t->data.raw()), t->data.bytes()));
  ASSERT_NE(at, std::string::npos);
  bytes[at + t->data.bytes() / 2] ^= 0x10;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;

  const std::vector<Damage> damage = verify_checkpoint(CheckpointReader(folder));
  ASSERT_EQ(damage.size(), 1u);
  EXPECT_EQ(damage[0].file, file);
  ASSERT_EQ(damage[0].tensors.size(), 1u) << damage[0].describe();
  EXPECT_EQ(damage[0].tensors[0], target + " [0:64, 0:16] of [64, 16]");
  EXPECT_NE(damage[0].describe().find("checksum"), std::string::npos) << damage[0].describe();
}

TEST_F(Checkpoint, AnotherFormatVersionIsRefusedByName) {
  auto writers = simulate_layout(*be, kTiny, 1, 1, false);
  save_ranks(writers, 2);
  const std::string manifest = step_folder(dir.string(), 2) + "/" + kManifestFile;
  std::string text;
  {
    std::ifstream in(manifest);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string from = "\"format_version\": 1", to = "\"format_version\": 2";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(), to);
  std::ofstream(manifest, std::ios::trunc) << text;
  try {
    CheckpointReader reader(step_folder(dir.string(), 2));
    FAIL() << "a version 2 checkpoint was read";
  } catch (const CheckpointVersionError& e) {
    EXPECT_NE(std::string(e.what()).find(manifest + ": checkpoint format version 2"), std::string::npos)
        << e.what();
  }
}

TEST_F(Checkpoint, AsyncSavesKeepTheNewestThreeAndEveryFourth) {
  auto ranks = simulate_layout(*be, kTiny, 1, 1, false);
  CheckpointSaver saver({dir.string(), /*async=*/true, {1, 10.0, /*keep_last=*/3, /*keep_every=*/4}},
                        ranks[0]->layout, *be);
  for (int64_t step = 1; step <= 9; ++step) {
    StateDict state = ranks[0]->state();
    state.values["optim/step"] = step;
    saver.save(step, state);
  }
  saver.wait();
  EXPECT_EQ(committed_steps(dir.string()), (std::vector<int64_t>{4, 7, 8, 9}));
  EXPECT_EQ(read_latest(dir.string()), 9);
  EXPECT_EQ(CheckpointReader(step_folder(dir.string(), 9)).manifest().values.at("optim/step"),
            StateValue{int64_t{9}});
}

TEST(CheckpointRetention, KeepsTheNewestAndTheMultiples) {
  EXPECT_EQ(steps_to_delete({1, 2, 3, 4, 5}, 3, 0), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(steps_to_delete({2, 4, 6, 8, 10}, 1, 4), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(steps_to_delete({5}, 3, 0), (std::vector<int64_t>{}));
}

TEST_F(Checkpoint, FailedBackgroundSaveIsReportedAndTheLastGoodOneStays) {
  auto ranks = simulate_layout(*be, kTiny, 1, 1, false);
  CheckpointSaver saver({dir.string(), true, {1, 10.0, 3, 0}}, ranks[0]->layout, *be);
  saver.save(1, ranks[0]->state());
  saver.wait();
  // A file where step 2's folder must go: the background write cannot create it.
  std::ofstream(step_folder(dir.string(), 2) + kTmpSuffix) << "in the way";
  saver.save(2, ranks[0]->state());
  EXPECT_THROW(saver.wait(), EnvironmentError);
  EXPECT_EQ(committed_steps(dir.string()), (std::vector<int64_t>{1}));
  EXPECT_EQ(read_latest(dir.string()), 1);
  EXPECT_TRUE(verify_checkpoint(CheckpointReader(step_folder(dir.string(), 1))).empty());
}

TEST_F(Checkpoint, LatestThatNamesNothingIsAnErrorNamingIt) {
  std::ofstream(dir / kLatestFile) << "step_00000009\n";
  try {
    read_latest(dir.string());
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find((dir / kLatestFile).string() + ": names step_00000009"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(Checkpoint, UnfinishedSavesAreNotCheckpointsAndAreCleanedUp) {
  auto ranks = simulate_layout(*be, kTiny, 1, 1, false);
  save_ranks(ranks, 1);
  std::filesystem::create_directories(step_folder(dir.string(), 2) + kTmpSuffix);
  std::filesystem::create_directories(step_folder(dir.string(), 3));  // no manifest: a copy cut short
  EXPECT_EQ(committed_steps(dir.string()), (std::vector<int64_t>{1}));
  EXPECT_THROW(CheckpointReader(step_folder(dir.string(), 3)), UserError);
  EXPECT_EQ(remove_stale_parts(dir.string()), 1);
  EXPECT_FALSE(std::filesystem::exists(step_folder(dir.string(), 2) + kTmpSuffix));
}

TEST_F(Checkpoint, ASecondJobIsLockedOut) {
  const DirLock first(dir.string(), "checkpoint.dir");
  try {
    const DirLock second(dir.string(), "checkpoint.dir");
    FAIL() << "two locks on one folder";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("is in use by another job (pid " + std::to_string(::getpid())),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kervan::test
