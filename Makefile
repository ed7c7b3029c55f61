# fota: the two commands are `make demo` and `make check`; `make` only builds.
BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
# Harnesses `make fuzz` runs (empty: all of them; e.g. FUZZ_HARNESSES="json image").
FUZZ_HARNESSES ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

ifeq ($(CI),true)
CMAKE_ARGS += -DFOTA_WERROR=ON
endif

.PHONY: all build deps demo check test test-san valgrind fuzz bench clean

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@./scripts/deps.sh

demo: deps
	@$(MAKE) --no-print-directory build
	@./scripts/demo.sh $(BUILD)

# Every test (the fuzz harnesses over their corpus and the banned-function
# check included), then every test again under ASan + UBSan, warnings fatal,
# then the unit tests under valgrind.
check: deps
	@$(MAKE) --no-print-directory build CMAKE_ARGS="$(CMAKE_ARGS) -DFOTA_WERROR=ON"
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DFOTA_SANITIZE=ON -DFOTA_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)
	@cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)
	@./scripts/valgrind.sh $(BUILD) $(JOBS)

# The unit tests under valgrind alone (make check runs this last).
valgrind: build
	@./scripts/valgrind.sh $(BUILD) $(JOBS)

# Every fuzz harness for FUZZ_SECONDS each with libFuzzer (clang), over a
# copy of its seed corpus; a crash lands in fuzz/regressions/ (docs/fuzzing.md).
fuzz:
	@./scripts/deps.sh --fuzz
	@cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DFOTA_FUZZ=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_all
	@./fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	@/usr/bin/python3 bench/tuf_refresh.py --bin $(BUILD)/bin
	@./bench/image_verify.sh $(BUILD)
	@./bench/server/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
