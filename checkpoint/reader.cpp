#include "checkpoint/reader.h"

#include <filesystem>
#include <system_error>

#include "checkpoint/durable_io.h"
#include "checkpoint/format.h"
#include "checkpoint/slice_overlap.h"
#include "core/error.h"

namespace kervan {

CheckpointReader::CheckpointReader(std::string folder) : folder_(std::move(folder)) {
  const std::string path = folder_ + "/" + kManifestFile;
  std::error_code ec;
  if (!std::filesystem::is_directory(folder_, ec)) throw UserError(folder_ + ": no such checkpoint folder");
  if (!std::filesystem::exists(path, ec))
    throw UserError(folder_ + ": not a committed checkpoint (no " + kManifestFile +
                    "; a save that did not finish leaves none)");
  manifest_ = manifest_from_json(read_small_file(path), path);
  for (const SavedTensor& t : manifest_.tensors) by_name_[t.name].push_back(&t);
}

const Hdf5File& CheckpointReader::file(const std::string& name) const {
  auto it = files_.find(name);
  if (it == files_.end()) it = files_.emplace(name, Hdf5File::open_read(folder_ + "/" + name)).first;
  return it->second;
}

void CheckpointReader::read_tensors(const StateDict& into, Backend& backend) const {
  std::vector<char> staging;
  for (const StateTensor& want : into.tensors) {
    const auto it = by_name_.find(want.name);
    if (it == by_name_.end()) throw UserError(folder_ + ": the checkpoint has no tensor " + want.name);
    const bool on_host = want.data.device() == Device::CPU;
    if (!on_host) staging.resize(want.data.bytes());
    void* dst = on_host ? want.data.raw() : staging.data();
    int64_t filled = 0;
    for (const SavedTensor* saved : it->second) {
      if (saved->slice.global_shape != want.slice.global_shape)
        throw UserError(folder_ + ": tensor " + want.name + " is " + shape_str(saved->slice.global_shape) +
                        " in the checkpoint but " + shape_str(want.slice.global_shape) + " in the model");
      if (saved->dtype != want.data.dtype())
        throw UserError(folder_ + ": tensor " + want.name + " is " + std::string(dtype_name(saved->dtype)) +
                        " in the checkpoint but " + std::string(dtype_name(want.data.dtype())) +
                        " in the model");
      const std::vector<StridedCopy> copies = overlap(want.slice, saved->slice);
      if (copies.empty()) continue;
      file(saved->file).read(saved->dataset, saved->dtype, copies, dst);
      filled += copied_elements(copies);
    }
    if (filled != want.slice.flat_count)
      throw UserError(folder_ + ": the checkpoint's slices of " + want.name + " cover " +
                      std::to_string(filled) + " of the " + std::to_string(want.slice.flat_count) +
                      " elements of " + want.slice.describe() + " (each must be saved exactly once)");
    if (!on_host) {
      Tensor t = want.data;
      backend.copy_from_host(t, staging.data());
    }
  }
}

void CheckpointReader::read_values(StateDict& into) const {
  for (const auto& [key, v] : manifest_.values) into.values[key] = v;
}

}  // namespace kervan
