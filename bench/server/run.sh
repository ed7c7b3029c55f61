#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# fota-server against nginx, in the same run, on 127.0.0.1 (a benchmark, not
# a test: the targets are reported, not asserted).
#
#  1. fota-server: keys made with `fota key new`, a repository made with
#     `fota repo` (init, sign, publish), `fota-server init` from it, an
#     operator token from `fota-server token new`, `fota-server serve`; then
#     a 1 MiB signed image (`fota image sign`) added to the repository's
#     targets, signed offline, and published through the API (prepare.py).
#  2. DEVICES devices (prepare.py, an independent Python device client):
#     enrolled, accepted through the API, a rollout of the image to all of
#     them, a session token each, one check-in each (Director signature
#     checked).
#  3. wrk: valid check-ins (checkin.lua: strictly increasing seq per device,
#     a fresh nonce each, every answer must be a 200 Director document) to
#     fota-server, and GETs of a static file of the same size as a real
#     Director document to nginx; check-ins/s, p50, p99 and the ratio.
#  4. wrk: the 1 MiB image from fota-server's /repo/targets/ and from nginx;
#     MiB/s and the ratio.
#  5. A summary table, with the CPU each server and wrk used during each run
#     (a server far below the cores while wrk idles is waiting, not
#     computing). Exit status 0 when it ran with every answer right,
#     1 when any answer was wrong (the figures then mean nothing) or a step
#     failed. Everything started is stopped, the scratch folder removed.
#
#   bench/server/run.sh [BUILD_DIR]           (default: build; nothing is built)
#
# Knobs (environment): DEVICES (1000), WRK_THREADS (2), CONNECTIONS (64),
# DL_CONNECTIONS (16), DURATION (10s), WARMUP (2s), SERVER_THREADS (empty:
# fota-server's default, two per core), EVENT_MODE (empty: fota-server's
# default; poll, epoll or thread-per-connection), NEW_CONNECTION (0; 1: a new
# connection for every check-in and static-file request), NGINX_WORKERS (one per core, nginx's
# own recommendation: its workers never block), IMAGE_BYTES (1048576),
# ROLLOUT (1: check-ins answered "install" through a rollout; 0: "stay").

set -euo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
BIN=$BUILD/bin
PY=/usr/bin/python3
HERE=$TOP/bench/server

DEVICES=${DEVICES:-1000}
WRK_THREADS=${WRK_THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DL_CONNECTIONS=${DL_CONNECTIONS:-16}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SERVER_THREADS=${SERVER_THREADS:-}        # empty: fota-server's default (two per core)
EVENT_MODE=${EVENT_MODE:-}                # empty: fota-server's default (poll)
NEW_CONNECTION=${NEW_CONNECTION:-0}       # 1: check-ins (and nginx's static file) one connection each
CLOSE_ARG=
[ "$NEW_CONNECTION" = 1 ] && CLOSE_ARG=close
NGINX_WORKERS=${NGINX_WORKERS:-$(nproc)}
IMAGE_BYTES=${IMAGE_BYTES:-1048576}
ROLLOUT=${ROLLOUT:-1}
HWID=bench-board
TARGET=$HWID/fw-1.1.0.img

say() { printf '%s\n' "$*"; }
die() { printf 'bench/server: %s\n' "$*" >&2; exit 1; }

# ---- tools ------------------------------------------------------------------
missing=""
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
[ -x /usr/bin/time ] || missing="$missing time"
"$PY" -c 'import cryptography' 2>/dev/null || missing="$missing python3-cryptography"
"$PY" -c 'import securesystemslib' 2>/dev/null || missing="$missing python3-securesystemslib"
if [ -n "$missing" ]; then
    say "bench/server: installing$missing (nginx: the peer server; wrk: the load; time: CPU figures; python3-*: the device client)"
    [ "$(id -u)" = 0 ] || die "missing:$missing; run as root or install them with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$BIN/fota" ] || die "$BIN/fota missing: run make first"
