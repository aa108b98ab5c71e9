# The two commands a newcomer needs: `make demo` and `make test`. Both install what is missing,
# configure and build first. Everything else here is what those two are made of.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= 2
WERROR     ?= $(if $(CI),ON,OFF)
CMAKE_ARGS ?=

.PHONY: all deps configure build test test-asan demo bench clean

all: build

deps:
	scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DKERVAN_WERROR=$(WERROR) $(CMAKE_ARGS)

configure: $(BUILD)/build.ninja

build: deps configure
	cmake --build $(BUILD) -j$(JOBS)

# Every test but the GPU ones (label gpu: scripts/gpu-check.sh runs those where a GPU is).
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS) -LE gpu

# The unit tests and the MPI tests (mpi_tests under mpirun -np 2, 3, 4 and the collective
# timeout) once more under AddressSanitizer + UndefinedBehaviorSanitizer (CUDA off: nvcc objects
# are not instrumented). Open MPI's own allocations that live until exit are suppressed by
# tests/asan/lsan-openmpi.supp; for the MPI tests the full unwinder (fast_unwind_on_malloc=0: Open
# MPI has no frame pointers) and components that stay loaded give those stacks the module names the
# suppressions match.
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
ASAN_MPI_ENV = ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/asan/lsan-openmpi.supp OMPI_MCA_mca_base_component_disable_dlclose=1
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKERVAN_WERROR=$(WERROR) \
	  -DKERVAN_SANITIZE=address,undefined -DKERVAN_CUDA=OFF $(CMAKE_ARGS)
	cmake --build $(BUILD_ASAN) -j$(JOBS) --target unit_tests mpi_tests timeout_probe
	$(ASAN_ENV) ctest --test-dir $(BUILD_ASAN) --output-on-failure -j$(JOBS) -L unit
	$(ASAN_MPI_ENV) ctest --test-dir $(BUILD_ASAN) --output-on-failure -j1 -R '^mpi\.'

demo: build
	BUILD=$(BUILD) scripts/demo.sh

bench: build
	bench/run_all.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
