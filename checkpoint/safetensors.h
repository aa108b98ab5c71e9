#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kervan {

// A whole tensor in host memory, as the conversion tools pass weights around.
struct HostTensor {
  Shape shape;
  std::vector<float> data;
};

// safetensors (Hugging Face's weight files): an 8-byte little-endian header length, a JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the raw
// little-endian data. kervan writes F32 and reads F32, F16 and BF16 (widened to float).
void write_safetensors(const std::string& path, const std::map<std::string, HostTensor>& tensors);
// Every tensor of the file; a malformed file or an unsupported dtype is a UserError naming the file
// (and the tensor).
std::map<std::string, HostTensor> read_safetensors(const std::string& path);

}  // namespace kervan
