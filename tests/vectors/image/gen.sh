#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Signed firmware images made without libfota: headers packed with python3's
# struct module, digests by `openssl dgst -sha256`, signatures by
# `openssl pkeyutl`, key ids from `openssl pkey -pubout -outform DER`, trailers
# assembled in python (the layout is docs/image-format.md). The files are
# committed; this script says how they were made and re-checks them.
#
#   tests/vectors/image/gen.sh         regenerate every *.img, keyids.txt and
#                                      cases.txt, then check them
#   tests/vectors/image/gen.sh check   only re-check the committed files
#
# The keys are those of tests/vectors/keys (made by openssl, see ../gen.sh).
# Regenerating keeps every byte except the ECDSA signatures (random k).
#
# Files
#   keyids.txt   NAME HEX: the image key id of keys/NAME (SHA-256 of the DER
#                SubjectPublicKeyInfo, as openssl writes it)
#   *.img        images; each has exactly one defect, or none
#   cases.txt    one case a line:
#                  IMAGE TRUSTED THRESHOLD MIN_COUNTER HARDWARE EXPECT [# note]
#                TRUSTED: comma-separated key names the verifier trusts;
#                EXPECT: "ok" or the fota_strerror() name of the reason.
#                The verifier is given exact_len = the file's size and
#                max_len = 4294967295.
#
# Unless a case says otherwise an image has version 1.2.3 build 45, security
# counter 7, hardware id "fota-sim.board-1" and a 5000-byte payload:
#   x = 1; repeat: x = (x * 1103515245 + 12345) mod 2^32; emit x >> 24.
#
# Signing, exactly as a signer outside fota would do it:
#   openssl dgst -sha256 -binary header+payload > digest.bin
#   openssl pkeyutl -sign -rawin -inkey ed25519.key.pem -in digest.bin > sig   (64 bytes)
#   openssl pkeyutl -sign -inkey p256.key.pem -in digest.bin > sig             (DER)
#   key id: openssl pkey -in K -pubout -outform DER | openssl dgst -sha256 -binary

set -eu
cd "$(dirname "$0")"

MODE=${1:-gen}
case "$MODE" in
gen | check) ;;
*)
	echo "usage: $0 [check]" >&2
	exit 2
	;;
esac

OPENSSL=${OPENSSL:-openssl}
export OPENSSL
exec /usr/bin/python3 - "$MODE" <<'PYEOF'
import atexit
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

MODE = sys.argv[1]
OPENSSL = os.environ["OPENSSL"]
KEYS = "../keys"
TMP = tempfile.mkdtemp(prefix="fota-image-vectors-")
atexit.register(shutil.rmtree, TMP, True)

IMAGE_MAGIC = 0x41544F46
HEADER_LEN = 64
FORMAT = 1
TRAILER_MAGIC = 0x5446
T_SHA256, T_ED25519, T_ECDSA = 0x0001, 0x0010, 0x0011
KEY_NAMES = ["ed25519", "ed25519-b", "p256", "p256-b"]
HW = "fota-sim.board-1"


def die(msg):
    sys.exit("image/gen.sh: " + msg)


