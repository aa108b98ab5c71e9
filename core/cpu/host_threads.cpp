#include "core/cpu/host_threads.h"

#include <cblas.h>
#include <omp.h>

#include "core/error.h"

namespace kervan {

void set_host_threads(int n) {
  KERVAN_CHECK(n >= 1, "set_host_threads(" + std::to_string(n) + ")");
  // In the OpenMP build openblas_set_num_threads also sets OpenMP's count; both are named so the
  // intent does not depend on that.
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int host_threads() {
  return omp_get_max_threads();
}

}  // namespace kervan
