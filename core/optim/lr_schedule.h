#pragma once
#include <cstdint>
#include <string>

namespace kervan {

// Learning rate as a function of the step (0-based):
//   warm-up   step < warmup:            max_lr * (step + 1) / warmup
//   cosine    then, until total_steps:  min_lr + (max_lr - min_lr) * (1 + cos(pi * progress)) / 2
//   constant  then:                     max_lr
//   wsd       then (warm-up, stable, decay): max_lr until the last decay_steps, which go down
//             linearly to min_lr
// After total_steps the rate stays at its final value.
struct LrSchedule {
  enum class Kind { Cosine, Constant, WarmupStableDecay };
  Kind kind = Kind::Cosine;
  float max_lr = 6e-4f;
  float min_lr = 6e-5f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  int64_t decay_steps = 0;  // wsd only

  float at(int64_t step) const;
};

// "cosine", "constant", "wsd"; throws UserError naming train.schedule otherwise.
LrSchedule::Kind parse_schedule_kind(const std::string& name);

}  // namespace kervan
