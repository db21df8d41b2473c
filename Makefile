# Thin wrapper around scripts/install-deps.sh, CMake and ctest. No build logic here.
BUILD_DIR ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps configure build test demo clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

demo: build
	@$(BUILD_DIR)/bin/digcl devices
	@$(BUILD_DIR)/bin/digcl bench gemm --seconds 1

clean:
	@rm -rf $(BUILD_DIR)
