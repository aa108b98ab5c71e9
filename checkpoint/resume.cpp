#include "checkpoint/resume.h"

#include <sstream>
#include <vector>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/collective_text.h"
#include "checkpoint/format.h"
#include "checkpoint/verify.h"
#include "core/error.h"

namespace kervan {

namespace {

// Opens and verifies `folder` on every rank; returns the reader and, when something is wrong,
// every rank's findings joined into one message (the same on all ranks).
std::unique_ptr<CheckpointReader> open_and_verify(const std::string& folder, Communicator& world,
                                                  Backend& backend, std::string& damage) {
  std::unique_ptr<CheckpointReader> reader;
  std::string found;
  try {
    reader = std::make_unique<CheckpointReader>(folder);
    for (const Damage& d : verify_checkpoint(*reader, world.rank(), world.size()))
      found += (found.empty() ? "" : "; ") + d.describe();
  } catch (const CheckpointVersionError&) {
    throw;  // not damage: never skipped
  } catch (const UserError& e) {
    found = e.what();
  }
  damage.clear();
  for (const std::string& f : all_gather_text(world, backend, found))
    if (!f.empty() && damage.find(f) == std::string::npos) damage += (damage.empty() ? "" : "; ") + f;
  return reader;
}

// Rank 0's view of the committed steps, newest first, on every rank (ranks may see a shared
// folder at slightly different moments; rank 0 decides).
std::vector<int64_t> candidate_steps(const std::string& dir, Communicator& world, Backend& backend) {
  std::string listed;
  if (world.rank() == 0) {
    read_latest(dir);  // a `latest` that names nothing is an error, not a silent fallback
    for (int64_t s : committed_steps(dir)) listed = std::to_string(s) + " " + listed;
  }
  std::istringstream in(all_gather_text(world, backend, listed)[0]);
  std::vector<int64_t> steps;
  for (int64_t s; in >> s;) steps.push_back(s);
  return steps;
}

}  // namespace

std::unique_ptr<CheckpointReader> open_verified(const std::string& path, const std::string& what,
                                                Communicator& world, Backend& backend) {
  // Every rank resolves the same folder: no job saves into it meanwhile (the folder lock).
  const std::string folder = resolve_checkpoint_folder(path, what);
  std::string damage;
  std::unique_ptr<CheckpointReader> reader = open_and_verify(folder, world, backend, damage);
  if (!damage.empty()) throw UserError(what + ": checkpoint " + folder + " is damaged: " + damage);
  return reader;
}

std::unique_ptr<CheckpointReader> find_resume_checkpoint(const std::string& dir, bool strict,
                                                         Communicator& world, Backend& backend,
                                                         const WarningSink& warn) {
  const std::vector<int64_t> steps = candidate_steps(dir, world, backend);
  for (int64_t step : steps) {
    const std::string folder = step_folder(dir, step);
    std::string damage;
    std::unique_ptr<CheckpointReader> reader = open_and_verify(folder, world, backend, damage);
    if (damage.empty()) return reader;
    if (strict)
      throw UserError("checkpoint " + folder + " is damaged: " + damage +
                      " (checkpoint.strict = true: not falling back to an older checkpoint)");
    warn("checkpoint " + folder + " is damaged: " + damage + "; trying the one before it");
  }
  if (!steps.empty())
    throw UserError(dir + ": none of its " + std::to_string(steps.size()) +
                    " checkpoints is intact (see the warnings above)");
  return nullptr;
}

}  // namespace kervan
