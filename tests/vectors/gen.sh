#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Test vectors for libfota made by implementations other than our own: the
# `openssl` command (keys, signatures, digests) and /usr/bin/python3 with
# securesystemslib and python3-cryptography (canonical JSON, TUF key ids, a
# signed TUF envelope). The generated files are committed; this script says
# how they were made and re-checks them.
#
#   tests/vectors/gen.sh          regenerate keys/, msg/, signatures.txt,
#                                 digests.txt, tuf_keys.json, tuf_envelope.json,
#                                 then check everything
#   tests/vectors/gen.sh check    only re-check the committed files (fails on
#                                 the first disagreement)
#
# Regenerating makes new random keys, so every signature and key id changes.
#
# Files
#   keys/NAME.key.pem        private key, PKCS#8 PEM (openssl genpkey)
#   keys/NAME.pub.pem        SubjectPublicKeyInfo PEM (openssl pkey -pubout)
#   keys/NAME.pub.der.hex    hex of the SubjectPublicKeyInfo DER
#   keys/NAME.pub.raw.hex    ed25519 only: hex of the raw 32-byte public key
#                            (the last 32 bytes of the DER)
#   keys/p256.trad.pem, keys/rsa2048.trad.pem
#                            the same keys in the traditional "EC PRIVATE KEY"
#                            / "RSA PRIVATE KEY" forms (openssl pkey -traditional)
#   keys/p256.enc.pem        p256 as encrypted PKCS#8 (password "fota"); a
#                            loader that takes no password must refuse it
#   NAMEs: ed25519 ed25519-b p256 p256-b rsa2048 rsa2048-b rsa3072 (good keys),
#          rsa1024 p384 secp256k1 (keys libfota must refuse)
#   msg/*                    messages that get signed or hashed
#
#   signatures.txt   one vector a line:  KEY MSG ok|bad SIGHEX [# note]
#                    KEY names keys/KEY.*, MSG names msg/MSG, SIGHEX is "-" for
#                    an empty signature. TUF scheme by KEY prefix: ed25519* ->
#                    ed25519, p256* -> ecdsa-sha2-nistp256, rsa* ->
#                    rsassa-pss-sha256. "ok" lines verify under openssl and
#                    python-cryptography, "bad" lines fail under both.
#   digests.txt      ALG MSG HEX; MSG "@lcg1m" is the 1 MiB message below
#   canonical.txt    WRITTEN BY HAND, only checked here. Blocks of
#                      in <JSON text, rest of the line>
#                      out <expected canonical bytes, rest of the line>
#                    or outhex <hex of the expected bytes> (used when the
#                    output holds control bytes), or "err unsupported" (the
#                    encoder must refuse the value: it holds a real number).
#                    '#' lines and blank lines are ignored.
#   time.txt         WRITTEN BY HAND, only checked here.
#                      ok SECONDS STRING   (and STRING is the canonical form)
#                      bad STRING          (STRING is the rest of the line)
#   tuf_keys.json    {"keyids": {NAME: KEYID}, "keys": {KEYID: KEYOBJ}};
#                    KEYID = sha256(securesystemslib encode_canonical(KEYOBJ)).
#                    NAMEs: ed25519, p256, rsa2048 (keyobj of keys/NAME),
#                    p256-alt (same key with keytype "ecdsa-sha2-nistp256"),
#                    ed25519-legacy (the object securesystemslib's
#                    format_keyval_to_metadata makes, with keyid_hash_algorithms).
#   tuf_envelope.json  targets metadata whose "signed" is written with keys
#                    out of order and non-ASCII as \u escapes, signed by
#                    securesystemslib (SSlibSigner) with ed25519, p256 (under
#                    both its key ids) and rsa2048.
#
# The 1 MiB message "@lcg1m": x = 1; repeat 1048576 times:
#   x = (x * 1103515245 + 12345) mod 2^32; emit the byte x >> 24.

set -eu
cd "$(dirname "$0")"

PY=/usr/bin/python3
OPENSSL=${OPENSSL:-openssl}
MODE=${1:-gen}

case "$MODE" in
gen | check) ;;
*)
	echo "usage: $0 [check]" >&2
	exit 2
	;;
esac

hex() {
	od -An -v -tx1 | tr -d ' \n'
}

