#pragma once
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/cuda_module.h"

namespace kervan {

// The one place that turns a device name into a backend: "cpu" (core/cpu) or "cuda" (core/cuda,
// where the build has it; its library is loaded only then, cuda_module_loader.h). A CUDA request
// on a build without CUDA, without the module or on a machine without a device is a UserError that
// says "no CUDA device" and why; an unknown name is a UserError too.
std::unique_ptr<Backend> make_backend(const std::string& device);

// "fp32" or "bf16" (train.precision, bench --precision); UserError otherwise.
Precision precision_named(const std::string& name);

// Whether `device` names a backend ("cpu", "cuda"): for the config check, before anything starts.
bool is_device_name(const std::string& device);

// The most device memory the process has held at once (bytes; 0 on the CPU, where the trainer
// reports the resident set instead).
int64_t device_peak_bytes(const Backend& be);

// The current GPU's memory now, free and total (bytes), loading the CUDA module; UserError "no
// CUDA device ..." where there is none.
DeviceMemory gpu_memory();

// Before the CUDA backend is made: device (local_rank % device count) becomes this process's
// current one (local_rank: the rank's index among the ranks of its node). Loads the CUDA module;
// UserError "no CUDA device ..." where there is none.
CudaDeviceChoice select_cuda_device(int local_rank);

// dst <- src, `bytes` between device buffers (a CUDA tensor's, once its queued work is done).
void copy_device_bytes(void* dst, const void* src, size_t bytes);

}  // namespace kervan
