#pragma once
#include <string>
#include <vector>

#include "checkpoint/reader.h"

namespace kervan {

// Damage found in one file of a checkpoint.
struct Damage {
  std::string file;                  // its path
  std::string problem;               // what is wrong with the file as a whole
  std::vector<std::string> tensors;  // the tensors whose own checksums fail ("name [slice]")
  std::string describe() const;      // one line naming the file and the tensors
};

// Checks files i of the checkpoint with i % parts == part (ranks split the work; one process
// passes 0, 1): each file's size and XXH3-64 against the manifest, and for a file that fails, the
// checksum of each of its tensors, to name the damaged ones.
std::vector<Damage> verify_checkpoint(const CheckpointReader& checkpoint, int part = 0, int parts = 1);

}  // namespace kervan
