#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Make the fuzzers' fixture (fuzz/fixture/) and seed corpus
# (fuzz/corpus/<harness>/) with our own tools: `fota` (keys, a TUF
# repository, signed images), `fota-boot` (boot-state records on a flash
# file) and a running `fota-server` driven by a Python device
# (fuzz/make_corpus.py on tests/server/devclient.py). Run once and commit
# the output; run again only when a format changes (docs/fuzzing.md).
#
#   fuzz/make_corpus.sh [BUILD_DIR]        (default: build; needs `make` first)
#
# The keys in fuzz/fixture/keys/ are kept when they exist (they are test
# keys, public by design), so a re-run signs with the same keys and the
# harnesses' trusted root does not change. Every expiry is absolute
# (2099-01-01) so the documents do not depend on the day they were made.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BIN=$BUILD/bin
FOTA=$BIN/fota
FZ=$ROOT/fuzz
FX=$FZ/fixture
CORPUS=$FZ/corpus
PY=/usr/bin/python3
EXP=2099-01-01T00:00:00Z

for b in fota fota-boot fota-server; do
    [ -x "$BIN/$b" ] || { echo "make_corpus: $BIN/$b missing: run make first" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fota-corpus.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

q() { "$@" >/dev/null; }

# ---- keys (kept across runs) ----------------------------------------------------
mkdir -p "$FX/keys"
for k in root root2 targets snapshot timestamp delegated image director device; do
    [ -f "$FX/keys/$k.pem" ] || q "$FOTA" key new --type ed25519 --out "$FX/keys/$k.pem"
done
[ -f "$FX/keys/image-ecdsa.pem" ] || q "$FOTA" key new --type ecdsa --out "$FX/keys/image-ecdsa.pem"
K=$FX/keys

# ---- signed images --------------------------------------------------------------
rm -rf "$FX/images"
mkdir -p "$FX/images"
# A payload that is not all one byte, so a flipped bit shows.
$PY -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) & 0xff for i in range(512)))' \
    >"$WORK/payload"
q "$FOTA" image sign "$WORK/payload" "$FX/images/a.img" --key "$K/image.pem" \
    --version 1.0.0 --security-counter 1 --hardware board-a
q "$FOTA" image sign "$WORK/payload" "$FX/images/b.img" --key "$K/image.pem" \
    --version 2.0.0 --security-counter 2 --hardware board-a

# ---- the repository the harnesses trust (root v1) ---------------------------------
rm -rf "$FX/repo"
R=$FX/repo
q "$FOTA" repo init --repo "$R" --root-key "$K/root.pem.pub" --targets-key "$K/targets.pem.pub" \
    --snapshot-key "$K/snapshot.pem.pub" --timestamp-key "$K/timestamp.pem.pub" --expires $EXP
q "$FOTA" repo sign root --repo "$R" --key "$K/root.pem"
# The Director key set the agent trusts, as the TUF target fota/director.json.
$PY - "$K/director.pem.pub" "$WORK/director.json" <<'EOF'
import hashlib, json, sys
from securesystemslib.formats import encode_canonical
key = json.load(open(sys.argv[1]))
kid = hashlib.sha256(encode_canonical(key).encode()).hexdigest()
open(sys.argv[2], "w").write(json.dumps({"keys": {kid: key}, "threshold": 1}, sort_keys=True))
EOF
cp "$WORK/director.json" "$FX/director.json"
q "$FOTA" repo add-target "$FX/images/a.img" --repo "$R" --name fw/board-a-1.0.0.img \
    --custom '{"hardware_ids":["board-a"],"version":"1.0.0","security_counter":1}'
q "$FOTA" repo add-target "$WORK/director.json" --repo "$R" --name fota/director.json
q "$FOTA" repo delegate --repo "$R" --name team-a --key "$K/delegated.pem.pub" --path 'team-a/*'
printf 'team-a payload\n' >"$WORK/t.bin"
q "$FOTA" repo add-target "$WORK/t.bin" --repo "$R" --role team-a --name team-a/t.bin
q "$FOTA" repo bump targets --repo "$R" --expires $EXP
q "$FOTA" repo bump team-a --repo "$R" --expires $EXP
q "$FOTA" repo sign targets --repo "$R" --key "$K/targets.pem"
q "$FOTA" repo sign team-a --repo "$R" --key "$K/delegated.pem"
q "$FOTA" repo publish --repo "$R" --snapshot-key "$K/snapshot.pem" \
    --timestamp-key "$K/timestamp.pem" --snapshot-expires $EXP --timestamp-expires $EXP