def openssl(*args, data=None):
    r = subprocess.run([OPENSSL, *args], input=data, capture_output=True)
    if r.returncode != 0:
        die("openssl %s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout


def tmpfile(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def key_id(name):
    der = openssl("pkey", "-in", "%s/%s.key.pem" % (KEYS, name), "-pubout", "-outform", "DER")
    return openssl("dgst", "-sha256", "-binary", data=der)


def sha256(data):
    return openssl("dgst", "-sha256", "-binary", "-", data=data)


def sign(name, digest):
    path = tmpfile("digest.bin", digest)
    key = "%s/%s.key.pem" % (KEYS, name)
    if name.startswith("ed25519"):
        return openssl("pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", path)
    return openssl("pkeyutl", "-sign", "-inkey", key, "-in", path)


def payload(n):
    x, out = 1, bytearray()
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append(x >> 24)
    return bytes(out)


def header(payload_len, hw=HW, magic=IMAGE_MAGIC, header_len=HEADER_LEN, fmt=FORMAT,
           flags=0, counter=7, version=(1, 2, 3), reserved=0, build=45, hw_raw=None):
    field = hw_raw if hw_raw is not None else hw.encode().ljust(32, b"\0")
    assert len(field) == 32
    return struct.pack("<IHHIIHHHHII32s", magic, header_len, fmt, flags, counter,
                       version[0], version[1], version[2], reserved, build,
                       payload_len, field)


def record(rtype, value, length=None):
    return struct.pack("<HH", rtype, len(value) if length is None else length) + value


def trailer(records, magic=TRAILER_MAGIC, total=None):
    body = b"".join(records)
    return struct.pack("<HH", magic, 4 + len(body) if total is None else total) + body


def sig_record(name, digest, rtype=None):
    if rtype is None:
        rtype = T_ED25519 if name.startswith("ed25519") else T_ECDSA
    return record(rtype, IDS[name] + sign(name, digest))


CASES = []


def case(image, trusted, threshold, expect, note, min_counter=0, hw=HW):
    CASES.append("%s %s %d %d %s %s # %s" % (image, ",".join(trusted), threshold,
                                              min_counter, hw, expect, note))


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)


def generate():
    for f in os.listdir("."):
        if f.endswith(".img"):
            os.remove(f)
    with open("keyids.txt", "w") as f:
        f.write("# generated by gen.sh: NAME HEX (openssl pkey -pubout -outform DER | sha256)\n")
        for n in KEY_NAMES:
            f.write("%s %s\n" % (n, IDS[n].hex()))

    pl = payload(5000)
    hd = header(len(pl))
    dg = sha256(hd + pl)
    sha = record(T_SHA256, dg)
    std = ["ed25519", "p256"]

    def img(name, records, h=hd, p=pl, **kw):
        write(name, h + p + trailer(records, **kw))

    # Valid images.
    img("ed25519.img", [sha, sig_record("ed25519", dg)])
    case("ed25519.img", std, 1, "ok", "one ed25519 signature")
    case("ed25519.img", ["ed25519"], 1, "ok", "only the signer trusted")
    case("ed25519.img", std, 1, "ok", "counter equal to the minimum", min_counter=7)
    case("ed25519.img", std, 1, "rollback", "counter 7 below the minimum 8", min_counter=8)
    case("ed25519.img", std, 1, "wrong-hardware", "another board", hw="fota-sim.board-2")
    case("ed25519.img", std, 1, "wrong-hardware", "a prefix of the id", hw="fota-sim.board")
    case("ed25519.img", std, 2, "threshold", "one signature, threshold 2")
    case("ed25519.img", ["p256"], 1, "threshold", "signer not trusted")
    img("p256.img", [sha, sig_record("p256", dg)])
    case("p256.img", std, 1, "ok", "one ECDSA P-256 signature (openssl pkeyutl, DER)")
    img("two-keys.img", [sha, sig_record("ed25519", dg), sig_record("p256", dg)])
    case("two-keys.img", std, 2, "ok", "two distinct trusted keys, threshold 2")
    case("two-keys.img", std + ["p256-b"], 3, "threshold", "two of three")
    img("ed25519-twice.img", [sha, sig_record("ed25519", dg), sig_record("ed25519", dg)])
    case("ed25519-twice.img", std, 1, "ok", "the same key twice")
    case("ed25519-twice.img", std, 2, "threshold", "the same key twice counts once")
    img("p256-twice.img", [sha, sig_record("p256", dg), sig_record("p256", dg)])
    case("p256-twice.img", std, 2, "threshold", "two different ECDSA signatures by one key count once")
    img("sig-first.img", [sig_record("ed25519", dg), sha])
    case("sig-first.img", std, 1, "ok", "records in any order")
    img("skip-unknown-key.img", [sha, sig_record("ed25519-b", dg), sig_record("p256", dg)])
    case("skip-unknown-key.img", std, 1, "ok", "a signature by an untrusted key is skipped")
    img("untrusted.img", [sha, sig_record("ed25519-b", dg)])
    case("untrusted.img", std, 1, "threshold", "signed only by a key not trusted")
    case("untrusted.img", ["ed25519-b"], 1, "ok", "the same image when its key is trusted")
    e_hd = header(0)
    e_dg = sha256(e_hd)
    img("empty-payload.img", [record(T_SHA256, e_dg), sig_record("p256", e_dg)], h=e_hd, p=b"")
    case("empty-payload.img", std, 1, "ok", "payload_len 0")
    hw31 = "A-Za-z0-9._" + "x" * 20
    h31 = header(len(pl), hw=hw31)
    d31 = sha256(h31 + pl)
    img("hwid-31.img", [record(T_SHA256, d31), sig_record("ed25519", d31)], h=h31)
    case("hwid-31.img", std, 1, "ok", "31-character hardware id, every kind of character", hw=hw31)
    case("hwid-31.img", std, 1, "wrong-hardware", "ids differ in the last character", hw=hw31[:-1] + "y")

    # Signatures.
    bad = bytearray(sign("ed25519", dg))
    bad[10] ^= 0x01
    img("bad-sig-ed25519.img", [sha, record(T_ED25519, IDS["ed25519"] + bytes(bad))])
    case("bad-sig-ed25519.img", std, 1, "bad-signature", "one bit flipped in the ed25519 signature")
    other = sha256(b"another image")
    img("bad-sig-p256.img", [sha, record(T_ECDSA, IDS["p256"] + sign("p256", other))])
    case("bad-sig-p256.img", std, 1, "bad-signature", "ECDSA signature of another digest")
    img("bad-sig-then-good.img", [sha, record(T_ED25519, IDS["ed25519"] + bytes(bad)),
                                  sig_record("p256", dg)])
    case("bad-sig-then-good.img", std, 1, "bad-signature", "a failing trusted signature is not outvoted")
    img("wrong-record-type.img", [sha, sig_record("ed25519", dg, rtype=T_ECDSA)])
    case("wrong-record-type.img", std, 1, "bad-signature", "ed25519 key id and signature in an ECDSA record")

    # Digest.
    flipped = bytearray(pl)
    flipped[4321] ^= 0x80
    img("payload-flipped.img", [sha, sig_record("ed25519", dg)], p=bytes(flipped))
    case("payload-flipped.img", std, 1, "hash-mismatch", "one payload bit flipped")
    img("digest-before-sig.img", [sig_record("ed25519", dg), sha], p=bytes(flipped))
    case("digest-before-sig.img", std, 1, "hash-mismatch", "digest reported before signatures, records reversed")
    img("dup-sha256.img", [sha, sha, sig_record("ed25519", dg)])
    case("dup-sha256.img", std, 1, "duplicate", "two SHA-256 records")
    img("no-sha256.img", [sig_record("ed25519", dg)])
    case("no-sha256.img", std, 1, "parse", "no SHA-256 record")

    # Trailer structure.
    img("unknown-record.img", [sha, record(0x0020, b"\0\0\0\0"), sig_record("ed25519", dg)])
    case("unknown-record.img", std, 1, "parse", "record type 0x0020")
    img("sha256-len.img", [record(T_SHA256, dg + b"\0"), sig_record("ed25519", dg)])
    case("sha256-len.img", std, 1, "parse", "SHA-256 record of 33 bytes")
    img("ed25519-len.img", [sha, record(T_ED25519, IDS["ed25519"] + sign("ed25519", dg)[:63])])
    case("ed25519-len.img", std, 1, "parse", "ed25519 record of 32 + 63 bytes")
    img("ecdsa-short.img", [sha, record(T_ECDSA, IDS["p256"] + b"\x30\x05\x02\x01\x01\x02\x00")])
    case("ecdsa-short.img", std, 1, "parse", "ECDSA record of 32 + 7 bytes")
    long_sig = (sign("p256", dg) + b"\0" * 73)[:73]
    img("ecdsa-long.img", [sha, record(T_ECDSA, IDS["p256"] + long_sig)])
    case("ecdsa-long.img", std, 1, "parse", "ECDSA record of 32 + 73 bytes")
    good_sig = sig_record("ed25519", dg)
    img("record-past-end.img", [sha, good_sig[:2] + struct.pack("<H", 97) + good_sig[4:]])
    case("record-past-end.img", std, 1, "length", "record length one past the trailer")
    img("record-head-cut.img", [sha, good_sig, b"\x01\x00"])
    case("record-head-cut.img", std, 1, "length", "two bytes left: half a record head")
    img("trailer-too-big.img", [sha] + [good_sig] * 10)
    case("trailer-too-big.img", std, 1, "length", "total_len 1040 over the cap 1024")
    at_cap = [sha] + [good_sig] * 9 + [record(T_ECDSA, IDS["p256-b"] + b"\0" * 48)]
    assert len(trailer(at_cap)) == 1024
    img("trailer-at-cap.img", at_cap)
    case("trailer-at-cap.img", std, 1, "ok", "total_len exactly 1024; a garbage record by an untrusted key")
    img("trailer-magic.img", [sha, good_sig], magic=0x5447)
    case("trailer-magic.img", std, 1, "parse", "trailer magic wrong")
    img("trailer-short.img", [record(T_SHA256, dg[:31])], total=39)
    case("trailer-short.img", std, 1, "length", "total_len 39: no room for the SHA-256 record")
    img("trailing-data.img", [sha, good_sig])
    with open("trailing-data.img", "ab") as f:
        f.write(b"\0" * 16)
    case("trailing-data.img", std, 1, "length", "16 bytes after the trailer")
    whole = hd + pl + trailer([sha, good_sig])
    write("truncated.img", whole[:-10])
    case("truncated.img", std, 1, "length", "last 10 bytes missing")
    write("truncated-payload.img", whole[:3000])
    case("truncated-payload.img", std, 1, "length", "cut inside the payload")

    # Header: each image is correctly signed over its defective header.
    def bad_header(name, note, expect="parse", **kw):
        h = header(len(pl), **kw)
        d = sha256(h + pl)
        img(name, [record(T_SHA256, d), sig_record("ed25519", d)], h=h)
        case(name, std, 1, expect, note)

    bad_header("magic.img", "image magic wrong", magic=0x41544F47)
    bad_header("header-len.img", "header_len 65", header_len=65)
    bad_header("format.img", "format 2", fmt=2)
    bad_header("flags.img", "flags 1", flags=1)
    bad_header("reserved.img", "reserved 1", reserved=1)
    bad_header("hwid-char.img", "hardware id with a space", hw="fota sim")
    bad_header("hwid-padding.img", "a byte after the hardware id's NUL",
               hw_raw=HW.encode() + b"\0" * 15 + b"x")
    bad_header("hwid-empty.img", "empty hardware id", hw_raw=b"\0" * 32)
    bad_header("hwid-32.img", "32-character hardware id, no NUL", hw_raw=b"a" * 32)
    bad_header("hwid-other.img", "signed for another board", expect="wrong-hardware",
               hw="fota-sim.board-2")
    bad_header("counter-low.img", "security counter 3, minimum 0",
               expect="ok", counter=3)
    CASES.append("counter-low.img ed25519,p256 1 4 %s rollback # counter 3 below 4" % HW)
    huge = header(0xFFFFFFF0)
    img("payload-len-huge.img", [record(T_SHA256, dg), sig_record("ed25519", dg)], h=huge)
    case("payload-len-huge.img", std, 1, "length", "payload_len 0xfffffff0")
    off = header(len(pl) - 1)
    d_off = sha256(off + pl[:-1])
    img("payload-len-short.img", [record(T_SHA256, d_off), sig_record("ed25519", d_off)], h=off, p=pl)
    case("payload-len-short.img", std, 1, "parse", "payload_len one short: the trailer magic is not there")

    with open("cases.txt", "w") as f:
        f.write("# generated by gen.sh: IMAGE TRUSTED THRESHOLD MIN_COUNTER HARDWARE EXPECT # note\n")
        f.write("# exact_len = size of IMAGE, max_len = 4294967295\n")
        for c in CASES:
            f.write(c + "\n")


# ---- check: digests and signatures of every image by openssl and by
# python-cryptography, independently of the values gen wrote --------------

def public_key(name):
    with open("%s/%s.pub.pem" % (KEYS, name), "rb") as f:
        return serialization.load_pem_public_key(f.read())


def py_verify(name, digest, sig):
    key = public_key(name)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, digest)
        else:
            key.verify(sig, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return True
    except InvalidSignature:
        return False


def ossl_verify(name, digest, sig):
    d = tmpfile("d.bin", digest)
    s = tmpfile("s.bin", sig)
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", "%s/%s.pub.pem" % (KEYS, name),
            "-in", d, "-sigfile", s]
    if name.startswith("ed25519"):
        args.insert(2, "-rawin")
    r = subprocess.run([OPENSSL, *args], capture_output=True)
    return r.returncode == 0


