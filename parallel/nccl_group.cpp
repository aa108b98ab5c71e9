#include "parallel/nccl_group.h"

#include "core/backends/cuda_module_loader.h"

namespace kervan {

void move_group_to_device(std::unique_ptr<Communicator>& group, const std::string& name, double timeout_s,
                          Backend& compute) {
  group = cuda_module().make_nccl_communicator(*group, name, timeout_s, compute);
}

}  // namespace kervan
