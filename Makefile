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

# Unit tests once more under AddressSanitizer + UndefinedBehaviorSanitizer (CUDA off: nvcc objects
# are not instrumented).
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKERVAN_WERROR=$(WERROR) \
	  -DKERVAN_SANITIZE=address,undefined -DKERVAN_CUDA=OFF $(CMAKE_ARGS)
	cmake --build $(BUILD_ASAN) -j$(JOBS) --target unit_tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j$(JOBS) -L unit

demo: build
	BUILD=$(BUILD) scripts/demo.sh

bench: build
	bench/run_all.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