rm -f "$R/.fota-lock"

# ---- the corpus -------------------------------------------------------------------
rm -rf "$CORPUS"
for h in json tuf_root tuf_timestamp tuf_snapshot tuf_targets image boot_state director \
         server_device server_api agent_response; do
    mkdir -p "$CORPUS/$h"
done
M=$R/metadata
cp "$M/1.root.json" "$CORPUS/tuf_root/root-v1.json"
cp "$M/timestamp.json" "$CORPUS/tuf_timestamp/timestamp-v1.json"
cp "$M/1.snapshot.json" "$CORPUS/tuf_snapshot/snapshot-v1.json"
cp "$M/1.targets.json" "$CORPUS/tuf_targets/targets-v1.json"
cp "$M/1.team-a.json" "$CORPUS/tuf_targets/team-a-v1.json"

# Later versions, in a copy: more targets, a hashed-bin style delegation,
# a terminating one, and a root rotation (v2 signed by the old and the new
# root key, then v3 with a threshold of 2).
W=$WORK/repo
cp -r "$R" "$W"
q "$FOTA" repo add-target "$FX/images/b.img" --repo "$W" --name fw/board-a-2.0.0.img \
    --custom '{"hardware_ids":["board-a","board-b"],"version":"2.0.0","security_counter":2}'
q "$FOTA" repo delegate --repo "$W" --name bins-0 --key "$K/delegated.pem.pub" \
    --path-hash-prefix 0 --path-hash-prefix 1 --path-hash-prefix 2 --path-hash-prefix 3
q "$FOTA" repo delegate --repo "$W" --name team-b --key "$K/delegated.pem.pub" \
    --key "$K/targets.pem.pub" --threshold 2 --path 'team-b/*.img' --path 'team-b/?/x' \
    --terminating
q "$FOTA" repo bump targets --repo "$W" --expires $EXP
q "$FOTA" repo bump bins-0 --repo "$W" --expires $EXP
q "$FOTA" repo bump team-b --repo "$W" --expires $EXP
q "$FOTA" repo sign targets --repo "$W" --key "$K/targets.pem"
q "$FOTA" repo sign bins-0 --repo "$W" --key "$K/delegated.pem"
q "$FOTA" repo sign team-b --repo "$W" --key "$K/delegated.pem" --key "$K/targets.pem"
q "$FOTA" repo publish --repo "$W" --snapshot-key "$K/snapshot.pem" \
    --timestamp-key "$K/timestamp.pem" --snapshot-expires $EXP --timestamp-expires $EXP
q "$FOTA" repo rotate root --repo "$W" --add-key "$K/root2.pem.pub" --expires $EXP
q "$FOTA" repo sign root --repo "$W" --key "$K/root.pem" --key "$K/root2.pem"
q "$FOTA" repo publish --repo "$W" --snapshot-key "$K/snapshot.pem" \
    --timestamp-key "$K/timestamp.pem" --snapshot-expires $EXP --timestamp-expires $EXP
q "$FOTA" repo rotate root --repo "$W" --threshold 2 --expires $EXP
q "$FOTA" repo sign root --repo "$W" --key "$K/root.pem" --key "$K/root2.pem"
q "$FOTA" repo publish --repo "$W" --snapshot-key "$K/snapshot.pem" \
    --timestamp-key "$K/timestamp.pem" --snapshot-expires $EXP --timestamp-expires $EXP
WM=$W/metadata
cp "$WM/2.root.json" "$CORPUS/tuf_root/root-v2.json"
cp "$WM/3.root.json" "$CORPUS/tuf_root/root-v3.json"
cp "$WM/timestamp.json" "$CORPUS/tuf_timestamp/timestamp-v4.json"
for v in 2 3 4; do cp "$WM/$v.snapshot.json" "$CORPUS/tuf_snapshot/snapshot-v$v.json"; done
cp "$WM/2.targets.json" "$CORPUS/tuf_targets/targets-v2.json"
cp "$WM/1.bins-0.json" "$CORPUS/tuf_targets/bins-0-v1.json"
cp "$WM/1.team-b.json" "$CORPUS/tuf_targets/team-b-v1.json"
# Unsigned staged documents: the shape without a valid signature.
cp "$W/staged/targets.json" "$CORPUS/tuf_targets/staged-targets.json"

