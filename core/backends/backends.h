#pragma once
#include <memory>
#include <string>

#include "core/backend.h"

namespace kervan {

// The one place that turns a device name into a backend: "cpu" (core/cpu) or "cuda" (core/cuda,
// where the build has it). A CUDA request on a build without CUDA, or on a machine without a device,
// is a UserError that says "no CUDA device" and why; an unknown name is a UserError too.
std::unique_ptr<Backend> make_backend(const std::string& device);

// Whether `device` names a backend ("cpu", "cuda"): for the config check, before anything starts.
bool is_device_name(const std::string& device);

// Whether this build has the CUDA backend.
bool built_with_cuda();

// The most device memory the process has held at once (bytes; 0 on the CPU, where the trainer
// reports the resident set instead).
int64_t device_peak_bytes(const Backend& be);

}  // namespace kervan
