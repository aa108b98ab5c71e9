#pragma once
#include <functional>

#include "core/backend.h"
#include "parallel/communicator.h"

namespace kervan {

// Runs `work` on rank 0 of `group` only and makes its outcome every rank's: if it throws, every
// rank of the group throws the same kind of error (UserError, EnvironmentError, or an internal
// error) with the same message; if it succeeds, every rank returns normally. For work whose
// result the other ranks can trust without repeating it, such as reading and checksumming files
// they share (once per node instead of once per rank).
void run_on_root_and_share_outcome(Communicator& group, Backend& be, const std::function<void()>& work);

}  // namespace kervan
