#!/bin/sh
# The fota demo, the whole story on 127.0.0.1 (docs/demo.md walks through it):
#   1. offline keys and a TUF repository (with the Director's key set as the
#      target fota/director.json); fota-server (SQLite) in the background;
#   2. firmware 1.0.0 and 1.1.0 signed for a hardware id and published;
#   3. a fleet of 200 simulated devices on 1.0.0 enrols; the operator accepts it;
#   4. 1.1.0 rolls out in waves of 5%, 25% and 100% with a failure limit, a
#      few devices fail their health check and roll back by themselves;
#   5. three attacks against a device running fota-agent, through a
#      man-in-the-middle that also holds the Director key: a substituted
#      image, a downgrade, a freeze; each refused, with its reason;
#   6. the final fleet table; everything started here is stopped.
# Exit status 0 only when every fleet device ended confirmed on 1.1.0 or
# rolled back to 1.0.0 as planned, and every attack was refused.
#
#   scripts/demo.sh [BUILD_DIR]     (default: build; `make demo` runs it)
#   FOTA_DEMO_DEVICES=N             fleet size (default 200)
#   FOTA_DEMO_FAIL_HEALTH=PCT       share of the fleet failing its health check (default 3)
#   FOTA_DEMO_KEEP=1                keep the scratch folder (its path is printed)
set -eu
exec 3>&1    # commands are shown on the terminal even when their output is not

