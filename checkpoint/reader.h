#pragma once
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "checkpoint/hdf5_file.h"
#include "checkpoint/manifest.h"
#include "core/state.h"

namespace kervan {

// A committed checkpoint opened for reading, under any layout: each tensor a rank asks for is
// filled from the saved slices that overlap it (slice_overlap.h), reading just those elements.
class CheckpointReader {
 public:
  // Reads and checks FOLDER/manifest.json; a folder without one is a UserError ("not a committed
  // checkpoint"), a damaged one or another format version too (manifest.h).
  explicit CheckpointReader(std::string folder);
  const std::string& folder() const { return folder_; }
  const Manifest& manifest() const { return manifest_; }
  bool has(const std::string& name) const { return by_name_.count(name) > 0; }

  // Fills every tensor of `into` (views of the components' memory, any layout). A tensor the
  // checkpoint lacks, holds with another global shape or dtype, or does not cover completely is a
  // UserError naming the tensor (and both shapes).
  void read_tensors(const StateDict& into, Backend& backend) const;
  // Copies the checkpoint's values into `into`.
  void read_values(StateDict& into) const;

 private:
  const Hdf5File& file(const std::string& name) const;

  std::string folder_;
  Manifest manifest_;
  std::unordered_map<std::string, std::vector<const SavedTensor*>> by_name_;
  mutable std::map<std::string, Hdf5File> files_;  // opened on first use
};

}  // namespace kervan
