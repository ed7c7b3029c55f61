#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Image verification: fota_image_verify over a 16 MiB image (median of
# several runs, read callback copying from memory) next to
# `openssl speed -evp sha256` on 16 KiB blocks, in the same run on the same
# machine, and the ratio (target: at least 90%). Then the verifier's peak
# stack (painted-stack thread) and its own frame sizes (gcc -fstack-usage).
#
#   bench/image_verify.sh [BUILD_DIR]        (default: build)

set -eu
cd "$(dirname "$0")/.."

BUILD=${1:-build}
BIN="$BUILD/bin/image-verify-bench"
OPENSSL=${OPENSSL:-openssl}
CC=${CC:-cc}

if [ ! -x "$BIN" ]; then
	echo "image_verify.sh: $BIN missing: run make first" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

"$BIN" --mib 16 --runs 21 >"$tmp/fota.txt"
# The last line of openssl speed is "sha256  <1000s of bytes per second>k".
"$OPENSSL" speed -evp sha256 -bytes 16384 -seconds 2 2>/dev/null | tail -n 1 >"$tmp/openssl.txt"

# The verifier's own frames: lib/image.c compiled as the build compiles it
# (RelWithDebInfo: -O2 -g), with -fstack-usage.
"$CC" -std=c11 -O2 -g -D_POSIX_C_SOURCE=200809L -Iinclude -fstack-usage \
	-c lib/image.c -o "$tmp/image.o"

/usr/bin/python3 - "$tmp/fota.txt" "$tmp/openssl.txt" "$tmp/image.su" "$("$OPENSSL" version)" "$("$CC" --version | head -n 1)" <<'EOF'
import sys

fota = dict(line.split() for line in open(sys.argv[1]) if line.strip())
fields = open(sys.argv[2]).read().split()
if len(fields) != 2 or fields[0] != "sha256" or not fields[1].endswith("k"):
    sys.exit("image_verify.sh: cannot read openssl speed output: %r" % fields)
ossl = float(fields[1][:-1]) / 1000.0          # 1000s of bytes/s -> MB/s
verify = float(fota["verify_scratch4096_mbps"])
ratio = verify / ossl

print("image verification, %.1f MiB image, median of %s runs (%s)"
      % (int(fota["image_bytes"]) / 2**20, fota["runs"], sys.argv[4]))
print("  %-44s %9.1f MB/s" % ("openssl speed -evp sha256 (16 KiB blocks)", ossl))
print("  %-44s %9.1f MB/s" % ("fota_sha256 over the image in one call", float(fota["sha256_oneshot_mbps"])))
for s in ("256", "4096", "65536"):
    print("  %-44s %9.1f MB/s" % ("fota_image_verify, scratch %s B" % s, float(fota["verify_scratch%s_mbps" % s])))
print("  ratio fota_image_verify (4096 B scratch) / openssl: %.1f%% (target >= 90%%) %s"
      % (100 * ratio, "OK" if ratio >= 0.9 else "BELOW TARGET"))
print("peak stack of fota_image_verify (painted 64 KiB thread stack, scratch not included)")
print("  verifier + SHA-256, no signature checked:  %6s B" % fota["stack_verifier_sha256_bytes"])
print("  with one ed25519 check (OpenSSL):          %6s B" % fota["stack_ed25519_bytes"])
print("  with one ECDSA P-256 check (OpenSSL):      %6s B" % fota["stack_ecdsa_p256_bytes"])
print("frames of lib/image.c (%s, -O2 -fstack-usage):" % sys.argv[5])
for line in open(sys.argv[3]):
    where, size, kind = line.rstrip("\n").split("\t")
    print("  %-40s %5s B  %s" % (where.split(":")[-1], size, kind))
EOF
