#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Every unit test (tests/unit/test_*.c, built in BUILD/tests/) under
# valgrind's memcheck: uninitialised reads, invalid accesses and definite
# leaks fail the run. The ASan+UBSan pass of `make check` catches most of
# these too; valgrind adds uninitialised-memory reads (MSan's job, which gcc
# lacks) and checks the optimised build without instrumentation.
#
#   scripts/valgrind.sh [BUILD_DIR] [JOBS]     (default: build, 2)
#
# Prints one line per test; on a failure, the test's valgrind log.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)

# One test (the script runs itself per test through xargs): valgrind it,
# print a line, keep the log; the exit status is the verdict.
if [ "${1:-}" = "--one" ]; then
    BUILD=$2
    t=$3
    bin=$BUILD/tests/$t
    if [ ! -x "$bin" ]; then
        echo "valgrind: $t MISSING ($bin)"
        exit 1
    fi
    start=$(date +%s)
    if valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --num-callers=30 \
        "$bin" >"$BUILD/valgrind/$t.log" 2>&1; then
        echo "valgrind: $t ok ($(($(date +%s) - start)) s)"
        exit 0
    fi
    echo "valgrind: $t FAILED ($(($(date +%s) - start)) s), log $BUILD/valgrind/$t.log"
    exit 1
fi

BUILD=${1:-$ROOT/build}
JOBS=${2:-2}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind.sh: valgrind is not installed (scripts/deps.sh installs it)" >&2
    exit 1
fi
rm -rf "$BUILD/valgrind"
mkdir -p "$BUILD/valgrind"

tests=$(cd "$ROOT/tests/unit" && ls test_*.c | sed 's/\.c$//')
# The slow ones first (key generation is slow under valgrind), so that the
# JOBS workers stay busy to the end.
ordered=$(for t in test_crypto test_tuf_common $tests; do echo "$t"; done | awk '!seen[$0]++' |
          while read -r t; do [ -f "$ROOT/tests/unit/$t.c" ] && echo "$t"; done)
if ! printf '%s\n' $ordered | xargs -P "$JOBS" -n 1 "$0" --one "$BUILD"; then
    for f in "$BUILD"/valgrind/*.log; do
        if grep -q "==[0-9]*==\|FAILED" "$f"; then
            echo "---- $f" >&2
            grep -v '^\[ *\(RUN\|OK\) *\]' "$f" | tail -n 60 >&2
        fi
    done
    echo "valgrind.sh: errors found" >&2
    exit 1
fi
echo "valgrind.sh: $(echo $ordered | wc -w) unit tests clean"
