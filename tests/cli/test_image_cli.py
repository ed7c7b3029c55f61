# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of `fota image sign|verify|inspect` (docs/fota.md,
docs/image-format.md).

Checked against code that is not ours: images fota signs are taken apart
with python's struct module, hashed with hashlib and their signatures
verified with python3-cryptography; images made with the `openssl` command
(tests/vectors/image, every case of cases.txt) go through `fota image verify`.

Run: FOTA_BIN=build/bin/fota /usr/bin/python3 -m unittest -v test_image_cli
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

HERE = os.path.dirname(os.path.abspath(__file__))
FOTA = os.environ.get("FOTA_BIN") or os.path.join(HERE, "..", "..", "build", "bin", "fota")
VECTORS = os.path.join(HERE, "..", "vectors")
IMAGE_VECTORS = os.path.join(VECTORS, "image")

IMAGE_MAGIC = 0x41544F46
TRAILER_MAGIC = 0x5446
T_SHA256, T_ED25519, T_ECDSA = 0x0001, 0x0010, 0x0011


def parse_image(data):
    """Take an image apart with struct only: (fields, signed bytes, records)."""
    (magic, header_len, fmt, flags, counter, major, minor, patch, reserved, build,
     payload_len, hw) = struct.unpack("<IHHIIHHHHII32s", data[:64])
    end = 64 + payload_len
    tmagic, total = struct.unpack("<HH", data[end:end + 4])
    records, off = [], end + 4
    while off < end + total:
        rtype, rlen = struct.unpack("<HH", data[off:off + 4])
        records.append((rtype, data[off + 4:off + 4 + rlen]))
        off += 4 + rlen
    fields = dict(magic=magic, header_len=header_len, format=fmt, flags=flags,
                  security_counter=counter, version=(major, minor, patch), reserved=reserved,
                  build=build, payload_len=payload_len, hardware_id=hw.rstrip(b"\0").decode(),
                  hw_raw=hw, trailer_magic=tmagic, total_len=total)
    assert off == end + total == len(data), "records do not fill the trailer"
    return fields, data[:end], records


def public_of_pem(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None).public_key()


