#pragma once
#include <string>

namespace kervan {

// world = DP x TP with TP innermost: ranks r and r+1 are tensor-parallel peers (same node), and
//   tp_rank = rank % tp,  dp_rank = rank / tp.
// The data-parallel group of a rank is every rank with its tp_rank; the tensor-parallel group is
// every rank with its dp_rank.
struct ProcessGrid {
  int world_rank = 0, world_size = 1;
  int tp = 1, dp = 1;
  int tp_rank = 0, dp_rank = 0;

  // Throws UserError (naming parallel.tp) when tp does not divide the world size.
  static ProcessGrid make(int world_rank, int world_size, int tp);
  std::string describe() const;
};

}  // namespace kervan