BUILD=${1:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
case $BUILD in /*) BIN=$BUILD/bin ;; *) BIN=$TOP/$BUILD/bin ;; esac
PY=/usr/bin/python3
MITM=$TOP/tests/support/mitm.py
DEVICES=${FOTA_DEMO_DEVICES:-200}
FAIL_HEALTH=${FOTA_DEMO_FAIL_HEALTH:-3}   # % of the fleet whose health check fails on 1.1.0
IMAGE_SIZE=262144                 # payload bytes of each firmware image (256 KiB)
HW=demo-board
WORK=$(mktemp -d /tmp/fota-demo.XXXXXX)
SERVER_PID= FLEET_PID= MITM_PID=
T0=$(date +%s.%N)
TIMES=$WORK/times

stop_pid() {
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}
cleanup() {
    status=$?
    stop_pid "$FLEET_PID"
    stop_pid "$MITM_PID"
    stop_pid "$SERVER_PID"
    if [ "${FOTA_DEMO_KEEP:-0}" = 1 ]; then
        echo "demo: scratch folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for prog in fota fota-server fota-boot fota-agent fota-sim; do
    [ -x "$BIN/$prog" ] || { echo "demo: $BIN/$prog is missing: run make first" >&2; exit 1; }
done

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
STEP_T=
STEP_NAME=
step() {
    [ -n "$STEP_NAME" ] && printf '%7ss  %s\n' "$(since "$STEP_T")" "$STEP_NAME" >>"$TIMES"
    STEP_NAME=$1
    STEP_T=$(now)
    printf '\n== %s   [t=%ss]\n' "$*" "$(since "$T0")"
}
say() { printf '   %s\n' "$*"; }
# Show a command (paths shortened), then run it.
run() { show "$@"; "$@"; }
show() {
    line='$'
    for a in "$@"; do
        case $a in
        *[!A-Za-z0-9_./:=,+@%-]*) line="$line '$a'" ;;
        *) line="$line $a" ;;
        esac
    done
    printf '%s\n' "$line" | sed "s#$WORK/##g; s#$BIN/##g; s#$TOP/##g; s#^\\$ api #$ fota #" >&3
}
indent() { sed "s#$WORK/##g; s#^#   #"; }
die() { echo "demo: FAILED: $*" >&2; exit 1; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_file() { i=0; while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; [ -s "$1" ]; }
# The operator CLI against the server, with the admin token from a 0600 file.
api() { "$BIN/fota" "$@" --server "$URL" --token-file "$WORK/admin.token"; }
# One field of a JSON document on stdin, by a Python expression over `d`.
jget() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
ctl() { "$PY" "$MITM" ctl "$MITM_CTL" "$@" >/dev/null; }

cd "$WORK"

# ---------------------------------------------------------------------------
step "1. Offline keys, the TUF repository, fota-server on 127.0.0.1"
mkdir -p keys
for k in root targets firmware snapshot timestamp director; do
    "$BIN/fota" key new --type ed25519 --out "keys/$k.key" >/dev/null
done
say "offline (workstation): root, targets, firmware; online (server): snapshot, timestamp, director"
run "$BIN/fota" repo init --repo repo --root-key keys/root.key.pub --targets-key keys/targets.key.pub \
    --snapshot-key keys/snapshot.key.pub --timestamp-key keys/timestamp.key.pub >/dev/null
run "$BIN/fota" repo sign root --repo repo --key keys/root.key >/dev/null
# The Director's public key reaches devices only through TUF: the target
# fota/director.json, signed with the offline targets key. A server that is
# taken over cannot swap it.
"$PY" - keys/director.key.pub director.json <<'EOF'
import hashlib, json, sys
from securesystemslib.formats import encode_canonical
key = json.load(open(sys.argv[1]))
kid = hashlib.sha256(encode_canonical(key).encode()).hexdigest()
json.dump({"keys": {kid: key}, "threshold": 1}, open(sys.argv[2], "w"))
EOF
run "$BIN/fota" repo add-target director.json --repo repo --name fota/director.json >/dev/null
run "$BIN/fota" repo sign targets --repo repo --key keys/targets.key >/dev/null
run "$BIN/fota" repo publish --repo repo --snapshot-key keys/snapshot.key \
    --timestamp-key keys/timestamp.key >/dev/null
run "$BIN/fota-server" init --data-dir server --repo repo --snapshot-key keys/snapshot.key \
    --timestamp-key keys/timestamp.key >/dev/null
show "$BIN/fota-server" token new --data-dir server --scope admin --name demo-operator
umask 077
"$BIN/fota-server" token new --data-dir server --scope admin --name demo-operator 2>/dev/null |
    awk '{ print $NF }' >admin.token
umask 022
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# Started directly (not through run, a function: `run ... &` would leave
# $! naming a subshell, and stopping it would leave fota-server running).
set -- "$BIN/fota-server" serve --data-dir server --listen "127.0.0.1:$PORT" --threads 2 \
    --snapshot-key keys/snapshot.key --timestamp-key keys/timestamp.key \
    --director-key keys/director.key --log-level warn
show "$@"
"$@" 2>server.log &
SERVER_PID=$!
i=0
until "$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
    "$URL/device/v1/director-key" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] && kill -0 "$SERVER_PID" 2>/dev/null || die "fota-server did not start: $(cat server.log)"
    sleep 0.1
done
say "fota-server (SQLite) serving at $URL, pid $SERVER_PID"
# The attacker of step 5 sits on the network path from now on and keeps
# what it sees, starting with today's timestamp.json.
"$PY" "$MITM" serve --upstream "$URL" --port-file mitm.port --control-port-file mitm.ctl \
    --director-key keys/director.key 2>mitm.log &
MITM_PID=$!
wait_file mitm.port && wait_file mitm.ctl || die "mitm.py did not start: $(cat mitm.log)"
PROXY=http://127.0.0.1:$(cat mitm.port)
MITM_CTL=http://127.0.0.1:$(cat mitm.ctl)
TS_OLD=$("$PY" "$MITM" ctl "$MITM_CTL" record-timestamp | jget 'd["version"]')
say "an attacker's man in the middle listens at $PROXY; it keeps a copy of timestamp.json v$TS_OLD"

# ---------------------------------------------------------------------------
step "2. Sign firmware 1.0.0 and 1.1.0 ($((IMAGE_SIZE / 1024)) KiB each) for $HW, publish both"
for v in 1.0.0 1.1.0; do
    head -c $IMAGE_SIZE /dev/urandom >"payload-$v.bin"
done
run "$BIN/fota" image sign payload-1.0.0.bin firmware-1.0.0.bin --key keys/firmware.key \
    --version 1.0.0 --security-counter 1 --hardware $HW >/dev/null
run "$BIN/fota" image sign payload-1.1.0.bin firmware-1.1.0.bin --key keys/firmware.key \
    --version 1.1.0 --security-counter 2 --hardware $HW >/dev/null
for v in 1.0.0 1.1.0; do
    sc=1; [ $v = 1.1.0 ] && sc=2
    run "$BIN/fota" repo add-target "firmware-$v.bin" --repo repo --name "$HW/firmware-$v.bin" \
        --custom "{\"hardware_ids\":[\"$HW\"],\"version\":\"$v\",\"security_counter\":$sc}" >/dev/null
done
run "$BIN/fota" repo sign targets --repo repo --key keys/targets.key >/dev/null
run api release push --repo repo firmware-1.0.0.bin firmware-1.1.0.bin | indent
api release list --json >releases.json
R10=$(jget '[r["id"] for r in d["releases"] if r["version"] == "1.0.0"][0]' <releases.json)
R11=$(jget '[r["id"] for r in d["releases"] if r["version"] == "1.1.0"][0]' <releases.json)
say "release 1.0.0 = $R10 (security counter 1), release 1.1.0 = $R11 (security counter 2)"

# ---------------------------------------------------------------------------
step "3. A fleet of $DEVICES simulated devices on 1.0.0 enrols; the operator accepts them"
set -- "$BIN/fota-sim" fleet --devices "$DEVICES" --server "$URL" --dir fleet --hardware-id $HW \
    --image-key keys/firmware.key.pub --tuf-root repo/metadata/1.root.json \
    --factory-image firmware-1.0.0.bin --poll-interval 2 --fail-health "$FAIL_HEALTH" --seed 2026 \
    --until-version 1.1.0 --duration 100 --json
show "$@"
"$@" >fleet.json 2>fleet.log &
FLEET_PID=$!
say "fota-sim fleet running in the background (pid $FLEET_PID; $DEVICES flash files, $DEVICES identities)"
pending=0
i=0
while [ "$pending" -lt "$DEVICES" ]; do
    kill -0 "$FLEET_PID" 2>/dev/null || die "fota-sim fleet stopped: $(tail -5 fleet.log)"
    [ $i -lt 300 ] || die "only $pending of $DEVICES devices enrolled"
    sleep 0.2
    i=$((i + 1))
    pending=$(api device list --status pending --hardware-id $HW --limit 1000 --json |
              jget 'len(d["devices"])')
done
say "$pending devices enrolled and wait for an operator (fota device list --status pending)"
api device list --status pending --hardware-id $HW --limit 1000 --json |
    jget '"\n".join(x["id"] for x in d["devices"])' >pending.txt
printf '$ fota device accept ID     (for each of the %s pending devices)\n' "$(wc -l <pending.txt)"
while read -r id; do
    api device accept "$id" >/dev/null
done <pending.txt
api device list --status accepted --hardware-id $HW --limit 1000 --json |
    jget '"%d accepted, running %s" % (len(d["devices"]), ", ".join(sorted(set(str(x["version"]) for x in d["devices"]))))' |
    indent

# ---------------------------------------------------------------------------
step "4. Roll 1.1.0 out in waves of 5%, 25%, 100%; a few devices fail their health check"
run api rollout create --release "$R11" --hardware-id $HW --version 1.0.0 --waves 5,25,100 \
    --success-threshold 0.8 --failure-limit 0.1 | tee rollout.txt | indent
RID=$(awk '/created rollout/ { print $NF }' rollout.txt)
[ -n "$RID" ] || die "no rollout id"
say "progress (fota rollout show $RID, every second):"
ROLL_T=$(now)
last=
while :; do
    api rollout show "$RID" --json >rollout.json
    line=$("$PY" - rollout.json <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
open_waves = [w for w in r["progress"] if w["open"]]
print("%s|wave %d/%d open (%d%%, %d devices): confirmed %d, rolled back %d, failed %d, "
      "in progress %d, waiting %d" % (
          r["state"], r["current_wave"] + 1, len(r["waves"]), r["waves"][r["current_wave"]],
          open_waves[-1]["covered"] if open_waves else 0, t["confirmed"], t["rolled_back"],
          t["failed"], t["downloading"] + t["installed"] + t["rebooted"], t["assigned"]))
EOF
)
    state=${line%%|*}
    if [ "$line" != "$last" ]; then
        printf '   %6ss  %-9s %s\n' "$(since "$ROLL_T")" "$state" "${line#*|}"
        last=$line
    fi
    case $state in
    completed) break ;;
    paused)
        if [ -z "${PAUSED:-}" ]; then
            say "the rollout paused itself: the failed share of its open waves passed the limit."
            say "the operator looks (fota rollout show: the failures are health checks, and those"
            say "devices are back on 1.0.0 by themselves) and resumes:"
            PAUSED=1
        fi
        run api rollout resume "$RID" >/dev/null ;;
    aborted) die "rollout aborted" ;;
    esac
    if ! kill -0 "$FLEET_PID" 2>/dev/null; then
        api rollout show "$RID" --json >rollout.json
        jget 'd["state"]' <rollout.json | grep -q completed && break
        die "the fleet stopped before the rollout completed: $(tail -5 fleet.log)"
    fi
    sleep 1
done
say "rollout $RID completed in $(since "$ROLL_T")s:"
api rollout show "$RID" | sed -n '/^WAVE/,$p' | indent
FLEET_STATUS=0
wait "$FLEET_PID" || FLEET_STATUS=$?
FLEET_PID=
say "fota-sim fleet (exit status $FLEET_STATUS), its progress lines and summary:"
grep -v '^fota-sim: fleet: ' fleet.log | tail -n 8 | indent
"$PY" - fleet.json <<'EOF' | indent
import json, sys
f = json.load(open(sys.argv[1]))
o = f["outcomes"]
print("%d devices: %d confirmed %s, %d rolled back to %s by themselves (health check failed)" % (
    f["devices"], o["confirmed"], f["until_version"], o["rolled_back"], f["factory_version"]))
print("every device on an image its bootloader verifies: %s (%d verified, unverified: %s)" % (
    "yes" if not f["unverified"] else "NO", f["verified"], f["unverified"] or "none"))
print("fleet settled after %.1f s, last confirmation at %.1f s; %.1f MiB of images downloaded" % (
    f["settled_s"], f["last_confirmed_s"], f["bytes_downloaded"] / 1048576.0))
EOF
[ "$FLEET_STATUS" = 0 ] || die "fota-sim fleet exit status $FLEET_STATUS"

# ---------------------------------------------------------------------------
step "5. Three attacks on a device that runs fota-agent, through a man in the middle"
mkdir -p dev
BOOT="$BIN/fota-boot --flash dev/flash --key keys/firmware.key.pub --hardware $HW"
"$BIN/fota-boot" --flash dev/flash --create 1M >/dev/null
$BOOT --install firmware-1.0.0.bin >/dev/null
$BOOT >/dev/null
$BOOT --confirm >/dev/null
cat >dev/agent.conf <<EOF
# fota-agent on a device that reaches the server only through the attacker
server = $PROXY
data_dir = $WORK/dev/data
flash = $WORK/dev/flash
hardware_id = $HW
image_key = $WORK/keys/firmware.key.pub
tuf_root = $WORK/repo/metadata/1.root.json
health_cmd = true
reboot_cmd = $BOOT
low_speed_time = 5
EOF
# One agent cycle; prints its log lines and leaves its exit status in $AGENT_RC.
agent_once() {
    printf '$ fota-agent --config dev/agent.conf --once\n'
    AGENT_RC=0
    "$BIN/fota-agent" --config dev/agent.conf --once >dev/agent.out 2>&1 || AGENT_RC=$?
    grep -v ' debug ' dev/agent.out | indent
    say "exit status $AGENT_RC"
}
# expect STATUS REASON: the last cycle exited STATUS and named REASON.
expect() {
    [ "$AGENT_RC" = "$1" ] || die "fota-agent exited $AGENT_RC, expected $1"
    if [ -n "${2:-}" ]; then
        grep -q -- "$2" dev/agent.out || die "fota-agent did not give the reason $2"
    fi
}
running() {
    "$BIN/fota-agent" --config dev/agent.conf --status --json |
        jget '"running %s in slot %s, %s; security counter %s" % (d["running_version"], "AB"[d["running_slot"]], d["slots"][d["running_slot"]]["state"], d["security_counter"])'
}
ATTACKS_REFUSED=0
say "a device (flash file, slots A/B, 1.0.0 confirmed) enrols through the man in the middle"
agent_once; expect 11
DEV=$("$BIN/fota-agent" --config dev/agent.conf --status --json | jget 'd["device_id"]')
run api device accept "$DEV" >/dev/null
agent_once; expect 0
say "device: $(running)"

printf '\n-- 5a. Substitution: the server (or a mirror, or DNS) serves another image as 1.1.0\n'
run "$BIN/fota" key new --type ed25519 --out keys/attacker.key >/dev/null
run "$BIN/fota" image sign payload-1.1.0.bin evil-1.1.0.bin --key keys/attacker.key \
    --version 1.1.0 --security-counter 2 --hardware $HW >/dev/null
say "evil-1.1.0.bin: $(wc -c <evil-1.1.0.bin) bytes, as long as the real one, signed with the attacker's key"
run api rollout create --release "$R11" --device "$DEV" | indent
ctl mode "{\"mode\":\"substitute\",\"match\":\"firmware-1.1.0.bin\",\"file\":\"$WORK/evil-1.1.0.bin\"}"
say "man in the middle: substitute (answers GET /repo/targets/...firmware-1.1.0.bin with evil-1.1.0.bin)"
agent_once; expect 13 hash-mismatch
say "device: $(running)"
ATTACKS_REFUSED=$((ATTACKS_REFUSED + 1))

say "the path is clean again: the device takes the real 1.1.0 (a new rollout for it)"
ctl mode '{"mode":"pass"}'
run api rollout create --release "$R11" --device "$DEV" | indent
agent_once; expect 10
say "device: $(running)"

printf '\n-- 5b. Downgrade: a compromised server holding the Director key sends 1.0.0 (counter 1)\n'
ctl mode "{\"mode\":\"downgrade\",\"target\":\"$HW/firmware-1.0.0.bin\"}"
say "man in the middle: answers each check-in with a Director document it signs itself:"
say "the right device, the right nonce, install $HW/firmware-1.0.0.bin (real, TUF-listed)"
agent_once; expect 13 rollback
say "device: $(running)"
ATTACKS_REFUSED=$((ATTACKS_REFUSED + 1))

printf '\n-- 5c. Freeze: an old Director document and an old timestamp.json, replayed\n'
ctl mode '{"mode":"freeze","director":true,"timestamp":false}'
say "man in the middle: answers the check-in with this device's first Director document"
agent_once; expect 13 nonce-mismatch
ctl mode '{"mode":"freeze","director":false,"timestamp":true}'
say "man in the middle: serves the timestamp.json it recorded in step 1"
agent_once; expect 13 'rollback\|expired'
say "device: $(running)"
ATTACKS_REFUSED=$((ATTACKS_REFUSED + 1))
ctl mode '{"mode":"pass"}'
say "what the server recorded for this device (fota device show, history):"
api device show "$DEV" --json |
    jget '"\n".join("%s  %-11s %-34s %s" % (h["time"], h["event"], h.get("target") or "", h.get("reason") or "") for h in reversed(d["history"]))' |
    indent
agent_once; expect 0
say "with the attacker gone, the device checks in normally: $(running)"

# ---------------------------------------------------------------------------
step "6. The fleet at the end"
api device list --hardware-id $HW --limit 1000 --json >devices.json
FLEET_OK=0
"$PY" - devices.json rollout.json fleet.json "$DEV" <<'EOF' || FLEET_OK=$?
import collections, json, sys
registry = dict((d["id"], d) for d in json.load(open(sys.argv[1]))["devices"]
                if d["id"] != sys.argv[4])
rollout = json.load(open(sys.argv[2]))
fleet = json.load(open(sys.argv[3]))
table = collections.Counter(d["version"] for d in registry.values())
print("   %-8s %7s   (fota device list, the fleet's devices)" % ("VERSION", "DEVICES"))
for v, c in sorted(table.items()):
    print("   %-8s %7d" % (v, c))
print("   %-8s %7d" % ("total", len(registry)))
t = rollout["totals"]
print("   rollout %s: %s; confirmed %d, rolled back %d, failed %d, of %d" % (
    rollout["id"], rollout["state"], t["confirmed"], t["rolled_back"], t["failed"],
    rollout["device_count"]))
# As planned: the devices fota-sim chose to fail their health check are back
# on the factory image, every other one confirmed the new one, the server's
# registry says the same, and every device runs an image its bootloader
# verifies.
wrong = []
for d in fleet["device_list"]:
    want = (("rolled_back", fleet["factory_version"]) if d["fail_health"]
            else ("confirmed", fleet["until_version"]))
    got = (d["outcome"], d["version"])
    seen = registry.get(d["id"], {}).get("version")
    if got != want or seen != want[1] or not d["verified"]:
        wrong.append("%s: %s, server says %s, wanted %s" % (d["name"], got, seen, want))
planned = sum(1 for d in fleet["device_list"] if d["fail_health"])
print("   planned to fail their health check: %d; rolled back: %d; not as planned: %d" % (
    planned, t["rolled_back"], len(wrong)))
for w in wrong[:10]:
    print("   NOT AS PLANNED " + w)
ok = (not wrong and len(registry) == len(fleet["device_list"]) == fleet["devices"]
      and rollout["state"] == "completed" and t["failed"] == 0
      and t["confirmed"] + t["rolled_back"] == rollout["device_count"] == fleet["devices"])
sys.exit(0 if ok else 1)
EOF
[ "$FLEET_OK" = 0 ] || die "the fleet did not end as planned"
[ "$ATTACKS_REFUSED" = 3 ] || die "only $ATTACKS_REFUSED of 3 attacks refused"

step "Done"
cat "$TIMES"
printf '%7ss  %s\n' "$(since "$T0")" "total"
say "every device confirmed 1.1.0 or rolled back to 1.0.0 by itself; all three attacks refused."
say "stopping fota-server, the man in the middle and anything else started here."
