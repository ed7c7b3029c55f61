#!/bin/sh
# The fota demo: sign a firmware image, publish it in a signed TUF repository
# with the operator CLI, serve it on 127.0.0.1, and have a client refresh its
# trusted metadata and download the image, printing every check it makes. Then
# a simulated device installs it, boots it on trial and confirms it; a
# substituted image, a downgrade and an image signed by another key are each
# refused. Everything happens in a scratch folder that is removed at the end;
# the only server started is stopped whatever happens.
set -eu

BUILD=${1:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/$BUILD/bin
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/fota-demo.XXXXXX)
SERVER_PID=

cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s#$WORK#\$WORK#g; s#$BIN/##g"; "$@"; }

cd "$WORK"
step "1. Offline keys: two root keys (threshold 2), targets, firmware signing; online snapshot and timestamp keys"
mkdir -p keys
for k in root-a root-b targets firmware snapshot timestamp; do
    run "$BIN/fota" key new --type ed25519 --out "keys/$k.key" >/dev/null
done
ls keys | sed 's/^/   /'

step "2. Create the repository and sign root with both root keys (offline)"
run "$BIN/fota" repo init --repo repo \
    --root-key keys/root-a.key.pub --root-key keys/root-b.key.pub --root-threshold 2 \
    --targets-key keys/targets.key.pub --snapshot-key keys/snapshot.key.pub \
    --timestamp-key keys/timestamp.key.pub
run "$BIN/fota" repo sign root --repo repo --key keys/root-a.key
run "$BIN/fota" repo sign root --repo repo --key keys/root-b.key

step "3. Sign firmware 1.0.0 (offline image key), add it as a target, sign targets (offline), publish (online keys)"
head -c 262144 /dev/urandom > payload-1.0.0.bin
run "$BIN/fota" image sign payload-1.0.0.bin firmware-1.0.0.bin --key keys/firmware.key \
    --version 1.0.0+1 --security-counter 1 --hardware demo-board
run "$BIN/fota" image inspect firmware-1.0.0.bin
run "$BIN/fota" repo add-target firmware-1.0.0.bin --repo repo --name demo-board/firmware-1.0.0.bin \
    --custom '{"hardware_ids":["demo-board"],"version":"1.0.0","security_counter":1}'
run "$BIN/fota" repo sign targets --repo repo --key keys/targets.key
run "$BIN/fota" repo publish --repo repo --snapshot-key keys/snapshot.key --timestamp-key keys/timestamp.key

step "4. Serve the repository on 127.0.0.1"
"$PY" "$TOP/tests/support/httpd.py" --dir repo --port-file port &
SERVER_PID=$!
i=0
while [ ! -s port ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s port ] || { echo "demo: the HTTP server did not start" >&2; exit 1; }
URL="http://127.0.0.1:$(cat port)"
echo "   serving $WORK/repo at $URL" | sed "s#$WORK#\$WORK#g"

step "5. A client that trusts only root v1 refreshes its metadata (every check printed)"
mkdir -p client/metadata client/targets
run "$BIN/fota-tuf-client" --metadata-dir client/metadata init repo/metadata/1.root.json
run "$BIN/fota-tuf-client" -v --metadata-dir client/metadata --metadata-url "$URL/metadata" refresh

step "6. The client downloads the firmware: length and hashes checked while it streams"
run "$BIN/fota-tuf-client" -v --metadata-dir client/metadata --metadata-url "$URL/metadata" \
    --target-name demo-board/firmware-1.0.0.bin --target-base-url "$URL/targets" \
    --target-dir client/targets download
ls -l client/targets | tail -n +2 | sed 's/^/   /'
cmp firmware-1.0.0.bin client/targets/demo-board%2Ffirmware-1.0.0.bin && echo "   identical to what the operator signed"

step "7. A device (simulated flash: two slots and a two-copy boot state) installs it, boots it on trial, confirms it"
DEV="--flash device.flash --key keys/firmware.key.pub --hardware demo-board"
run "$BIN/fota-boot" --flash device.flash --create 1M
run "$BIN/fota-boot" $DEV --install client/targets/demo-board%2Ffirmware-1.0.0.bin
run "$BIN/fota-boot" $DEV
run "$BIN/fota-boot" $DEV --confirm
run "$BIN/fota-boot" $DEV

step "8. Attack: the server substitutes the image (same length, one byte changed)"
rm -f client/targets/*
served=$(find repo/targets -type f -name '*.firmware-1.0.0.bin')
"$PY" - "$served" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[1000] ^= 0x01
open(p, "wb").write(bytes(b))
EOF
if "$BIN/fota-tuf-client" --metadata-dir client/metadata --metadata-url "$URL/metadata" \
    --target-name demo-board/firmware-1.0.0.bin --target-base-url "$URL/targets" \
    --target-dir client/targets download; then
    echo "demo: the substituted image was accepted" >&2
    exit 1
fi
echo "   refused (exit status 1); target folder now holds: $(ls client/targets | wc -l) files"

step "9. Attack: a downgrade to 0.9.0 (genuinely signed, security counter 0) and an image signed by another key"
run "$BIN/fota" image sign payload-1.0.0.bin firmware-0.9.0.bin --key keys/firmware.key \
    --version 0.9.0 --security-counter 0 --hardware demo-board >/dev/null
run "$BIN/fota" key new --type ed25519 --out keys/attacker.key >/dev/null
run "$BIN/fota" image sign payload-1.0.0.bin firmware-evil.bin --key keys/attacker.key \
    --version 9.9.9 --security-counter 99 --hardware demo-board >/dev/null
for img in firmware-0.9.0.bin firmware-evil.bin; do
    if "$BIN/fota-boot" $DEV --install "$img"; then
        echo "demo: $img was installed" >&2
        exit 1
    fi
    echo "   $img refused (exit status 1)"
done
run "$BIN/fota-boot" $DEV

step "Done: repository, server, client and device all ran on 127.0.0.1 (the server is now stopped)"