if [ "$MODE" = gen ]; then
	rm -rf keys msg
	mkdir keys msg

	genkey() {
		name=$1
		shift
		"$OPENSSL" genpkey "$@" -out "keys/$name.key.pem" 2>/dev/null
		"$OPENSSL" pkey -in "keys/$name.key.pem" -pubout -out "keys/$name.pub.pem"
		"$OPENSSL" pkey -in "keys/$name.key.pem" -pubout -outform DER | hex >"keys/$name.pub.der.hex"
		echo >>"keys/$name.pub.der.hex"
	}
	genkey ed25519 -algorithm ed25519
	genkey ed25519-b -algorithm ed25519
	genkey p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
	genkey p256-b -algorithm EC -pkeyopt ec_paramgen_curve:P-256
	genkey rsa2048 -algorithm RSA -pkeyopt rsa_keygen_bits:2048
	genkey rsa2048-b -algorithm RSA -pkeyopt rsa_keygen_bits:2048
	genkey rsa3072 -algorithm RSA -pkeyopt rsa_keygen_bits:3072
	genkey rsa1024 -algorithm RSA -pkeyopt rsa_keygen_bits:1024
	genkey p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
	genkey secp256k1 -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1
	for k in ed25519 ed25519-b; do
		"$OPENSSL" pkey -in "keys/$k.key.pem" -pubout -outform DER | tail -c 32 | hex >"keys/$k.pub.raw.hex"
		echo >>"keys/$k.pub.raw.hex"
	done
	"$OPENSSL" pkey -in keys/p256.key.pem -traditional -out keys/p256.trad.pem
	"$OPENSSL" pkey -in keys/rsa2048.key.pem -traditional -out keys/rsa2048.trad.pem
	"$OPENSSL" pkcs8 -topk8 -in keys/p256.key.pem -v2 aes-256-cbc -passout pass:fota -out keys/p256.enc.pem

	printf '' >msg/empty.bin
	printf 'abc' >msg/abc.txt
	printf 'abcdbcdecdefdefgefghfghighijhijkijkljklmjklmnklmnolmnopmnopqnopq' >msg/nist448.txt
	"$PY" -c 'import sys; sys.stdout.buffer.write(bytes(range(256)))' >msg/bytes.bin
	"$PY" -c '
import sys
from securesystemslib.formats import encode_canonical
doc = {"_type": "timestamp", "version": 7, "Name": "gr\u00fc\u00dfe \"q\" \\ \u0001", "a": [1, -2, None, True]}
sys.stdout.buffer.write(encode_canonical(doc).encode("utf-8"))' >msg/canonical.json

	# Signatures made by openssl (ed25519 over the empty message is made by
	# python-cryptography: openssl 3.0 pkeyutl refuses an empty -rawin input).
	{
		echo "# generated by gen.sh: KEY MSG ok|bad SIGHEX [# note]"
		for k in ed25519 ed25519-b; do
			for m in abc.txt bytes.bin canonical.json; do
				echo "$k $m ok $("$OPENSSL" pkeyutl -sign -rawin -inkey "keys/$k.key.pem" -in "msg/$m" | hex)"
			done
		done
		for k in p256 p256-b; do
			for m in empty.bin abc.txt bytes.bin canonical.json; do
				echo "$k $m ok $("$OPENSSL" dgst -sha256 -sign "keys/$k.key.pem" "msg/$m" | hex)"
			done
		done
		for k in rsa2048 rsa3072 rsa2048-b; do
			for salt in 0 20 32 64 digest max auto; do
				for m in abc.txt canonical.json; do
					sig=$("$OPENSSL" dgst -sha256 -sign "keys/$k.key.pem" \
						-sigopt rsa_padding_mode:pss -sigopt "rsa_pss_saltlen:$salt" "msg/$m" | hex)
					echo "$k $m ok $sig # pss salt $salt"
				done
			done
			echo "$k empty.bin ok $("$OPENSSL" dgst -sha256 -sign "keys/$k.key.pem" \
				-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest msg/empty.bin | hex) # pss salt digest"
		done
		# RSA signatures in the wrong scheme: each must be refused.
		echo "rsa2048 abc.txt bad $("$OPENSSL" dgst -sha256 -sign keys/rsa2048.key.pem msg/abc.txt | hex) # pkcs1 v1.5, not pss"
		echo "rsa2048 abc.txt bad $("$OPENSSL" dgst -sha256 -sign keys/rsa2048.key.pem \
			-sigopt rsa_padding_mode:pss -sigopt rsa_mgf1_md:sha1 msg/abc.txt | hex) # pss with mgf1-sha1"
		echo "rsa2048 abc.txt bad $("$OPENSSL" dgst -sha512 -sign keys/rsa2048.key.pem \
			-sigopt rsa_padding_mode:pss msg/abc.txt | hex) # pss over sha512"
		echo "rsa3072 abc.txt bad $("$OPENSSL" dgst -sha256 -sign keys/rsa3072.key.pem msg/abc.txt | hex) # pkcs1 v1.5, not pss"
	} >signatures.txt.base

	{
		echo "# generated by gen.sh (openssl dgst): ALG MSG HEX"
		for alg in sha256 sha512; do
			for m in empty.bin abc.txt nist448.txt bytes.bin canonical.json; do
				echo "$alg $m $("$OPENSSL" dgst "-$alg" -binary "msg/$m" | hex)"
			done
		done
	} >digests.txt
