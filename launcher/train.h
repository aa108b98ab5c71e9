#pragma once
#include "launcher/run_config.h"

namespace kervan {

// `kervan train`: single-process training loop. Returns the process exit code.
int run_train(const RunConfig& config);

}  // namespace kervan
