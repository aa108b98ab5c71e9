#pragma once
#include <functional>
#include <memory>
#include <string>

#include "checkpoint/reader.h"
#include "parallel/communicator.h"

namespace kervan {

using WarningSink = std::function<void(const std::string&)>;

// Opens the committed checkpoint at `path` (a step folder, or a checkpoint folder meaning its
// newest) and verifies it, every rank checking its share of the files (collective over `world`).
// Damage is a UserError naming `what`, the file and the tensors.
std::unique_ptr<CheckpointReader> open_verified(const std::string& path, const std::string& what,
                                                Communicator& world, Backend& backend);

// The checkpoint a run in `dir` resumes from with checkpoint.resume = "auto" (collective): the
// newest committed one that verifies. A damaged one is skipped with a warning naming the file and
// tensor, or, with `strict`, is a UserError; a checkpoint of another format version is always an
// error. Null when `dir` holds no committed checkpoint; a UserError when it holds some but none
// is intact, or when `latest` names nothing.
std::unique_ptr<CheckpointReader> find_resume_checkpoint(const std::string& dir, bool strict,
                                                         Communicator& world, Backend& backend,
                                                         const WarningSink& warn);

}  // namespace kervan
