#include "core/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kervan {

float LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return max_lr * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  switch (kind) {
    case Kind::Constant:
      return max_lr;
    case Kind::Cosine: {
      if (step >= total_steps) return min_lr;
      const double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
      return static_cast<float>(min_lr + 0.5 * (max_lr - min_lr) * (1.0 + std::cos(M_PI * progress)));
    }
    case Kind::WarmupStableDecay: {
      const int64_t decay_start = total_steps - decay_steps;
      if (step < decay_start) return max_lr;
      if (step >= total_steps) return min_lr;
      const double progress = static_cast<double>(step - decay_start + 1) / static_cast<double>(decay_steps);
      return static_cast<float>(max_lr + (min_lr - max_lr) * progress);
    }
  }
  return max_lr;
}

LrSchedule::Kind parse_schedule_kind(const std::string& name) {
  if (name == "cosine") return LrSchedule::Kind::Cosine;
  if (name == "constant") return LrSchedule::Kind::Constant;
  if (name == "wsd") return LrSchedule::Kind::WarmupStableDecay;
  throw UserError("train.schedule: unknown schedule '" + name + "' (known: cosine, constant, wsd)");
}

}  // namespace kervan
