#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/manifest.h"
#include "checkpoint/snapshot.h"

namespace kervan {

// Writes one rank's part of the checkpoint of `step` into `folder` (the step's .tmp folder, which
// this creates if needed): rank_NNNNN.h5 with one 1-D dataset per tensor slice (none when the rank
// writes nothing), fsynced, then rank_NNNNN.json describing it, with the file's and every tensor's
// checksum. Returns that record. On failure, leaves rank_NNNNN.failed with the reason (so rank 0
// stops waiting for this rank) and rethrows.
RankRecord write_rank_part(const std::string& folder, int64_t step, const WriterLayout& layout,
                           const std::vector<SnapshotTensor>& tensors);

// The XXH3-64 of a tensor's elements as stored (little-endian, which is the host's order).
uint64_t tensor_checksum(const void* data, int64_t bytes);

}  // namespace kervan