def image_key_id(pub):
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def signature_ok(pub, digest, sig):
    try:
        if isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(sig, digest)
        else:
            pub.verify(sig, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return True
    except Exception:  # InvalidSignature, or a malformed DER
        return False


def lcg_bytes(n, seed=1):
    x, out = seed, bytearray()
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append(x >> 24)
    return bytes(out)


class ImageCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fota-image-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ----------------------------------------------------------

    def run_fota(self, *args, code=0):
        p = subprocess.run([FOTA] + list(args), capture_output=True, text=True,
                           cwd=self.tmp, timeout=300)
        if code is not None and p.returncode != code:
            self.fail("fota %s: exit %d, wanted %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), p.returncode, code, p.stdout, p.stderr))
        return p

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def key(self, name, kind="ed25519"):
        """A key made by `fota key new`: (private PEM path, .pub path)."""
        out = self.path(name + ".key")
        self.run_fota("key", "new", "--type", kind, "--out", out)
        return out, out + ".pub"

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def sign(self, payload, keys, version="1.2.3+45", counter="7", hw="acme-gw.rev2",
             extra=(), code=0):
        src = self.write("payload.bin", payload)
        args = ["image", "sign", src, self.path("image.bin")]
        for k in keys:
            args += ["--key", k]
        args += ["--version", version, "--security-counter", counter, "--hardware", hw]
        return self.run_fota(*args, *extra, code=code)

    def verify(self, image, pubs, *extra, code=0):
        args = ["image", "verify", image]
        for k in pubs:
            args += ["--key", k]
        return self.run_fota(*args, *extra, code=code)

    # -- sign, checked independently ----------------------------------------

    def test_signed_image_checks_out_independently(self):
        ed_priv, _ = self.key("ed")
        ec_priv, _ = self.key("ec", "ecdsa")
        payload = lcg_bytes(70001)
        p = self.sign(payload, [ed_priv, ec_priv], version="3.14.159+2653", counter="42",
                      extra=("--json",))
        out = json.loads(p.stdout)
        data = self.read("image.bin")
        f, signed, records = parse_image(data)
        self.assertEqual(f["magic"], IMAGE_MAGIC)
        self.assertEqual(data[:4], b"FOTA")
        self.assertEqual((f["header_len"], f["format"], f["flags"], f["reserved"]), (64, 1, 0, 0))
        self.assertEqual(f["version"], (3, 14, 159))
        self.assertEqual(f["build"], 2653)
        self.assertEqual(f["security_counter"], 42)
        self.assertEqual(f["hardware_id"], "acme-gw.rev2")
        self.assertEqual(f["hw_raw"], b"acme-gw.rev2".ljust(32, b"\0"))
        self.assertEqual(f["payload_len"], len(payload))
        self.assertEqual(data[64:64 + len(payload)], payload)
        self.assertEqual(f["trailer_magic"], TRAILER_MAGIC)
        digest = hashlib.sha256(signed).digest()
        self.assertEqual([v for t, v in records if t == T_SHA256], [digest])
        pubs = {image_key_id(public_of_pem(k)): public_of_pem(k) for k in (ed_priv, ec_priv)}
        kinds = []
        for t, v in records:
            if t == T_SHA256:
                continue
            self.assertIn(t, (T_ED25519, T_ECDSA))
            pub = pubs[v[:32]]
            self.assertTrue(signature_ok(pub, digest, v[32:]), "signature record does not verify")
            self.assertEqual(isinstance(pub, ed25519.Ed25519PublicKey), t == T_ED25519)
            kinds.append(t)
        self.assertEqual(sorted(kinds), [T_ED25519, T_ECDSA])
        # the JSON report says the same
        self.assertEqual(out["sha256"], digest.hex())
        self.assertEqual(out["version"], "3.14.159+2653")
        self.assertEqual(out["security_counter"], 42)
        self.assertEqual(out["hardware_id"], "acme-gw.rev2")
        self.assertEqual(out["payload_len"], len(payload))
        self.assertEqual(out["total_len"], len(data))
        self.assertEqual(sorted(s["keyid"] for s in out["signatures"]),
                         sorted(k.hex() for k in pubs))

    def test_sign_then_verify(self):
        ed_priv, ed_pub = self.key("ed")
        ec_priv, ec_pub = self.key("ec", "ecdsa")
        other_priv, other_pub = self.key("other")
        self.sign(b"firmware" * 1000, [ed_priv, ec_priv])
        img = self.path("image.bin")
        p = self.verify(img, [ed_pub])
        self.assertIn("valid", p.stdout)
        self.verify(img, [ec_pub])
        self.verify(img, [ed_priv])   # a private PEM stands for its public half
        p = self.verify(img, [ed_pub, ec_pub], "--threshold", "2", "--hardware", "acme-gw.rev2",
                        "--min-security-counter", "7", "--json")
        out = json.loads(p.stdout)
        self.assertTrue(out["valid"])
        self.assertEqual(out["reason"], "ok")
        self.assertEqual(out["valid_signatures"], 2)
        self.assertEqual(out["security_counter"], 7)
        # and each rejection, with its reason name
        cases = [
            ([other_pub], (), "threshold"),
            ([ed_pub, other_pub], ("--threshold", "2"), "threshold"),
            ([ed_pub], ("--hardware", "acme-gw.rev3"), "wrong-hardware"),
            ([ed_pub], ("--min-security-counter", "8"), "rollback"),
        ]
        for pubs, extra, reason in cases:
            p = self.verify(img, pubs, *extra, code=1)
            self.assertIn(reason, p.stderr)
            p = self.verify(img, pubs, *extra, "--json", code=1)
            out = json.loads(p.stdout)
            self.assertFalse(out["valid"])
            self.assertEqual(out["reason"], reason)

    def test_verify_tampered(self):
        ed_priv, ed_pub = self.key("ed")
        self.sign(lcg_bytes(5000), [ed_priv])
        good = self.read("image.bin")
        flipped = bytearray(good)
        flipped[64 + 1234] ^= 1
        sig = bytearray(good)
        sig[-1] ^= 1
        for name, data, reason in [
            ("flipped.bin", bytes(flipped), "hash-mismatch"),
            ("sig.bin", bytes(sig), "bad-signature"),
            ("long.bin", good + b"\0", "length"),
            ("short.bin", good[:-1], "length"),
            ("header.bin", good[:6] + b"\x02" + good[7:], "parse"),
        ]:
            p = self.verify(self.write(name, data), [ed_pub], code=1)
            self.assertIn(reason, p.stderr, name)

    def test_openssl_vectors(self):
        """Every case of tests/vectors/image/cases.txt (images made by the
        openssl command) through `fota image verify`."""
        n = 0
        with open(os.path.join(IMAGE_VECTORS, "cases.txt")) as f:
            for line in f:
                line = line.split("#")[0].split()
                if not line:
                    continue
                image, trusted, threshold, min_counter, hw, expect = line
                args = ["image", "verify", os.path.join(IMAGE_VECTORS, image), "--json",
                        "--threshold", threshold, "--min-security-counter", min_counter,
                        "--hardware", hw]
                for k in trusted.split(","):
                    args += ["--key", os.path.join(VECTORS, "keys", k + ".key.pem")]
                # a key listed twice is one key: the CLI refuses that as usage
                if len(set(trusted.split(","))) != len(trusted.split(",")):
                    continue
                p = self.run_fota(*args, code=None)
                out = json.loads(p.stdout)
                self.assertEqual(out["reason"], expect, "%s: %s" % (image, p.stdout))
                self.assertEqual(p.returncode, 0 if expect == "ok" else 1, image)
                n += 1
        self.assertGreaterEqual(n, 50)

    def test_openssl_vector_with_pub_files(self):
        """The openssl-made image verifies with keys given as TUF .pub key
        objects (written from `fota key show --json` of the openssl PEMs)."""
        img = os.path.join(IMAGE_VECTORS, "two-keys.img")
        pubs = []
        for k in ("ed25519", "p256"):
            p = self.run_fota("key", "show", os.path.join(VECTORS, "keys", k + ".key.pem"),
                              "--json")
            info = json.loads(p.stdout)
            keyobj = {"keytype": info["keytype"], "scheme": info["scheme"],
                      "keyval": {"public": info["public"]}}
            pubs.append(self.write(k + ".pub", json.dumps(keyobj).encode()))
        p = self.verify(img, pubs, "--threshold", "2", "--hardware", "fota-sim.board-1")
        self.assertIn("valid", p.stdout)

    # -- inspect ------------------------------------------------------------

    def test_inspect(self):
        p = self.run_fota("image", "inspect", os.path.join(IMAGE_VECTORS, "two-keys.img"),
                          "--json")
        out = json.loads(p.stdout)
        ids = {}
        with open(os.path.join(IMAGE_VECTORS, "keyids.txt")) as f:
            for line in f:
                if not line.startswith("#"):
                    name, hexid = line.split()
                    ids[name] = hexid
        self.assertEqual(out["version"], "1.2.3+45")
        self.assertEqual(out["security_counter"], 7)
        self.assertEqual(out["hardware_id"], "fota-sim.board-1")
        self.assertEqual(out["payload_len"], 5000)
        self.assertEqual(out["format"], 1)
        self.assertTrue(out["sha256_matches"])
        types = [r["type"] for r in out["records"]]
        self.assertEqual(types, ["sha256", "ed25519", "ecdsa-p256"])
        self.assertEqual(out["records"][1]["keyid"], ids["ed25519"])
        self.assertEqual(out["records"][2]["keyid"], ids["p256"])
        with open(os.path.join(IMAGE_VECTORS, "two-keys.img"), "rb") as f:
            data = f.read()
        self.assertEqual(out["total_len"], len(data))
        self.assertEqual(out["sha256"], hashlib.sha256(data[:5064]).hexdigest())
        # human output names the same things
        p = self.run_fota("image", "inspect", os.path.join(IMAGE_VECTORS, "two-keys.img"))
        for s in ("1.2.3+45", "fota-sim.board-1", ids["ed25519"], ids["p256"], "ecdsa-p256"):
            self.assertIn(s, p.stdout)
        # a tampered payload: inspect reports it, without keys
        p = self.run_fota("image", "inspect", os.path.join(IMAGE_VECTORS, "payload-flipped.img"),
                          "--json")
        self.assertFalse(json.loads(p.stdout)["sha256_matches"])
        # an unknown record is shown, not hidden
        p = self.run_fota("image", "inspect", os.path.join(IMAGE_VECTORS, "unknown-record.img"),
                          "--json")
        self.assertIn("unknown", [r["type"] for r in json.loads(p.stdout)["records"]])
        # a header that is not an image header
        p = self.run_fota("image", "inspect", os.path.join(IMAGE_VECTORS, "magic.img"), code=1)
        self.assertIn("parse", p.stderr)

    # -- usage ----------------------------------------------------------------

    def test_usage_errors(self):
        ed_priv, ed_pub = self.key("ed")
        rsa_priv, rsa_pub = self.key("rsa", "rsa")
        src = self.write("payload.bin", b"x" * 100)
        out = self.path("out.bin")
        base = ["image", "sign", src, out, "--key", ed_priv]
        good = {"--version": "1.0.0", "--security-counter": "1", "--hardware": "hw"}

        def sign_with(**over):
            opts = dict(good)
            opts.update(over)
            args = list(base)
            for k, v in opts.items():
                if v is not None:
                    args += [k, v]
            return args

        for bad in ("1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.3+", "+1", "1.2.3-rc1", "1..3",
                    "65536.0.0", "1.2.3+4294967296", "a.b.c", "", "1.2.3 ", "-1.2.3"):
            self.run_fota(*sign_with(**{"--version": bad}), code=2)
        for bad in ("-1", "4294967296", "x", "", "1e3", "0x10"):
            self.run_fota(*sign_with(**{"--security-counter": bad}), code=2)
        for bad in ("a b", "", "x" * 32, "caf\u00e9", "a/b"):
            self.run_fota(*sign_with(**{"--hardware": bad}), code=2)
        for missing in ("--version", "--security-counter", "--hardware"):
            self.run_fota(*sign_with(**{missing: None}), code=2)
        self.run_fota("image", "sign", src, out, "--version", "1.0.0", "--security-counter", "1",
                      "--hardware", "hw", code=2)                           # no key
        self.run_fota(*sign_with(), "--key", ed_priv, code=2)               # the same key twice
        self.run_fota("image", "sign", src, out, "--key", rsa_priv, "--version", "1.0.0",
                      "--security-counter", "1", "--hardware", "hw", code=2)  # RSA cannot sign images
        self.run_fota("image", "sign", src, out, "--key", ed_pub, "--version", "1.0.0",
                      "--security-counter", "1", "--hardware", "hw", code=1)  # not a private key
        self.run_fota("image", "sign", self.path("missing"), out, "--key", ed_priv,
                      "--version", "1.0.0", "--security-counter", "1", "--hardware", "hw", code=1)
        self.assertFalse(os.path.exists(out))
        self.run_fota(*sign_with(), code=0)
        self.run_fota("image", "verify", out, code=2)                       # no key
        self.run_fota("image", "verify", out, "--key", ed_pub, "--threshold", "2", code=2)
        self.run_fota("image", "verify", out, "--key", ed_pub, "--threshold", "0", code=2)
        self.run_fota("image", "verify", out, "--key", ed_pub, "--key", ed_priv, code=2)
        self.run_fota("image", "verify", out, "--key", rsa_pub, code=2)
        self.run_fota("image", "verify", out, "--key", ed_pub, "--min-security-counter", "-1",
                      code=2)
        self.run_fota("image", "verify", out, "--key", ed_pub, "--hardware", "a b", code=2)
        self.run_fota("image", "verify", self.path("missing"), "--key", ed_pub, code=1)
        self.run_fota("image", "inspect", code=2)
        self.run_fota("image", "inspect", out, out, code=2)
        self.run_fota("image", code=2)
        self.run_fota("image", "frobnicate", code=2)
        for sub in ("sign", "verify", "inspect"):
            p = self.run_fota("image", sub, "--help")
            self.assertIn("fota image " + sub, p.stdout)

    def test_version_forms(self):
        ed_priv, ed_pub = self.key("ed")
        for v, want, build in [("0.0.0", (0, 0, 0), 0), ("65535.65535.65535+4294967295",
                                                       (65535, 65535, 65535), 4294967295),
                               ("10.20.30+0", (10, 20, 30), 0), ("1.0.0+007", (1, 0, 0), 7)]:
            self.sign(b"v", [ed_priv], version=v)
            f, _, _ = parse_image(self.read("image.bin"))
            self.assertEqual(f["version"], want, v)
            self.assertEqual(f["build"], build, v)
        self.sign(b"v", [ed_priv], counter="4294967295")
        f, _, _ = parse_image(self.read("image.bin"))
        self.assertEqual(f["security_counter"], 4294967295)

    def test_empty_payload_and_overwrite(self):
        ed_priv, ed_pub = self.key("ed")
        self.sign(b"", [ed_priv])
        self.verify(self.path("image.bin"), [ed_pub])
        first = self.read("image.bin")
        self.sign(b"again", [ed_priv])   # OUT is replaced
        self.assertNotEqual(first, self.read("image.bin"))
        self.verify(self.path("image.bin"), [ed_pub])

    def test_sign_streams(self):
        """A 64 MiB payload is signed and verified without holding it: peak
        memory stays far below the file's size."""
        if not os.path.exists("/usr/bin/time"):
            self.skipTest("/usr/bin/time missing")
        ed_priv, ed_pub = self.key("ed")
        src = self.path("big.bin")
        with open(src, "wb") as f:
            f.truncate(64 << 20)
        for args in (["image", "sign", src, self.path("big.img"), "--key", ed_priv,
                      "--version", "1.0.0", "--security-counter", "1", "--hardware", "hw"],
                     ["image", "verify", self.path("big.img"), "--key", ed_pub]):
            p = subprocess.run(["/usr/bin/time", "-f", "maxrss %M", FOTA] + args,
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            rss_kib = int(p.stderr.strip().splitlines()[-1].split()[1])
            self.assertLess(rss_kib, 48 * 1024, "peak RSS %d KiB for %s" % (rss_kib, args[1]))
        self.assertEqual(os.path.getsize(self.path("big.img")), 64 + (64 << 20) + 4 + 36 + 100)


if __name__ == "__main__":
    unittest.main()