# ---- images ---------------------------------------------------------------------
I=$CORPUS/image
cp "$FX/images/a.img" "$I/ed25519-v1.img"
cp "$FX/images/b.img" "$I/ed25519-v2.img"
q "$FOTA" image sign "$WORK/payload" "$I/ecdsa.img" --key "$K/image-ecdsa.pem" \
    --version 1.2.3+45 --security-counter 7 --hardware board-a
q "$FOTA" image sign "$WORK/payload" "$I/two-signatures.img" --key "$K/image.pem" \
    --key "$K/image-ecdsa.pem" --version 3.0.0 --security-counter 3 --hardware board-a
q "$FOTA" image sign "$WORK/payload" "$I/unknown-key.img" --key "$K/device.pem" \
    --version 1.0.0 --security-counter 1 --hardware board-a
q "$FOTA" image sign "$WORK/payload" "$I/other-hardware.img" --key "$K/image.pem" \
    --version 1.0.0 --security-counter 1 --hardware board-b.rev_2
: >"$WORK/empty"
q "$FOTA" image sign "$WORK/empty" "$I/empty-payload.img" --key "$K/image.pem" \
    --version 0.0.1 --security-counter 0 --hardware x

# ---- boot-state records: the two copies after each step of fota-boot ---------------
F=$WORK/flash.bin
BOOT="$BIN/fota-boot --flash $F --key $K/image.pem.pub --hardware board-a"
state() {   # the first 32 bytes of state sectors 0 and 1
    $PY -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(d[0:32]+d[4096:4128])' \
        "$F" >"$CORPUS/boot_state/$1.bin"
}
q "$BIN/fota-boot" --flash "$F" --create 64K
state erased
q $BOOT --install "$FX/images/a.img"; state installed-a
q $BOOT; state trial-a
q $BOOT --confirm; state confirmed-a
q $BOOT --install "$FX/images/b.img"; state installed-b
q $BOOT; state trial-b-1
q $BOOT; state trial-b-2
q $BOOT; state trial-b-3
$BOOT >/dev/null || true; state reverted-b
q $BOOT --install "$FX/images/b.img"; state installed-b-again
q $BOOT; q $BOOT --confirm; state confirmed-b
q $BOOT --rollback 2>/dev/null || true; state rollback-refused

# ---- the server, a device and an operator (make_corpus.py) ------------------------
$PY "$FZ/make_corpus.py" --bin "$BIN" --fixture "$FX" --corpus "$CORPUS" --work "$WORK"

# ---- JSON: every JSON document above, and a few shapes of our own ------------------
J=$CORPUS/json
for f in "$CORPUS"/tuf_*/*.json "$FX/director.json"; do
    cp "$f" "$J/$(basename "$(dirname "$f")")-$(basename "$f")"
done
for f in "$CORPUS"/server_device/*; do cp "$f" "$J/device-$(basename "$f")"; done
printf '%s' '{"a":[1,-2,0,9223372036854775807,-9223372036854775808],"b":{"":null,"\u00e9":true},"c":"\"\\\/\b\f\n\r\t\u0001"}' >"$J/escapes.json"
printf '%s' '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]' >"$J/depth-32.json"
printf '%s' '{"k":"\ud83d\ude00 \u2028","z":false,"y":[],"x":{}}' >"$J/unicode.json"
printf '%s' '{"real":1.5e3}' >"$J/real.json"
printf '%s' '{"dup":1,"dup":2}' >"$J/duplicate.json"

# Nothing too big for a seed.
big=$(find "$CORPUS" -type f -size +64k -print)
if [ -n "$big" ]; then
    echo "make_corpus: over 64 KiB: $big" >&2
    exit 1
fi
for d in "$CORPUS"/*; do
    n=$(find "$d" -type f | wc -l)
    [ "$n" -le 50 ] || { echo "make_corpus: $d has $n files (at most 50)" >&2; exit 1; }
    printf '%-16s %3d files\n' "$(basename "$d")" "$n"
done