fi

export OPENSSL
exec "$PY" - "$MODE" <<'PYEOF'
# The python half: derived negative vectors, the 1 MiB digests, TUF key ids
# and the securesystemslib-signed envelope (gen); every cross-check (both).
import calendar
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)
from securesystemslib import exceptions as sslib_exceptions
from securesystemslib import keys as sslib_keys
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import Signature, SSlibKey, SSlibSigner

MODE = sys.argv[1]
OPENSSL = os.environ.get("OPENSSL", "openssl")
ED25519_L = 2**252 + 27742317777372353535851937790883648493
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
TMP = tempfile.mkdtemp(prefix="fota-vectors-")


def die(msg):
    sys.exit("gen.sh: " + msg)


def openssl(*args, data=None):
    return subprocess.run([OPENSSL, *args], input=data, capture_output=True, check=True).stdout


def openssl_ok(*args):
    return subprocess.run([OPENSSL, *args], capture_output=True).returncode == 0


def read(path):
    with open(path, "rb") as f:
        return f.read()


def lcg1m():
    x, out = 1, bytearray(1 << 20)
    for i in range(len(out)):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = x >> 24
    return bytes(out)


def tmpfile(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def scheme_of(key):
    if key.startswith("ed25519"):
        return "ed25519"
    if key.startswith("p256"):
        return "ecdsa"
    return "rsa"


# ---- signatures -----------------------------------------------------------

def derive_negative(lines):
    """Negative vectors made from the openssl ones: another message,
    truncated, another key, extended, bit-flipped, non-canonical forms."""
    ok = {}
    for line in lines:
        f = line.split()
        if len(f) >= 4 and f[2] == "ok" and (f[0], f[1]) not in ok:
            ok[(f[0], f[1])] = bytes.fromhex(f[3])
    out = []
    for key, other in (("ed25519", "ed25519-b"), ("p256", "p256-b"),
                       ("rsa2048", "rsa2048-b"), ("rsa3072", "rsa2048")):
        sig = ok[(key, "abc.txt")]
        out.append(f"{key} bytes.bin bad {ok[(key, 'canonical.json')].hex()} # signature over another message")
        out.append(f"{key} abc.txt bad {sig[:-1].hex()} # truncated by one byte")
        out.append(f"{key} abc.txt bad {sig[:len(sig) // 2].hex()} # truncated to half")
        out.append(f"{key} abc.txt bad {ok[(other, 'abc.txt')].hex()} # made by {other}")
        longer = sig + bytes(1)
        out.append(f"{key} abc.txt bad {longer.hex()} # one byte appended")
        flipped = bytearray(sig)
        flipped[len(sig) // 2] ^= 0x01
        out.append(f"{key} abc.txt bad {bytes(flipped).hex()} # one bit flipped")
        out.append(f"{key} abc.txt bad - # empty signature")
    # ed25519: S + L is the same point equation but not canonical (RFC 8032
    # requires S < L).
    sig = ok[("ed25519", "abc.txt")]
    s = int.from_bytes(sig[32:], "little") + ED25519_L
    out.append(f"ed25519 abc.txt bad {(sig[:32] + s.to_bytes(32, 'little')).hex()} # S + L, non-canonical")
    out.append(f"ed25519 abc.txt bad {('00' * 64)} # all zero")
    # ed25519 over the empty message (python-cryptography; openssl cannot).
    for k in ("ed25519", "ed25519-b"):
        priv = serialization.load_pem_private_key(read(f"keys/{k}.key.pem"), None)
        out.append(f"{k} empty.bin ok {priv.sign(b'').hex()} # made by python-cryptography")
    # ecdsa: r||s instead of DER, DER with a trailing byte, and the high-S
    # twin (n - s), which is valid ECDSA and accepted by openssl.
    sig = ok[("p256", "abc.txt")]
    r, s = decode_dss_signature(sig)
    out.append(f"p256 abc.txt bad {(r.to_bytes(32, 'big') + s.to_bytes(32, 'big')).hex()} # raw r||s, not DER")
    out.append(f"p256 abc.txt bad {encode_dss_signature(r, (s + 1) % P256_N).hex()} # s + 1")
    out.append(f"p256 abc.txt ok {encode_dss_signature(r, P256_N - s).hex()} # high-S twin (n - s), valid ECDSA")
    out.append(f"p256 abc.txt bad {encode_dss_signature(s, r).hex()} # r and s swapped")
    return out


def verify_openssl(key, msg, sig):
    # pkeyutl, not dgst -verify: dgst reads only as many signature bytes as
    # the key's maximum size and would accept a signature with bytes appended.
    pub = f"keys/{key}.pub.pem"
    sigf = tmpfile("sig", sig)
    if scheme_of(key) == "ed25519":
        if msg == "empty.bin":
            return None  # openssl 3.0 pkeyutl cannot take an empty -rawin input
        return openssl_ok("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
                          "-in", f"msg/{msg}", "-sigfile", sigf)
    digest = tmpfile("digest", hashlib.sha256(read(f"msg/{msg}")).digest())
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", digest, "-sigfile", sigf,
            "-pkeyopt", "digest:sha256"]
    if scheme_of(key) == "rsa":
        args += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:auto",
                 "-pkeyopt", "rsa_mgf1_md:sha256"]
    return openssl_ok(*args)


