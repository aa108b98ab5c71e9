// `kervan bench checkpoint`: checkpoint save and load speed against plain sequential I/O of the
// same bytes, and the training stall of an asynchronous save against a synchronous one.
#include <fcntl.h>
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/reader.h"
#include "checkpoint/saver.h"
#include "checkpoint/verify.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/host_threads.h"
#include "core/error.h"
#include "core/model/gpt.h"
#include "core/rng.h"
#include "launcher/bench.h"
#include "parallel/mpi_runtime.h"
#include "parallel/tensor_parallel.h"
#include "parallel/train_step.h"

namespace kervan {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void io_fail(const char* call, const std::string& path) {
  throw EnvironmentError(call, "'" + path + "'", std::strerror(errno));
}

// Drops a file's pages from the page cache (they are clean once fsynced), so the next read comes
// from the disk, as a resume on another node would.
void evict(const std::string& path) {
  for (const auto& e : fs::recursive_directory_iterator(path.empty() ? "." : path)) {
    if (!e.is_regular_file()) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// The writer tensors of `state`, the bytes a checkpoint of this rank holds.
std::vector<const StateTensor*> writer_tensors(const StateDict& state) {
  std::vector<const StateTensor*> out;
  for (const StateTensor& t : state.tensors)
    if (t.writer) out.push_back(&t);
  return out;
}

// The same bytes written to one file with write() and fsync, then read back into the tensors.
double plain_write(const std::string& path, const std::vector<const StateTensor*>& tensors) {
  const auto t0 = Clock::now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) io_fail("open", path);
  for (const StateTensor* t : tensors) {
    const char* p = static_cast<const char*>(t->data.raw());
    for (size_t left = t->data.bytes(); left > 0;) {
      const ssize_t n = ::write(fd, p, left);
      if (n <= 0) io_fail("write", path);
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) io_fail("fsync", path);
  ::close(fd);
  return since(t0);
}

double plain_read(const std::string& path, const std::vector<const StateTensor*>& tensors) {
  const auto t0 = Clock::now();
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) io_fail("open", path);
  for (const StateTensor* t : tensors) {
    char* p = static_cast<char*>(t->data.raw());
    for (size_t left = t->data.bytes(); left > 0;) {
      const ssize_t n = ::read(fd, p, left);
      if (n <= 0) io_fail("read", path);
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  ::close(fd);
  return since(t0);
}

void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) io_fail("fsync", path);
  ::close(fd);
}

// One file for all ranks, written collectively through parallel HDF5 (MPI-IO): the alternative to
// a file per rank that the format was chosen against. Each rank writes its bytes as its range of
// one dataset; fsynced like the checkpoint files.
double collective_write(const std::string& path, const std::vector<const StateTensor*>& tensors) {
  int64_t mine = 0;
  for (const StateTensor* t : tensors) mine += t->data.numel();
  std::vector<float> buf;
  buf.reserve(mine);
  for (const StateTensor* t : tensors) {
    const float* p = t->data.data<float>();
    buf.insert(buf.end(), p, p + t->data.numel());
  }
  int64_t begin = 0, total = 0;
  MPI_Exscan(&mine, &begin, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&mine, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) begin = 0;  // MPI_Exscan leaves rank 0's result undefined
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = Clock::now();
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (file < 0) throw EnvironmentError("H5Fcreate (MPI-IO)", "'" + path + "'", "failed");
  const hsize_t n = static_cast<hsize_t>(total), start = static_cast<hsize_t>(begin),
                count = static_cast<hsize_t>(mine);
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t ds = H5Dcreate2(file, "state", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
  const hid_t mem = H5Screate_simple(1, &count, nullptr);
  const hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  const herr_t written = H5Dwrite(ds, H5T_NATIVE_FLOAT, mem, space, dxpl, buf.data());
  H5Pclose(dxpl);
  H5Sclose(mem);
  H5Dclose(ds);
  H5Sclose(space);
  H5Fclose(file);
  H5Pclose(fapl);
  if (written < 0) throw EnvironmentError("H5Dwrite (MPI-IO collective)", "'" + path + "'", "failed");
  if (rank == 0) sync_file(path);
  MPI_Barrier(MPI_COMM_WORLD);
  return since(t0);
}

}  // namespace

int run_bench_checkpoint(const BenchCheckpointOptions& o) {
  if (o.dir.empty())
    throw UserError("bench checkpoint: --dir (a scratch folder on the disk to measure) is required");
  if (fs::exists(o.dir) && !fs::is_empty(o.dir))
    throw UserError("bench checkpoint: --dir '" + o.dir + "' is not empty (it is overwritten and removed)");
  GPTConfig cfg = gpt_preset(o.preset);
  cfg.max_seq_len = std::max(cfg.max_seq_len, o.seq);
  std::unique_ptr<MpiRuntime> mpi;
  if (launched_by_mpi()) mpi = std::make_unique<MpiRuntime>();
  const int ranks = mpi ? mpi->world_size() : 1, rank = mpi ? mpi->world_rank() : 0;
  if (o.collective && !mpi) throw UserError("bench checkpoint: --collective runs under mpirun");
  // Under mpirun the model is split over every rank (TP), so each writes an equal share.
  std::unique_ptr<Communicator> tp = mpi ? mpi->group(0, "tensor-parallel", 600.0) : nullptr;
  std::unique_ptr<CommunicatorTpGroup> tp_group;
  if (ranks > 1) tp_group = std::make_unique<CommunicatorTpGroup>(*tp);
  set_host_threads(static_cast<int>(o.threads));
  auto be = make_cpu_backend();
  GPT model(cfg, *be, o.batch, o.seq, tp_group.get());
  model.init_weights(1337);
  TrainStep train_step(model, AdamWConfig{}, {nullptr, tp.get(), false});
  const int64_t n = o.batch * o.seq;
  std::vector<int32_t> x(n), y(n);
  int64_t step_index = 0;
  auto train_one = [&] {
    const uint64_t key = stream_key(7, "bench.checkpoint");
    for (int64_t i = 0; i < n; ++i) {
      x[i] = static_cast<int32_t>(splitmix64(key ^ (2 * (step_index * n + i))) % cfg.vocab_size);
      y[i] = static_cast<int32_t>(splitmix64(key ^ (2 * (step_index * n + i) + 1)) % cfg.vocab_size);
    }
    ++step_index;
    const auto t0 = Clock::now();
    model.params().zero_grad(*be);
    model.forward(x.data(), y.data(), o.batch, o.seq);
    train_step.before_last_backward();
    model.backward(1.0f);
    train_step.step(1e-4f, clip_factor(train_step.reduce_gradients(), 1.0f));
    return since(t0);
  };
  train_one();  // the moments hold real values
  StateDict state;
  train_step.state(state);
  const std::vector<const StateTensor*> writers = writer_tensors(state);
  int64_t bytes = 0;
  for (const StateTensor* t : writers) bytes += static_cast<int64_t>(t->data.bytes());
  fs::create_directories(o.dir);
  const WriterLayout layout{ranks, 1, ranks, false, rank, 0, rank};
  const CommitOptions commit{ranks, 600.0, 3, 0};
  nlohmann::json j = {{"bench", "checkpoint"},
                      {"preset", o.preset},
                      {"ranks", ranks},
                      {"threads", o.threads},
                      {"bytes_per_rank", bytes}};
  auto gbps = [](int64_t b, double s) { return static_cast<double>(b) / s / 1e9; };

  if (o.collective) {
    // File per rank (the format) against one collective file, the same bytes, synchronous.
    MPI_Barrier(MPI_COMM_WORLD);
    auto t0 = Clock::now();
    CheckpointSaver({o.dir + "/per_rank", false, commit}, layout, *be).save(1, state);
    MPI_Barrier(MPI_COMM_WORLD);
    const double per_rank = since(t0);
    const double collective = collective_write(o.dir + "/collective.h5", writers);
    int64_t total = 0;
    MPI_Allreduce(&bytes, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    j["bytes"] = total;
    j["file_per_rank_s"] = per_rank;
    j["file_per_rank_gbps"] = gbps(total, per_rank);
    j["collective_s"] = collective;
    j["collective_gbps"] = gbps(total, collective);
  } else {
    if (ranks > 1) throw UserError("bench checkpoint: run in one process, or with --collective under mpirun");
    const std::string plain = o.dir + "/plain.bin", sync_dir = o.dir + "/sync";
    const double plain_w = plain_write(plain, writers);
    auto t0 = Clock::now();
    CheckpointSaver({sync_dir, false, commit}, layout, *be).save(1, state);
    const double save = since(t0);
    evict(o.dir);
    const double plain_r = plain_read(plain, writers);
    evict(o.dir);
    t0 = Clock::now();
    {
      const CheckpointReader reader(step_folder(sync_dir, 1));
      if (!verify_checkpoint(reader).empty())
        throw EnvironmentError("verify", sync_dir, "the saved checkpoint is damaged");
      reader.read_tensors(state, *be);
    }
    const double load_verified = since(t0);
    evict(o.dir);
    t0 = Clock::now();
    CheckpointReader(step_folder(sync_dir, 1)).read_tensors(state, *be);
    const double load = since(t0);

    // The stall an asynchronous save costs training: the copy save() blocks for, plus how much
    // slower the steps run while the background thread writes, against steps without a save.
    double base = 0;
    for (int64_t i = 0; i < o.steps; ++i) base += train_one();
    base /= static_cast<double>(o.steps);
    CheckpointSaver async({o.dir + "/async", true, commit}, layout, *be);
    StateDict live;
    train_step.state(live);
    // The first save of a run also faults in its host buffer, which later saves reuse: one
    // untimed save first, so the figures are those of every save after it.
    async.save(2, live);
    async.wait();
    evict(o.dir);
    async.save(3, live);
    const double blocked = async.last_blocked_s();
    double during = 0;
    int64_t steps_during = 0;
    while (async.in_flight()) {
      during += train_one();
      ++steps_during;
    }
    async.wait();
    // Two estimates of the stall: the step slowdown measured while the writer ran (noisy where
    // other jobs share the machine: it compares steps timed at different moments), and the
    // writer thread's own CPU time, what it takes from training when training uses every core.
    const double measured = blocked + std::max(0.0, during - base * static_cast<double>(steps_during));
    const double stall = blocked + async.last_write_cpu_s();
    j["bytes"] = bytes;
    j["plain_write_s"] = plain_w;
    j["plain_write_gbps"] = gbps(bytes, plain_w);
    j["save_s"] = save;
    j["save_gbps"] = gbps(bytes, save);
    j["save_vs_plain_write"] = plain_w / save;
    j["plain_read_s"] = plain_r;
    j["plain_read_gbps"] = gbps(bytes, plain_r);
    j["load_verified_s"] = load_verified;
    j["load_verified_gbps"] = gbps(bytes, load_verified);
    j["load_s"] = load;
    j["load_gbps"] = gbps(bytes, load);
    j["load_vs_plain_read"] = plain_r / load;
    j["step_s"] = base;
    j["async_write_s"] = async.last_write_s();
    j["async_blocked_s"] = blocked;
    j["steps_during_async_write"] = steps_during;
    j["async_write_cpu_s"] = async.last_write_cpu_s();
    j["async_stall_s"] = stall;
    j["async_measured_stall_s"] = measured;
    j["sync_stall_s"] = save;
    j["async_stall_vs_sync"] = stall / save;
    j["async_measured_stall_vs_sync"] = measured / save;
  }
  if (mpi) MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    std::printf("%s\n", j.dump().c_str());
    fs::remove_all(o.dir);
  }
  return 0;
}

}  // namespace kervan
