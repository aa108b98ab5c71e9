#include "parallel/process_grid.h"

#include "core/error.h"

namespace kervan {

ProcessGrid ProcessGrid::make(int world_rank, int world_size, int tp) {
  if (tp < 1) throw UserError("parallel.tp must be >= 1, got " + std::to_string(tp));
  if (world_size % tp != 0)
    throw UserError("parallel.tp (" + std::to_string(tp) + ") does not divide the number of processes (" +
                    std::to_string(world_size) + ")");
  ProcessGrid g;
  g.world_rank = world_rank;
  g.world_size = world_size;
  g.tp = tp;
  g.dp = world_size / tp;
  g.tp_rank = world_rank % tp;
  g.dp_rank = world_rank / tp;
  return g;
}

std::string ProcessGrid::describe() const {
  return "world " + std::to_string(world_size) + " = dp " + std::to_string(dp) + " x tp " + std::to_string(tp);
}

}  // namespace kervan