def verify_cryptography(key, msg, sig):
    pub = serialization.load_pem_public_key(read(f"keys/{key}.pub.pem"))
    data = read(f"msg/{msg}")
    try:
        if scheme_of(key) == "ed25519":
            pub.verify(sig, data)
        elif scheme_of(key) == "ecdsa":
            pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
        else:
            pub.verify(sig, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                              salt_length=padding.PSS.AUTO), hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


def check_signatures():
    n = 0
    with open("signatures.txt") as f:
        for lineno, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            key, msg, want, sighex = line.split()[:4]
            sig = b"" if sighex == "-" else bytes.fromhex(sighex)
            want_ok = want == "ok"
            a = verify_openssl(key, msg, sig)
            b = verify_cryptography(key, msg, sig)
            if (a is not None and a != want_ok) or b != want_ok:
                die(f"signatures.txt:{lineno}: expected {want}, openssl={a} cryptography={b}")
            n += 1
    print(f"signatures.txt: {n} vectors agree with openssl and python-cryptography")


# ---- keys -----------------------------------------------------------------

def check_keys():
    for k in ("ed25519", "ed25519-b", "p256", "p256-b", "rsa2048", "rsa2048-b",
              "rsa3072", "rsa1024", "p384", "secp256k1"):
        pub = openssl("pkey", "-in", f"keys/{k}.key.pem", "-pubout")
        if pub != read(f"keys/{k}.pub.pem"):
            die(f"keys/{k}.pub.pem is not the public half of keys/{k}.key.pem")
        der = openssl("pkey", "-in", f"keys/{k}.key.pem", "-pubout", "-outform", "DER")
        if der.hex() != read(f"keys/{k}.pub.der.hex").decode().strip():
            die(f"keys/{k}.pub.der.hex disagrees with openssl")
        if k.startswith("ed25519"):
            if der[-32:].hex() != read(f"keys/{k}.pub.raw.hex").decode().strip():
                die(f"keys/{k}.pub.raw.hex disagrees with openssl")
    for k, trad in (("p256", "EC PRIVATE KEY"), ("rsa2048", "RSA PRIVATE KEY")):
        body = read(f"keys/{k}.trad.pem")
        if f"-----BEGIN {trad}-----".encode() not in body:
            die(f"keys/{k}.trad.pem is not in the traditional form")
        if openssl("pkey", "-in", f"keys/{k}.trad.pem", "-pubout") != read(f"keys/{k}.pub.pem"):
            die(f"keys/{k}.trad.pem is not keys/{k}.key.pem")
    if b"ENCRYPTED PRIVATE KEY" not in read("keys/p256.enc.pem"):
        die("keys/p256.enc.pem is not encrypted")
    print("keys/: public halves, DER and raw forms agree with openssl")


