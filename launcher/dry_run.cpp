#include "launcher/dry_run.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/backends/backends.h"
#include "core/error.h"
#include "launcher/config_keys.h"
#include "launcher/memory_plan.h"
#include "launcher/model_setup.h"
#include "launcher/training_data.h"
#include "parallel/process_grid.h"

namespace kervan {

namespace {

int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);  // SLURM_NTASKS_PER_NODE may read "2(x3)": the first count
  return end != v && n > 0 ? static_cast<int>(n) : 0;
}

double gb(int64_t bytes) {
  return static_cast<double>(bytes) / 1e9;
}

int64_t meminfo_kb(const char* key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  int64_t v = 0;
  std::string unit;
  while (in >> k >> v >> unit)
    if (k == key) return v;
  return -1;
}

}  // namespace

PlannedLayout planned_layout(int world_flag, int ranks_per_node_flag) {
  PlannedLayout p;
  const int env_world =
      env_int("OMPI_COMM_WORLD_SIZE") ? env_int("OMPI_COMM_WORLD_SIZE") : env_int("SLURM_NTASKS");
  p.world = world_flag > 0 ? world_flag : env_world > 0 ? env_world : 1;
  const int env_local = env_int("OMPI_COMM_WORLD_LOCAL_SIZE") ? env_int("OMPI_COMM_WORLD_LOCAL_SIZE")
                                                              : env_int("SLURM_NTASKS_PER_NODE");
  p.ranks_per_node = ranks_per_node_flag > 0 ? ranks_per_node_flag : env_local > 0 ? env_local : p.world;
  p.ranks_per_node = std::min(p.ranks_per_node, p.world);
  if (const char* r = std::getenv("OMPI_COMM_WORLD_RANK")) p.rank = std::atoi(r);
  return p;
}

int64_t peak_resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("VmHWM:")) return std::strtoll(line.c_str() + 6, nullptr, 10) * 1024;
  return -1;
}

int run_dry_run(const RunConfig& cfg, const PlannedLayout& layout) {
  ProcessGrid grid;
  try {
    grid = ProcessGrid::make(0, layout.world, static_cast<int>(cfg.parallel.tp));
  } catch (const UserError& e) {
    throw UserError(cfg.file + ": " + e.what());
  }
  if (layout.gpu_memory_gb > 0 && cfg.train.device != "cuda")
    throw UserError(cfg.file + ": --gpu-memory plans a GPU run, and train.device is \"" + cfg.train.device + "\"");
  // Headers and manifests only: the plan needs the sizes, not the checksums.
  const TrainingData data = open_training_data(cfg, Verify::HeaderOnly);
  if (layout.rank != 0) return 0;

  std::string out =
      fmt::format("# kervan train --dry-run: {}\n# resolved config (key = value  # from)\n", cfg.file);
  for (const ConfigKey& k : config_keys()) {
    const auto o = cfg.origin.find(k.key);
    out += fmt::format("{} = {}  # {}\n", k.key, display_value(k, cfg),
                       o == cfg.origin.end() ? "default" : o->second);
  }
  const auto& t = cfg.train;
  const int64_t samples_per_step = t.micro_batch * grid.dp * t.grad_accum;
  const int64_t tokens_per_step = samples_per_step * t.seq_len;
  out += "\n# plan\n";
  out += fmt::format("parameters: {} ({:.2f}M)\n", model_params(cfg), model_params(cfg) / 1e6);
  out += fmt::format("layout: world {} = DP {} x TP {}, ZeRO-{}, {} rank(s) per node\n", grid.world_size,
                     grid.dp, grid.tp, cfg.parallel.zero == 1 && grid.dp > 1 ? 1 : 0, layout.ranks_per_node);
  out += fmt::format(
      "tokens per step: {} (micro_batch {} x DP {} x grad_accum {} x seq_len {}); {} in {} steps\n",
      tokens_per_step, t.micro_batch, grid.dp, t.grad_accum, t.seq_len, tokens_per_step * t.steps, t.steps);
  const DataLoader& loader = data.train->loader();
  for (int d = 0; d < loader.num_sources(); ++d) {
    const double per_step = loader.weight(d) * static_cast<double>(samples_per_step);
    const double steps = static_cast<double>(loader.num_windows(d)) / per_step;
    out += fmt::format(
        "source {}: {} windows of {} tokens, weight {:.3f}: {:.1f} steps per epoch ({:.2f} epochs in "
        "train.steps)\n",
        loader.source(d).path(), loader.num_windows(d), t.seq_len, loader.weight(d), steps,
        static_cast<double>(t.steps) / steps);
  }
  const std::optional<MemoryPlan> memory = plan_memory(cfg, grid.tp, grid.dp);
  const int64_t available = available_memory_bytes();
  const int64_t total_kb = meminfo_kb("MemTotal:");
  int64_t gpu_free = -1;
  if (memory) {
    const int64_t host = memory->host_total();
    out += fmt::format("memory per rank: {}\n", memory->describe());
    out += fmt::format(
        "memory on this node: {} rank(s) x {:.2f} GB = {:.2f} GB of {:.2f} GB available ({:.2f} GB "
        "total): {}\n",
        layout.ranks_per_node, gb(host), gb(host * layout.ranks_per_node), gb(available), gb(total_kb * 1024),
        available < 0 || host * layout.ranks_per_node <= available ? "fits" : "DOES NOT FIT");
    if (memory->device == Device::CUDA && layout.gpu_memory_gb > 0) {
      // Against the card the user names (another machine's): the context counts too.
      const int64_t need = memory->device_total() + memory->context;
      out += fmt::format("memory on each GPU: {:.2f} GB per rank with the CUDA context, of {:.2f} GB "
                         "(--gpu-memory): {}\n",
                         gb(need), layout.gpu_memory_gb, need <= layout.gpu_memory_gb * 1e9 ? "fits" : "DOES NOT FIT");
    } else if (memory->device == Device::CUDA) {
      // Against this machine's GPU where it has one (its free memory, the context already made);
      // planning for another machine's needs none.
      std::string why;
      try {
        gpu_free = gpu_memory().free;
      } catch (const UserError& e) {
        why = e.what();
      }
      out += gpu_free < 0 ? fmt::format("memory on each GPU: {:.2f} GB per rank; not compared ({}; "
                                        "--gpu-memory GB compares with a card of that size)\n",
                                        gb(memory->device_total()), why)
                          : fmt::format("memory on each GPU: {:.2f} GB per rank of {:.2f} GB free: {}\n",
                                        gb(memory->device_total()), gb(gpu_free),
                                        memory->device_total() <= gpu_free ? "fits" : "DOES NOT FIT");
    }
  } else {
    out += fmt::format("memory per rank: not planned for model.arch = \"{}\" (GPT only)\n", cfg.arch);
  }
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  if (memory) require_memory_fits(*memory, layout.ranks_per_node, available, cfg.file);
  if (memory && gpu_free >= 0) require_device_memory_fits(*memory, gpu_free, cfg.file);
  if (memory && memory->device == Device::CUDA && layout.gpu_memory_gb > 0)
    require_gpu_fits(*memory, static_cast<int64_t>(layout.gpu_memory_gb * 1e9), cfg.file);
  return 0;
}

}  // namespace kervan
