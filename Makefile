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

# Trains a small DiG on Fashion-MNIST for DEMO_MINUTES (default 5) and samples a 10x10 grid;
# scripts/demo.sh lists the knobs (DEMO_DIR, DEMO_MODEL_FLAGS, DEMO_TRAIN_FLAGS, ...).
DEMO_MINUTES ?= 5
demo: build
	@BUILD_DIR=$(BUILD_DIR) DEMO_MINUTES=$(DEMO_MINUTES) scripts/demo.sh

clean:
	@rm -rf $(BUILD_DIR)