# ---- digests --------------------------------------------------------------

def check_digests():
    big = tmpfile("lcg1m", lcg1m())
    n = 0
    with open("digests.txt") as f:
        for lineno, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            alg, msg, want = line.split()
            path = big if msg == "@lcg1m" else f"msg/{msg}"
            a = openssl("dgst", f"-{alg}", "-binary", path).hex()
            b = hashlib.new(alg, read(path)).hexdigest()
            if a != want or b != want:
                die(f"digests.txt:{lineno}: openssl {a} hashlib {b}")
            n += 1
    print(f"digests.txt: {n} digests agree with openssl and hashlib")


def gen_big_digests():
    big = tmpfile("lcg1m", lcg1m())
    with open("digests.txt", "a") as f:
        for alg in ("sha256", "sha512"):
            f.write(f"{alg} @lcg1m {openssl('dgst', '-' + alg, '-binary', big).hex()}\n")


# ---- canonical JSON ---------------------------------------------------------

def no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError("duplicate key " + k)
        seen[k] = v
    return seen


def check_canonical():
    n = 0
    text = read("canonical.txt").split(b"\n")
    pending = None
    for lineno, raw in enumerate(text, 1):
        if not raw or raw.startswith(b"#"):
            continue
        word, _, rest = raw.partition(b" ")
        if word == b"in":
            if pending is not None:
                die(f"canonical.txt:{lineno}: 'in' without an expected result before it")
            pending = (lineno, rest)
            continue
        if pending is None:
            die(f"canonical.txt:{lineno}: '{word.decode()}' without 'in'")
        inline, src = pending
        pending = None
        value = json.loads(src.decode("utf-8"), object_pairs_hook=no_duplicates)
        if not isinstance(value, (dict, list)):
            die(f"canonical.txt:{inline}: top level must be an object or an array")
        if word == b"err":
            if rest != b"unsupported":
                die(f"canonical.txt:{lineno}: unknown error '{rest.decode()}'")
            try:
                encode_canonical(value)
            except sslib_exceptions.FormatError:
                n += 1
                continue
            die(f"canonical.txt:{inline}: securesystemslib encodes what we say is refused")
        if word == b"out":
            want = rest
        elif word == b"outhex":
            want = bytes.fromhex(rest.decode())
        else:
            die(f"canonical.txt:{lineno}: unknown line '{word.decode()}'")
        got = encode_canonical(value).encode("utf-8")
        if got != want:
            die(f"canonical.txt:{inline}: securesystemslib says {got!r}, file says {want!r}")
        n += 1
    if pending is not None:
        die("canonical.txt: last 'in' has no expected result")
    print(f"canonical.txt: {n} vectors agree with securesystemslib encode_canonical")


# ---- time -----------------------------------------------------------------

TIME_RE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")


def python_time(s):
    if not TIME_RE.match(s):
        return None
    try:
        dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return calendar.timegm(dt.timetuple())


