# rayfleet front door. `make run` and `make test` work on a fresh Debian 12 machine: each installs
# what is missing (scripts/deps.sh, apt-get), builds, then does its job.
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

.PHONY: all deps configure build test run bench asan-test fuzz-smoke format format-check lint clean
.PHONY: images compose-up compose-down compose-test

all: build

deps:
	@./scripts/deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRF_WERROR=ON $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

run: build
	@./scripts/run.sh $(BUILD_DIR)

bench: build
	@./scripts/bench.sh $(BUILD_DIR)

# The whole suite once more under AddressSanitizer + UndefinedBehaviorSanitizer.
asan-test: deps
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DRF_WERROR=ON -DRF_ASAN=ON -DRF_UBSAN=ON >/dev/null
	@cmake --build $(ASAN_DIR) -j$(JOBS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir $(ASAN_DIR) --output-on-failure -j$(JOBS)

# Every libFuzzer harness of tests/fuzz (clang, ASan + UBSan) for FUZZ_SECONDS each on its seed
# corpus, two at a time (scripts/fuzz.sh; a longer run: scripts/fuzz.sh 3600).
FUZZ_SECONDS ?= 20
fuzz-smoke:
	@./scripts/fuzz.sh $(FUZZ_SECONDS)

format:
	@./scripts/check-style.sh --fix

format-check lint: deps
	@./scripts/check-style.sh

# Containers (docker/, docker-compose.yml): the base image from Debian's packages when absent, then
# rayfleet:dev; the set up (kubeconfig in $(COMPOSE_DIR)) and down; the end-to-end test.
COMPOSE_DIR ?= .state/compose
images:
	@./scripts/images.sh

compose-up: images
	@install -d -m 2770 $(COMPOSE_DIR)
	@RAYFLEET_COMPOSE_DIR=$(abspath $(COMPOSE_DIR)) RAYFLEET_GID=$$(id -g) docker-compose up -d
	@echo "kubectl --kubeconfig $(COMPOSE_DIR)/kubeconfig get rayclusters"

compose-down:
	@RAYFLEET_COMPOSE_DIR=$(abspath $(COMPOSE_DIR)) docker-compose down -v

compose-test:
	@./tests/compose/run.sh

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)

# The kustomize base from the Helm chart (installs the pinned helm the first time: scripts/helm.sh).
.PHONY: render-deploy
render-deploy:
	@./scripts/render-deploy.sh
