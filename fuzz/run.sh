#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Run the libFuzzer harnesses of a FOTA_FUZZ build (`make fuzz` calls this).
#
#   fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]     (default: every harness)
#
# Each harness runs for SECONDS (-max_total_time, one job) over a writable
# copy of its seed corpus in BUILD_DIR/corpus/<name> (new inputs found stay
# there for the next run) plus fuzz/regressions/<name>. Prints one line per
# harness: seconds, executions (libFuzzer's final stat::number_of_executed_units),
# executions per second, new inputs, crashes. A crash (also a leak, a timeout
# or running out of memory) is copied into fuzz/regressions/<name>/, where
# `make check` replays it from then on, and makes the exit status 1.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]}
SECONDS_EACH=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]}
shift 2
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
HARNESSES=${*:-json tuf_root tuf_timestamp tuf_snapshot tuf_targets image boot_state director server_device server_api agent_response}

case $SECONDS_EACH in
    ''|*[!0-9]*|0) echo "fuzz/run.sh: SECONDS must be a positive integer" >&2; exit 2 ;;
esac

stat_of() {   # stat_of LOG NAME -> the value of "stat::NAME:" (0 when absent)
    v=$(sed -n "s/^stat::$2: *//p" "$1" | tail -n 1)
    echo "${v:-0}"
}

failed=0
printf '%-16s %8s %12s %9s %8s %8s\n' harness seconds executions exec/s new crashes
for h in $HARNESSES; do
    bin=$BUILD/fuzz/fuzz_$h
    if [ ! -x "$bin" ]; then
        echo "fuzz/run.sh: $bin missing (configure with -DFOTA_FUZZ=ON and CC=clang)" >&2
        exit 2
    fi
    corpus=$BUILD/corpus/$h
    work=$BUILD/fuzz-run/$h
    rm -rf "$work"
    mkdir -p "$corpus" "$work/artifacts"
    cp -p "$ROOT/fuzz/corpus/$h/"* "$corpus/" 2>/dev/null || true
    set -- "$corpus"
    [ -d "$ROOT/fuzz/regressions/$h" ] && set -- "$@" "$ROOT/fuzz/regressions/$h"
    case $h in
        image|boot_state) dict="" ;;
        *) dict="-dict=$ROOT/fuzz/dict/json.dict" ;;
    esac
    start=$(date +%s)
    # One job (-jobs=1): libFuzzer runs it as a child and logs to fuzz-0.log
    # in the working directory; the exit status is not the verdict, the
    # artifacts are.
    (cd "$work" && "$bin" -jobs=1 -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -timeout=30 -rss_limit_mb=4096 -artifact_prefix="$work/artifacts/" $dict "$@" \
        >"$work/stdout.log" 2>&1) || true
    end=$(date +%s)
    log=$work/fuzz-0.log
    [ -f "$log" ] || log=$work/stdout.log
    execs=$(stat_of "$log" number_of_executed_units)
    rate=$(stat_of "$log" average_exec_per_sec)
    new=$(stat_of "$log" new_units_added)
    crashes=0
    for f in "$work/artifacts/"crash-* "$work/artifacts/"leak-* "$work/artifacts/"timeout-* \
             "$work/artifacts/"oom-*; do
        [ -f "$f" ] || continue
        crashes=$((crashes + 1))
        mkdir -p "$ROOT/fuzz/regressions/$h"
        cp "$f" "$ROOT/fuzz/regressions/$h/"
        echo "fuzz/run.sh: $h: $(basename "$f") -> fuzz/regressions/$h/ (log: $log)" >&2
    done
    printf '%-16s %8s %12s %9s %8s %8s\n' "$h" $((end - start)) "$execs" "$rate" "$new" "$crashes"
    [ "$crashes" -eq 0 ] || failed=1
done
exit $failed