def parse(data):
    (magic, hlen, fmt, flags, counter, _ma, _mi, _pa, _res, _b, plen, hw) = \
        struct.unpack("<IHHIIHHHHII32s", data[:64])
    end = 64 + plen
    if end + 4 > len(data):
        return None
    tmagic, total = struct.unpack("<HH", data[end:end + 4])
    recs, off = [], end + 4
    while off + 4 <= min(end + total, len(data)):
        t, n = struct.unpack("<HH", data[off:off + 4])
        recs.append((t, data[off + 4:off + 4 + n]))
        off += 4 + n
    return data[:end], tmagic, total, recs


def check():
    ids = {}
    with open("keyids.txt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            n, h = line.split()
            ids[n] = h
    for n in KEY_NAMES:
        if ids.get(n) != IDS[n].hex():
            die("keyids.txt: %s differs from openssl's" % n)
    by_id = {IDS[n]: n for n in KEY_NAMES}
    n_cases = 0
    with open("cases.txt") as f:
        lines = [l for l in f if l.strip() and not l.startswith("#")]
    for line in lines:
        fields = line.split("#")[0].split()
        if len(fields) != 6:
            die("cases.txt: bad line: " + line)
        image, trusted, _thr, _minc, _hw, expect = fields
        if not os.path.exists(image):
            die("cases.txt names a missing image " + image)
        n_cases += 1
        if expect != "ok":
            continue
        with open(image, "rb") as fi:
            data = fi.read()
        signed, _tm, _tot, recs = parse(data)
        digest = sha256(signed)
        shas = [v for t, v in recs if t == T_SHA256]
        if shas != [digest]:
            die("%s: SHA-256 record is not openssl's digest" % image)
        good = set()
        for t, v in recs:
            name = by_id.get(v[:32])
            if t == T_SHA256 or name is None:
                continue
            a, b = ossl_verify(name, digest, v[32:]), py_verify(name, digest, v[32:])
            if a != b:
                die("%s: openssl and python-cryptography disagree on %s" % (image, name))
            if a and name in trusted.split(","):
                good.add(name)
        if not good:
            die("%s: expected ok but no trusted signature verifies" % image)
    for image in sorted(f for f in os.listdir(".") if f.endswith(".img")):
        if not any(l.split()[0] == image for l in lines):
            die("%s is in no case" % image)
    print("image vectors: %d cases, %d images, checked with openssl and python-cryptography"
          % (n_cases, len([f for f in os.listdir(".") if f.endswith(".img")])))


IDS = {n: key_id(n) for n in KEY_NAMES}
if MODE == "gen":
    generate()
check()
PYEOF