def check_time():
    n = 0
    with open("time.txt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            if word == "ok":
                secs, _, s = rest.partition(" ")
                t = python_time(s)
                if t != int(secs):
                    die(f"time.txt:{lineno}: python says {t}")
                back = datetime.datetime.fromtimestamp(int(secs), datetime.timezone.utc)
                if back.strftime("%Y-%m-%dT%H:%M:%SZ") != s:
                    die(f"time.txt:{lineno}: does not format back to {s}")
            elif word == "bad":
                if python_time(rest) is not None:
                    die(f"time.txt:{lineno}: python accepts {rest!r}")
            else:
                die(f"time.txt:{lineno}: unknown line")
            n += 1
    print(f"time.txt: {n} vectors agree with python datetime")


# ---- TUF key ids and the signed envelope ------------------------------------

def keyid_of(obj):
    return hashlib.sha256(encode_canonical(obj).encode("utf-8")).hexdigest()


def tuf_key_objects():
    ed_pub = read("keys/ed25519.pub.raw.hex").decode().strip()
    p256_pub = read("keys/p256.pub.pem").decode()
    rsa_pub = read("keys/rsa2048.pub.pem").decode()
    return {
        "ed25519": {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": ed_pub}},
        "p256": {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": p256_pub}},
        "p256-alt": {"keytype": "ecdsa-sha2-nistp256", "scheme": "ecdsa-sha2-nistp256",
                     "keyval": {"public": p256_pub}},
        "rsa2048": {"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": rsa_pub}},
        "ed25519-legacy": sslib_keys.format_keyval_to_metadata("ed25519", "ed25519", {"public": ed_pub}),
    }


def gen_tuf():
    objs = tuf_key_objects()
    keyids = {name: keyid_of(obj) for name, obj in objs.items()}
    with open("tuf_keys.json", "w") as f:
        json.dump({"keyids": keyids, "keys": {keyids[n]: objs[n] for n in objs}}, f, indent=2)
        f.write("\n")

    big = lcg1m()
    # Deliberately not in canonical order, with escapes that canonical form
    # writes raw: the verifier must canonicalize "signed" itself.
    signed = {
        "version": 3,
        "spec_version": "1.0.31",
        "_type": "targets",
        "expires": "2030-01-01T00:00:00Z",
        "targets": {
            "fw/app-1.2.3.bin": {
                "length": len(big),
                "hashes": {"sha512": hashlib.sha512(big).hexdigest(),
                           "sha256": hashlib.sha256(big).hexdigest()},
                "custom": {"zeta": True, "Zeta": False, "alpha": None,
                           "gr\u00fc\u00dfe": "na\u00efve \"quoted\" back\\slash / \U0001F600",
                           "ctl": "tab\there\nnewline\u0001\u007f",
                           "big": 9007199254740993, "neg": -42, "min": -9223372036854775808,
                           "empty": {}, "list": [[], {}, [0]]},
            },
            "a/b c.txt": {"length": 0, "hashes": {"sha256": hashlib.sha256(b"").hexdigest()}},
        },
    }
    payload = encode_canonical(signed).encode("utf-8")
    ed_seed = openssl("pkey", "-in", "keys/ed25519.key.pem", "-outform", "DER")[-32:].hex()
    private = {
        "ed25519": ed_seed,
        "p256": read("keys/p256.key.pem").decode(),
        "p256-alt": read("keys/p256.key.pem").decode(),
        "rsa2048": read("keys/rsa2048.key.pem").decode(),
    }
    signatures = []
    for name in ("ed25519", "p256", "rsa2048", "p256-alt"):
        obj = objs[name]
        keydict = {"keyid": keyids[name], "keytype": obj["keytype"], "scheme": obj["scheme"],
                   "keyval": {"public": obj["keyval"]["public"], "private": private[name]}}
        sig = SSlibSigner(keydict).sign(payload)
        signatures.append({"keyid": keyids[name], "sig": sig.signature})
    with open("tuf_envelope.json", "w") as f:
        json.dump({"signed": signed, "signatures": signatures}, f, indent=1, ensure_ascii=True)
        f.write("\n")


def check_tuf():
    objs = tuf_key_objects()
    data = json.loads(read("tuf_keys.json"))
    for name, obj in objs.items():
        kid = keyid_of(obj)
        if data["keyids"][name] != kid or data["keys"][kid] != obj:
            die(f"tuf_keys.json: {name} disagrees with securesystemslib")
    env = json.loads(read("tuf_envelope.json"))
    payload = encode_canonical(env["signed"]).encode("utf-8")
    read("tuf_envelope.json").decode("ascii")  # written with \u escapes only
    names = {v: k for k, v in data["keyids"].items()}
    for s in env["signatures"]:
        obj = data["keys"][s["keyid"]]
        key = SSlibKey(s["keyid"], obj["keytype"], obj["scheme"], obj["keyval"])
        key.verify_signature(Signature(s["keyid"], s["sig"]), payload)
        print(f"tuf_envelope.json: signature by {names[s['keyid']]} verifies under securesystemslib")
    print("tuf_keys.json: key ids agree with securesystemslib encode_canonical + sha256")


try:
    if MODE == "gen":
        base = read("signatures.txt.base").decode().splitlines()
        os.remove("signatures.txt.base")
        with open("signatures.txt", "w") as f:
            f.write("\n".join(base + derive_negative(base)) + "\n")
        gen_big_digests()
        gen_tuf()
    check_keys()
    check_signatures()
    check_digests()
    check_canonical()
    check_time()
    check_tuf()
finally:
    for name in os.listdir(TMP):
        os.remove(os.path.join(TMP, name))
    os.rmdir(TMP)
PYEOF
