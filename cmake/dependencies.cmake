# Every third-party package comes from Debian (scripts/install-deps.sh installs them) and is
# found the way the distribution ships it. Some are not used by code yet; finding them here
# keeps the whole dependency set honest from the first commit.

find_package(OpenMP REQUIRED COMPONENTS CXX)

# OpenBLAS, the OpenMP flavour (Debian: libopenblas-openmp-dev) linked by its own directory: it
# shares libgomp's thread pool with our OpenMP kernels instead of keeping a second pool of
# spinning pthreads, which measured 1.7x faster end to end on 2 cores (bench/RESULTS.md). The
# directory lands in the binaries' RUNPATH, so the system's libopenblas alternative is not used.
set(KERVAN_OPENBLAS_DIR /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
find_library(KERVAN_OPENBLAS openblas PATHS ${KERVAN_OPENBLAS_DIR} NO_DEFAULT_PATH)
find_path(CBLAS_INCLUDE_DIR cblas.h PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
if(NOT KERVAN_OPENBLAS OR NOT CBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "OpenBLAS (OpenMP build) not found: install libopenblas-openmp-dev (scripts/install-deps.sh)")
endif()
add_library(kervan::openblas SHARED IMPORTED)
set_target_properties(kervan::openblas PROPERTIES IMPORTED_LOCATION ${KERVAN_OPENBLAS}
                                                  INTERFACE_INCLUDE_DIRECTORIES ${CBLAS_INCLUDE_DIR})

find_package(MPI REQUIRED COMPONENTS C CXX)

set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "kervan needs the MPI build of HDF5 (Debian: libhdf5-openmpi-dev)")
endif()

find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
# Abseil comes with gRPC (Debian: libabsl-dev); the coordinator sets one of its switches
# (coordinator/process_tuning.h).
find_package(absl CONFIG REQUIRED)

find_package(CLI11 CONFIG REQUIRED)
find_package(tomlplusplus CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
# libcrypto's SHA-256 checks the pinned GPT-2 vocabulary files (Debian: libssl-dev).
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(spdlog CONFIG REQUIRED)
# Token shards carry an XXH3-64 checksum; `kervan prepare` reads .gz (zlib) and .zst (zstd) inputs.
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
# The lean HTTP/2 client of `kervan bench coordinator`'s simulated workers.
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
find_package(ZLIB REQUIRED)
find_package(GTest CONFIG REQUIRED)
include(GoogleTest)

# CUDA: AUTO turns it on where nvcc exists (also when it is not on PATH).
set(KERVAN_HAVE_CUDA OFF)
if(NOT KERVAN_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # A100 (80) and H100/H200 (90) machine code; set CMAKE_CUDA_ARCHITECTURES for others.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    # One CUDA runtime in the process, the shared one that NCCL and cuBLAS use too (a static copy
    # beside it would keep state of its own).
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} REQUIRED)
    find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} REQUIRED)
    add_library(nccl::nccl UNKNOWN IMPORTED)
    set_target_properties(nccl::nccl PROPERTIES IMPORTED_LOCATION ${NCCL_LIBRARY}
                                                INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
    set(KERVAN_HAVE_CUDA ON)
  elseif(KERVAN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "KERVAN_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "kervan: CUDA backend ${KERVAN_HAVE_CUDA}")
