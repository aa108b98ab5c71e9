#include "core/backends/cuda_module_loader.h"

#include <dlfcn.h>

#include <filesystem>
#include <string>

#include "core/error.h"

namespace kervan {

namespace {

std::filesystem::path module_path() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw UserError("no CUDA device: cannot find the CUDA module: /proc/self/exe: " + ec.message());
  return exe.parent_path() / kCudaModuleFile;
}

const CudaModule& load() {
#ifndef KERVAN_HAVE_CUDA_BACKEND
  throw UserError(
      "no CUDA device: this kervan was built without CUDA (configure with nvcc on the PATH or "
      "-DKERVAN_CUDA=ON)");
#endif
  const std::filesystem::path path = module_path();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw UserError("no CUDA device: the CUDA module " + path.string() +
                    " is missing (it is built next to the kervan binary and must travel with it)");
  // RTLD_LOCAL: the module's symbols (its own copy of the tensor code among them) stay its own.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    throw UserError(std::string("no CUDA device: cannot load the CUDA module: ") + dlerror() +
                    " (the CUDA runtime and cuBLAS must be on the library path)");
  const auto entry = reinterpret_cast<CudaModuleEntryFn>(dlsym(handle, kCudaModuleEntry));
  if (!entry)
    throw UserError("no CUDA device: " + path.string() + " is not kervan's CUDA module: " + dlerror());
  const CudaModule* m = entry();
  if (m->abi != kCudaModuleAbi)
    throw UserError("no CUDA device: " + path.string() + " was built for another kervan (interface " +
                    std::to_string(m->abi) + ", this binary's is " + std::to_string(kCudaModuleAbi) +
                    "): rebuild both, or copy this build's module next to the binary");
  return *m;
}

}  // namespace

const CudaModule& cuda_module() {
  static const CudaModule& m = load();  // a load that threw is tried again on the next call
  return m;
}

}  // namespace kervan