HAVE_SERVER=1
if [ ! -x "$BIN/fota-server" ]; then
    HAVE_SERVER=0
    say "bench/server: $BIN/fota-server missing: measuring the nginx side only"
fi
per_thread_dev=$((DEVICES / WRK_THREADS))
per_thread_conn=$((CONNECTIONS / WRK_THREADS))
[ "$per_thread_dev" -ge $((4 * per_thread_conn)) ] ||
    die "DEVICES must be at least 4 x CONNECTIONS (each device has one check-in in flight at most)"

# ---- scratch folder, and stopping everything we start -------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fota-bench-server.XXXXXX")
SERVER_PID=
NGINX_PID=
stop() {    # stop PID: SIGTERM, wait up to 10 s, then SIGKILL
    local pid=$1 i=0
    kill "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    [ -z "$SERVER_PID" ] || stop "$SERVER_PID"
    [ -z "$NGINX_PID" ] || stop "$NGINX_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {    # wait_port PORT PID NAME
    local i=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || die "$3 exited at start (see above)"
        [ $i -lt 100 ] || die "$3 did not listen on 127.0.0.1:$1 within 10 s"
        sleep 0.1
        i=$((i + 1))
    done
}

# CPU seconds (user + system) used so far by the given processes.
cpu_seconds() {
    local pid ticks=0
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat, counted after the ")" closing the name.
        ticks=$((ticks + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
    done
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# One wrk run against the server whose processes are PIDS (a quoted list):
# prints wrk's own report indented and keeps the wrk-result line
# (summary.lua) in $WORK/results as "NAME key=value ...", with the CPU
# seconds the server and wrk used during the run.
export FOTA_BENCH_LUA=$HERE
bench() {    # bench NAME "PIDS" CONNECTIONS DURATION URL SCRIPT [SCRIPT ARGS...]
    local name=$1 pids=$2 conns=$3 dur=$4 url=$5 script=$6 cpu0 cpu1 server_cpu wrk_cpu
    shift 6
    say "\$ wrk -t$WRK_THREADS -c$conns -d$dur --latency -s bench/server/$script $url${*:+ -- $*}"
    # shellcheck disable=SC2086
    cpu0=$(cpu_seconds $pids)
    /usr/bin/time -f "%U %S" -o "$WORK/wrk.time" \
        wrk -t"$WRK_THREADS" -c"$conns" -d"$dur" --latency -s "$HERE/$script" "$url" -- "$@" \
        >"$WORK/wrk.out" 2>&1 || { cat "$WORK/wrk.out"; die "wrk failed"; }
    # shellcheck disable=SC2086
    cpu1=$(cpu_seconds $pids)
    grep -v '^wrk-result' "$WORK/wrk.out" | sed 's/^/    /'
    server_cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
    wrk_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/wrk.time")
    grep '^wrk-result' "$WORK/wrk.out" |
        sed "s/^wrk-result/$name server_cpu_s=$server_cpu wrk_cpu_s=$wrk_cpu/" >>"$WORK/results"
    grep -q "^$name " "$WORK/results" || die "no result line from wrk"
}

cd "$WORK"
mkdir -p keys www nginx-tmp
: >results

say "fota-server vs nginx on 127.0.0.1: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
    "wrk and the servers share them"
say "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)," \
    "scratch on $(df -T "$WORK" | awk 'NR == 2 { print $2 }')"

# ---- the 1 MiB signed image (served by both) ---------------------------------
"$BIN/fota" key new --type ed25519 --out keys/firmware.key >/dev/null
head -c 1 /dev/urandom >probe.bin
"$BIN/fota" image sign probe.bin probe.img --key keys/firmware.key --version 1.1.0 \
    --security-counter 2 --hardware "$HWID" >/dev/null
overhead=$(($(stat -c %s probe.img) - 1))
head -c $((IMAGE_BYTES - overhead)) /dev/urandom >payload.bin
"$BIN/fota" image sign payload.bin fw-1.1.0.img --key keys/firmware.key --version 1.1.0 \
    --security-counter 2 --hardware "$HWID" >/dev/null
IMAGE_SIZE=$(stat -c %s fw-1.1.0.img)
cp fw-1.1.0.img www/image.img
rm -f probe.bin probe.img payload.bin

# ---- fota-server ------------------------------------------------------------
DOC_BYTES=
if [ "$HAVE_SERVER" = 1 ]; then
    say ""
    say "== fota-server: repository, init, token, serve (${SERVER_THREADS:-default} threads," \
        "event mode ${EVENT_MODE:-default}), $DEVICES devices"
    for k in root targets snapshot timestamp director; do
        "$BIN/fota" key new --type ed25519 --out "keys/$k.key" >/dev/null
    done
    # Published with no target yet: the release goes through the API below.
    "$BIN/fota" repo init --repo repo --root-key keys/root.key.pub --targets-key keys/targets.key.pub \
        --snapshot-key keys/snapshot.key.pub --timestamp-key keys/timestamp.key.pub >/dev/null
    "$BIN/fota" repo sign root --repo repo --key keys/root.key >/dev/null
    "$BIN/fota" repo sign targets --repo repo --key keys/targets.key >/dev/null
    "$BIN/fota" repo publish --repo repo --snapshot-key keys/snapshot.key \
        --timestamp-key keys/timestamp.key >/dev/null

    DATA=$WORK/data
    ONLINE_KEYS=(--snapshot-key keys/snapshot.key --timestamp-key keys/timestamp.key
                 --director-key keys/director.key)
    "$BIN/fota-server" init --data-dir "$DATA" --repo repo "${ONLINE_KEYS[@]}" >init.out 2>&1 ||
        { cat init.out; die "fota-server init failed"; }
    API_TOKEN=$("$BIN/fota-server" token new --data-dir "$DATA" --scope deploy --name bench 2>token.err |
        tail -n 1) || { cat token.err; die "fota-server token new failed"; }
    [ -n "$API_TOKEN" ] || die "fota-server token new printed no token"

    FOTA_PORT=$(free_port)
    "$BIN/fota-server" serve --data-dir "$DATA" --listen "127.0.0.1:$FOTA_PORT" \
        ${SERVER_THREADS:+--threads "$SERVER_THREADS"} ${EVENT_MODE:+--event-mode "$EVENT_MODE"} \
        "${ONLINE_KEYS[@]}" 2>server.log &
    SERVER_PID=$!
    wait_port "$FOTA_PORT" "$SERVER_PID" fota-server

    # The release, signed offline (targets v2), published through the API.
    "$BIN/fota" repo add-target fw-1.1.0.img --repo repo --name "$TARGET" \
        --custom "{\"hardware_ids\":[\"$HWID\"],\"version\":\"1.1.0\",\"security_counter\":2}" >/dev/null
    "$BIN/fota" repo sign targets --repo repo --key keys/targets.key >/dev/null

    rollout_arg=()
    [ "$ROLLOUT" = 1 ] && rollout_arg=(--rollout)
    "$PY" "$HERE/prepare.py" --port "$FOTA_PORT" --api-token="$API_TOKEN" --devices "$DEVICES" \
        --hardware-id "$HWID" --image fw-1.1.0.img --target "$TARGET" \
        --targets-json repo/staged/targets.json "${rollout_arg[@]}" --tokens-out devices.txt \
        --doc-out director.json >prepare.out || die "preparing the devices failed"
    sed 's/^/    /' prepare.out

    IMAGE_PATH=$(cd "$DATA/repo" && find targets -type f -name '*.fw-1.1.0.img' | head -n 1)
    [ -n "$IMAGE_PATH" ] || die "the image is not under $DATA/repo/targets"
    DOC_BYTES=$(stat -c %s director.json)
    cp director.json www/checkin.json
else
    # A stand-in of the size of a Director document answering "install".
    DOC_BYTES=820
    head -c "$DOC_BYTES" /dev/zero | tr '\0' 'x' >www/checkin.json
fi

# ---- nginx ------------------------------------------------------------------
NGINX_PORT=$(free_port)
sed -e "s#@WORK@#$WORK#g" -e "s#@PORT@#$NGINX_PORT#g" -e "s#@WORKERS@#$NGINX_WORKERS#g" \
    -e "s#@USER@#$(id -un) $(id -gn)#g" "$HERE/nginx.conf.in" >nginx.conf
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" 2>>nginx-error.log &
NGINX_PID=$!
wait_port "$NGINX_PORT" "$NGINX_PID" nginx
NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"

# ---- check-ins -----------------------------------------------------------------
say ""
say "== check-ins: $CONNECTIONS connections${CLOSE_ARG:+ (a new one per request)}, $DURATION (after a $WARMUP warm-up run of each)"
seq_base=10000000
if [ "$HAVE_SERVER" = 1 ]; then
    URL=http://127.0.0.1:$FOTA_PORT/device/v1/checkin
    bench warm_checkin "$SERVER_PID" "$CONNECTIONS" "$WARMUP" "$URL" checkin.lua devices.txt "$WRK_THREADS" "$seq_base" $CLOSE_ARG >/dev/null
    bench fota_checkin "$SERVER_PID" "$CONNECTIONS" "$DURATION" "$URL" checkin.lua devices.txt "$WRK_THREADS" $((2 * seq_base)) $CLOSE_ARG
fi
if [ "$HAVE_SERVER" = 1 ]; then
    # The server's own count, against what the client saw answered.
    served=$("$PY" -c 'import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1]).read().decode().splitlines():
    if line.startswith("fota_checkins_total "):
        print(int(float(line.split()[1])))' "http://127.0.0.1:$FOTA_PORT/metrics")
    answered=$(awk '/^(warm|fota)_checkin / { for (i = 2; i <= NF; i++) if ($i ~ /^requests=/) n += substr($i, 10) }
        END { print n + '"$DEVICES"' }' results)
    say "    fota_checkins_total (/metrics): ${served:-?}; answered as wrk and prepare.py saw: $answered" \
        "(the server may count a few more, answered as wrk stopped)"
fi
URL=http://127.0.0.1:$NGINX_PORT/checkin.json
bench warm_static "$NGINX_PIDS" "$CONNECTIONS" "$WARMUP" "$URL" static.lua "$DOC_BYTES" $CLOSE_ARG >/dev/null
bench nginx_static "$NGINX_PIDS" "$CONNECTIONS" "$DURATION" "$URL" static.lua "$DOC_BYTES" $CLOSE_ARG

# ---- downloads --------------------------------------------------------------
say ""
say "== downloads of the $IMAGE_SIZE-byte signed image: $DL_CONNECTIONS connections, $DURATION"
if [ "$HAVE_SERVER" = 1 ]; then
    bench fota_download "$SERVER_PID" "$DL_CONNECTIONS" "$DURATION" "http://127.0.0.1:$FOTA_PORT/repo/$IMAGE_PATH" static.lua 0
fi
bench nginx_download "$NGINX_PIDS" "$DL_CONNECTIONS" "$DURATION" "http://127.0.0.1:$NGINX_PORT/image.img" static.lua 0

# ---- the server's log -------------------------------------------------------------
if [ "$HAVE_SERVER" = 1 ]; then
    say ""
    say "fota-server log: $(wc -l <server.log) lines, $(grep -c -E ' (warn|error) ' server.log || true) warnings or errors"
    grep -E ' (warn|error) ' server.log | head -n 5 | sed 's/^/    /' || true
fi

# ---- summary ----------------------------------------------------------------
ACTIONS=
[ "$HAVE_SERVER" = 0 ] || ACTIONS=$(sed -n 's/^actions=//p' prepare.out)
"$PY" - "$WORK/results" "$DOC_BYTES" "$IMAGE_SIZE" "$HAVE_SERVER" "$ACTIONS" <<'EOF'
import sys

rows = {}
for line in open(sys.argv[1]):
    name, *fields = line.split()
    rows[name] = dict(f.split("=", 1) for f in fields)
doc_bytes, image_size, have_server = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
action = sys.argv[5].split(":")[0] if "," not in sys.argv[5] else sys.argv[5]

bad = []
def check(name, min_bytes):
    r = rows[name]
    n = int(r["requests"])
    errs = {k: int(r[k]) for k in ("connect", "read", "write", "status", "timeout", "bad")}
    if n == 0 or any(errs.values()):
        bad.append("%s: %d requests, errors %s, first wrong answer: status %s %s"
                   % (name, n, errs, r["bad_status"], r["bad_body"]))
    elif int(r["bytes"]) < n * min_bytes:
        bad.append("%s: %d bytes for %d answers of at least %d bytes"
                   % (name, int(r["bytes"]), n, min_bytes))

def rate(name):
    r = rows[name]
    return int(r["requests"]) / (int(r["duration_us"]) / 1e6)

def mibs(name):
    r = rows[name]
    return int(r["bytes"]) / (int(r["duration_us"]) / 1e6) / 2**20

def ms(name, key):
    return int(rows[name][key]) / 1000.0

names = (["warm_checkin", "fota_checkin"] if have_server else []) + ["warm_static", "nginx_static"]
for n in names:
    check(n, doc_bytes)
for n in (["fota_download"] if have_server else []) + ["nginx_download"]:
    check(n, image_size)

def cores(name, who):
    r = rows[name]
    return float(r[who + "_cpu_s"]) / (int(r["duration_us"]) / 1e6)

def line(name, label, value):
    print("  %-38s %10.0f %8.2f %8.2f %7.2f %7.2f"
          % (label, value, ms(name, "p50_us"), ms(name, "p99_us"),
             cores(name, "server"), cores(name, "wrk")))

print()
print("== summary (wrk and both servers share the machine's cores; 'cores' = CPU time")
print("   the server (all its processes) and wrk used per second of the run)")
head = "  %-38s %10s %8s %8s %7s %7s"
print(head % ("check-ins", "req/s", "p50 ms", "p99 ms", "server", "wrk"))
print(head % ("", "", "", "", "cores", "cores"))
if have_server:
    line("fota_checkin", "fota-server check-in (signed, stored)", rate("fota_checkin"))
line("nginx_static", "nginx, static file of %d B" % doc_bytes, rate("nginx_static"))
if have_server:
    ratio = rate("fota_checkin") / rate("nginx_static")
    print("  each check-in: token checked, seq and state stored in one transaction, rollout")
    print("  consulted, Director document signed with Ed25519; answered %r" % action)
    print("  ratio fota / nginx: %.1f%% (target >= 10%%); %.0f check-ins/s (target >= 10,000): %s"
          % (100 * ratio, rate("fota_checkin"),
             "OK" if ratio >= 0.1 and rate("fota_checkin") >= 10000 else "BELOW TARGET"))
print(head % ("downloads of %d B" % image_size, "MiB/s", "p50 ms", "p99 ms", "server", "wrk"))
if have_server:
    line("fota_download", "fota-server /repo/targets/...", mibs("fota_download"))
line("nginx_download", "nginx", mibs("nginx_download"))
if have_server:
    ratio = mibs("fota_download") / mibs("nginx_download")
    print("  ratio fota / nginx: %.1f%% (target >= 80%%): %s"
          % (100 * ratio, "OK" if ratio >= 0.8 else "BELOW TARGET"))
else:
    print("  fota-server was not built: only nginx was measured")
if bad:
    print("INVALID RUN: wrong answers or socket errors:")
    for b in bad:
        print("  " + b)
    sys.exit(1)
EOF
