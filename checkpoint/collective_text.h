#pragma once
#include <string>
#include <vector>

#include "core/backend.h"
#include "parallel/communicator.h"

namespace kervan {

// Every rank's `text`, in rank order, on every rank of `group` (collective): how ranks share what
// they found (a damaged file, the checkpoint rank 0 chose) through a communicator of tensors.
std::vector<std::string> all_gather_text(Communicator& group, Backend& backend, const std::string& text);

}  // namespace kervan
