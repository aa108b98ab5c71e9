#pragma once
#include "core/cuda_module.h"

namespace kervan {

// libkervan_cuda.so from the folder of the running binary (/proc/self/exe), loaded on the first
// call and kept for the life of the process (its tensors' release functions live in it). Where it
// cannot be had, a UserError "no CUDA device: ..." names what is missing: the module itself, or a
// library it needs (cuBLAS, the CUDA runtime), or a module of another build.
const CudaModule& cuda_module();

}  // namespace kervan
