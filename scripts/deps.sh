#!/bin/sh
# Install the Debian 12 packages fota needs to build and test, and only the
# missing ones. One line per package says what it is for. Idempotent.
# With --fuzz, also what `make fuzz` needs (clang and libFuzzer).
set -eu

# package:why
NEEDS="
gcc:the C compiler
make:the build driver
cmake:the build system generator
pkg-config:finding the libraries below
libssl-dev:OpenSSL libcrypto (signatures and digests)
openssl:independent test vectors made with the openssl command
libjansson-dev:JSON parsing
libcurl4-openssl-dev:HTTP client for fota-tuf-client and the agent
libcmocka-dev:unit tests
libmicrohttpd-dev:the HTTP server of fota-server
libsqlite3-dev:fota-server's embedded database
libsodium-dev:fast Ed25519 signing of Director documents in fota-server
python3:the HTTP test server and integration tests
python3-securesystemslib:an independent TUF signing implementation for interop tests
python3-cryptography:independent signature checks in the tests (Ed25519, ECDSA)
time:peak memory figures in the benchmarks (/usr/bin/time)
valgrind:the unit tests under memcheck in make check (scripts/valgrind.sh)
"
# Only for `make fuzz` (scripts/deps.sh --fuzz): libFuzzer comes with clang.
FUZZ_NEEDS="
clang:the compiler of the libFuzzer harnesses (make fuzz)
libclang-rt-dev:libFuzzer and the sanitizer runtimes for clang
"
if [ "${1:-}" = "--fuzz" ]; then
    NEEDS="$NEEDS$FUZZ_NEEDS"
fi

missing=""
IFS='
'
for line in $NEEDS; do
    pkg=${line%%:*}
    why=${line#*:}
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        echo "deps: installing $pkg ($why)"
        missing="$missing $pkg"
    fi
done
unset IFS

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages:$missing; run as root or install them with apt-get" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "deps: installed$missing"
