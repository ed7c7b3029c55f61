# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the `fota` operator CLI (docs/fota.md, notes cli.md).

Everything the tool writes is checked with code that is not ours:
securesystemslib's canonical JSON encoder and signature verification
(python3-securesystemslib), and keys made by the `openssl` command.

Run: FOTA_BIN=build/bin/fota /usr/bin/python3 -m unittest -v test_cli
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from securesystemslib import keys as sslib_keys
from securesystemslib.formats import encode_canonical

FOTA = os.environ.get("FOTA_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin", "fota")
OPENSSL = shutil.which("openssl")
KEYID_RE = re.compile(r"\b[0-9a-f]{64}\b")


def canonical(obj):
    return encode_canonical(obj).encode("utf-8")


def keyid_of(keyobj):
    return hashlib.sha256(canonical(keyobj)).hexdigest()


def published_form(obj):
    """The bytes fota publishes: canonical JSON, with control characters in
    strings (PEM newlines) escaped when there are any, since canonical JSON
    would leave them raw and no strict JSON parser reads that."""
    c = canonical(obj)
    if any(b < 0x20 for b in c):
        return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
    return c


def count_valid(envelope, keys, role):
    """Distinct keys of role (keyids, threshold) whose signature over the
    canonical form of envelope['signed'] verifies, checked by
    securesystemslib."""
    data = canonical(envelope["signed"])
    valid = set()
    for sig in envelope["signatures"]:
        keyid = sig["keyid"]
        if keyid not in role["keyids"] or keyid not in keys:
            continue
        key = dict(keys[keyid])
        # The key id is the hash of the canonical key object.
        if keyid_of(key) != keyid:
            raise AssertionError("key id %s is not sha256 of its key" % keyid)
        key["keyid"] = keyid
        if sslib_keys.verify_signature(key, sig, data):
            valid.add(keyid)
    return len(valid)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fota-cli-")
        self.repo = os.path.join(self.tmp, "repo")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ----------------------------------------------------------

    def run_fota(self, *args, code=0):
        p = subprocess.run([FOTA] + list(args), capture_output=True, text=True,
                           cwd=self.tmp, timeout=120)
        if code is not None and p.returncode != code:
            self.fail("fota %s: exit %d, wanted %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), p.returncode, code, p.stdout, p.stderr))
        return p

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def key(self, name, kind="ed25519"):
        """A new key made by `fota key new`: returns (private path, keyid)."""
        out = self.path(name + ".key")
        p = self.run_fota("key", "new", "--type", kind, "--out", out, "--json")
        info = json.loads(p.stdout)
        return out, info["keyid"]

    def load(self, *parts):
        with open(os.path.join(self.repo, *parts), "rb") as f:
            return json.loads(f.read())

    def read_bytes(self, *parts):
        with open(os.path.join(self.repo, *parts), "rb") as f:
            return f.read()

    def init_repo(self, root=1, targets=1, root_threshold=1, targets_threshold=1,
                  extra=()):
        """A repository with ed25519 keys; returns a dict role -> [(path, keyid)]."""
        keys = {
            "root": [self.key("root%d" % i) for i in range(root)],
            "targets": [self.key("targets%d" % i) for i in range(targets)],
            "snapshot": [self.key("snapshot")],
            "timestamp": [self.key("timestamp")],
        }
        args = ["repo", "init", "--repo", self.repo]
        for role, ks in keys.items():
            for path, _ in ks:
                # public halves for root and targets, private PEMs for the rest:
                # both are accepted wherever a public key is taken
                args += ["--%s-key" % role, path + ".pub" if role in ("root", "targets") else path]
        args += ["--root-threshold", str(root_threshold),
                 "--targets-threshold", str(targets_threshold)] + list(extra)
        self.run_fota(*args)
        self.keys = keys
        return keys

    def sign(self, role, *key_paths, code=0):
        args = ["repo", "sign", role, "--repo", self.repo]
        for k in key_paths:
            args += ["--key", k]
        return self.run_fota(*args, code=code)

    def publish(self, code=0, extra=()):
        return self.run_fota("repo", "publish", "--repo", self.repo,
                             "--snapshot-key", self.keys["snapshot"][0][0],
                             "--timestamp-key", self.keys["timestamp"][0][0],
                             *extra, code=code)

    def write_file(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def assert_published_ok(self):
        """Every published role verifies against the published root, and
        snapshot/timestamp meta match the files they describe."""
        root = self.load("metadata", "root.json")
        rs = root["signed"]
        for name in ("root", "targets", "snapshot", "timestamp"):
            env = self.load("metadata", name + ".json")
            role = rs["roles"][name]
            self.assertGreaterEqual(count_valid(env, rs["keys"], role), role["threshold"], name)
            self.assertEqual(self.read_bytes("metadata", name + ".json"), published_form(env))
        ts = self.load("metadata", "timestamp.json")["signed"]
        snap_meta = ts["meta"]["snapshot.json"]
        snap_bytes = self.read_bytes("metadata", "%d.snapshot.json" % snap_meta["version"])
        self.assertEqual(len(snap_bytes), snap_meta["length"])
        self.assertEqual(hashlib.sha256(snap_bytes).hexdigest(), snap_meta["hashes"]["sha256"])
        snap = json.loads(snap_bytes)["signed"]
        self.assertIn("targets.json", snap["meta"])
        for fname, meta in snap["meta"].items():
            role = fname[:-len(".json")]
            enc = "".join(c if (c.isascii() and (c.isalnum() or c in "_.-~")) else
                          "".join("%%%02X" % b for b in c.encode()) for c in role)
            data = self.read_bytes("metadata", "%d.%s.json" % (meta["version"], enc))
            self.assertEqual(len(data), meta["length"], fname)
            self.assertEqual(hashlib.sha256(data).hexdigest(), meta["hashes"]["sha256"], fname)
            self.assertEqual(json.loads(data)["signed"]["version"], meta["version"])
        return root

    # -- keys -------------------------------------------------------------

    def test_key_new_all_types(self):
        expect = {"ed25519": ("ed25519", "ed25519"),
                  "ecdsa": ("ecdsa", "ecdsa-sha2-nistp256"),
                  "rsa": ("rsa", "rsassa-pss-sha256")}
        for kind, (keytype, scheme) in expect.items():
            with self.subTest(kind=kind):
                out = self.path(kind + ".key")
                p = self.run_fota("key", "new", "--type", kind, "--out", out)
                st = os.stat(out)
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
                with open(out) as f:
                    self.assertTrue(f.read().startswith("-----BEGIN PRIVATE KEY-----"))
                with open(out + ".pub", "rb") as f:
                    pub_bytes = f.read()
                self.assertTrue(pub_bytes.endswith(b"\n"))
                pub = json.loads(pub_bytes)
                self.assertEqual(sorted(pub), ["keytype", "keyval", "scheme"])
                self.assertEqual(pub["keytype"], keytype)
                self.assertEqual(pub["scheme"], scheme)
                self.assertEqual(pub_bytes[:-1], published_form(pub))
                keyid = keyid_of(pub)
                self.assertIn(keyid, p.stdout)
                if kind == "ed25519":
                    self.assertRegex(pub["keyval"]["public"], r"^[0-9a-f]{64}$")
                else:
                    self.assertTrue(pub["keyval"]["public"].startswith("-----BEGIN PUBLIC KEY-----"))
                if kind == "rsa":
                    from cryptography.hazmat.primitives.serialization import load_pem_public_key
                    k = load_pem_public_key(pub["keyval"]["public"].encode())
                    self.assertEqual(k.key_size, 3072)
                # key show agrees, from the private key and from the .pub
                for src in (out, out + ".pub"):
                    show = json.loads(self.run_fota("key", "show", src, "--json").stdout)
                    self.assertEqual(show["keyid"], keyid)
                    self.assertEqual(show["keytype"], keytype)
                    self.assertEqual(show["scheme"], scheme)
                    self.assertEqual(show["public"], pub["keyval"]["public"])

    def test_key_new_json_output(self):
        out = self.path("k.key")
        info = json.loads(self.run_fota("key", "new", "--type", "ed25519", "--out", out,
                                        "--json").stdout)
        self.assertEqual(info["private"], out)
        self.assertEqual(info["public"], out + ".pub")
        self.assertEqual(info["type"], "ed25519")
        with open(out + ".pub") as f:
            self.assertEqual(info["keyid"], keyid_of(json.load(f)))

    def test_key_new_refuses_overwrite(self):
        out = self.path("k.key")
        self.run_fota("key", "new", "--type", "ed25519", "--out", out)
        with open(out, "rb") as f:
            before = f.read()
        p = self.run_fota("key", "new", "--type", "ed25519", "--out", out, code=1)
        self.assertRegex(p.stderr, r"^fota: key new: .*exists")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), before)
        # an existing .pub alone is refused too, and nothing is written
        other = self.path("o.key")
        with open(other + ".pub", "w") as f:
            f.write("{}")
        self.run_fota("key", "new", "--type", "ed25519", "--out", other, code=1)
        self.assertFalse(os.path.exists(other))

    def test_key_new_usage_errors(self):
        self.run_fota("key", "new", "--type", "dsa", "--out", self.path("x"), code=2)
        self.run_fota("key", "new", "--out", self.path("x"), code=2)
        self.run_fota("key", "new", "--type", "ed25519", code=2)
        self.run_fota("key", "new", "--type", "ed25519", "--out", self.path("x"), "--bogus",
                      code=2)
        self.assertFalse(os.path.exists(self.path("x")))

    @unittest.skipIf(OPENSSL is None, "openssl command not found")
    def test_openssl_keys_accepted(self):
        """Keys made by `openssl genpkey` sign metadata that verifies."""
        gen = {
            "ed25519": ["-algorithm", "ed25519"],
            "ecdsa": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        }
        paths = {}
        for kind, args in gen.items():
            out = self.path("ossl-%s.pem" % kind)
            subprocess.run([OPENSSL, "genpkey"] + args + ["-out", out], check=True,
                           capture_output=True)
            paths[kind] = out
        ts = self.key("timestamp")
        # openssl keys for root (3 keys, threshold 3), targets, snapshot
        self.run_fota("repo", "init", "--repo", self.repo,
                      "--root-key", paths["ed25519"], "--root-key", paths["ecdsa"],
                      "--root-key", paths["rsa"], "--root-threshold", "3",
                      "--targets-key", paths["ecdsa"], "--snapshot-key", paths["rsa"],
                      "--timestamp-key", ts[0])
        p = self.sign("root", paths["ed25519"], paths["ecdsa"], paths["rsa"])
        self.assertIn("root v1: 3 of 3 signatures", p.stdout)
        self.sign("targets", paths["ecdsa"])
        self.keys = {"snapshot": [(paths["rsa"], None)], "timestamp": [ts]}
        self.publish()
        root = self.assert_published_ok()
        kinds = sorted(k["keytype"] for k in root["signed"]["keys"].values())
        self.assertEqual(kinds, ["ecdsa", "ed25519", "ed25519", "rsa"])
        for kind, path in paths.items():
            show = json.loads(self.run_fota("key", "show", path, "--json").stdout)
            self.assertIn(show["keyid"], root["signed"]["roles"]["root"]["keyids"])

    # -- init, sign, add-target, publish ------------------------------------

    def test_layout_and_independent_verification(self):
        self.init_repo()
        for d in ("staged", "metadata", "targets"):
            self.assertTrue(os.path.isdir(os.path.join(self.repo, d)))
        self.assertTrue(os.path.isfile(os.path.join(self.repo, "fota-repo.json")))
        root = self.load("staged", "root.json")
        rs = root["signed"]
        self.assertEqual(root["signatures"], [])
        self.assertEqual(rs["_type"], "root")
        self.assertEqual(rs["spec_version"], "1.0.31")
        self.assertEqual(rs["version"], 1)
        self.assertIs(rs["consistent_snapshot"], True)
        for role in ("root", "targets", "snapshot", "timestamp"):
            r = rs["roles"][role]
            self.assertEqual(r["threshold"], 1)
            self.assertEqual(r["keyids"], sorted(r["keyids"]))
            self.assertEqual(r["keyids"], [k for _, k in self.keys[role]])
            for keyid in r["keyids"]:
                self.assertEqual(keyid_of(rs["keys"][keyid]), keyid)
        expires = parse_time(rs["expires"])
        self.assertLess(abs((expires - utc_now()).total_seconds() - 365 * 86400), 120)
        targets = self.load("staged", "targets.json")
        self.assertEqual(targets["signed"]["_type"], "targets")
        self.assertEqual(targets["signed"]["version"], 1)
        self.assertEqual(targets["signed"]["targets"], {})
        self.assertLess(abs((parse_time(targets["signed"]["expires"]) - utc_now())
                            .total_seconds() - 90 * 86400), 120)

        # init refuses an existing repository
        self.run_fota("repo", "init", "--repo", self.repo,
                      "--root-key", self.keys["root"][0][0], "--targets-key",
                      self.keys["root"][0][0], "--snapshot-key", self.keys["root"][0][0],
                      "--timestamp-key", self.keys["root"][0][0], code=1)

        p = self.sign("root", self.keys["root"][0][0])
        self.assertIn("root v1: 1 of 1 signatures", p.stdout)
        fw = self.write_file("fw.bin", b"firmware image \x00\x01" * 1000)
        self.run_fota("repo", "add-target", fw, "--repo", self.repo, "--name", "boards/a/fw.bin",
                      "--custom", '{"hardware_ids":["a"],"version":"1.2.3","security_counter":4}')
        self.run_fota("repo", "add-target", fw, "--repo", self.repo)
        p = self.sign("targets", self.keys["targets"][0][0])
        self.assertIn("targets v1: 1 of 1 signatures", p.stdout)
        p = self.publish()
        self.assertIn("timestamp.json", p.stdout)

        with open(fw, "rb") as f:
            data = f.read()
        sha256 = hashlib.sha256(data).hexdigest()
        sha512 = hashlib.sha512(data).hexdigest()
        for rel in ("targets/boards/a/%s.fw.bin" % sha256, "targets/%s.fw.bin" % sha256):
            with open(os.path.join(self.repo, rel), "rb") as f:
                self.assertEqual(f.read(), data)
        # consistent snapshots: no plain copy
        self.assertFalse(os.path.exists(os.path.join(self.repo, "targets", "fw.bin")))

        meta = sorted(os.listdir(os.path.join(self.repo, "metadata")))
        self.assertEqual(meta, ["1.root.json", "1.snapshot.json", "1.targets.json", "root.json",
                                "snapshot.json", "targets.json", "timestamp.json"])
        for name in ("root", "targets", "snapshot"):
            self.assertEqual(self.read_bytes("metadata", "1.%s.json" % name),
                             self.read_bytes("metadata", "%s.json" % name))
        root = self.assert_published_ok()
        self.assertEqual(root, self.load("staged", "root.json"))
        t = self.load("metadata", "targets.json")["signed"]["targets"]
        self.assertEqual(sorted(t), ["boards/a/fw.bin", "fw.bin"])
        entry = t["boards/a/fw.bin"]
        self.assertEqual(entry["length"], len(data))
        self.assertEqual(entry["hashes"], {"sha256": sha256, "sha512": sha512})
        self.assertEqual(entry["custom"], {"hardware_ids": ["a"], "version": "1.2.3",
                                           "security_counter": 4})
        self.assertNotIn("custom", t["fw.bin"])
        snap = self.load("metadata", "snapshot.json")["signed"]
        self.assertEqual(snap["_type"], "snapshot")
        self.assertEqual(snap["spec_version"], "1.0.31")
        self.assertEqual(sorted(snap["meta"]), ["targets.json"])
        self.assertEqual(sorted(snap["meta"]["targets.json"]), ["hashes", "length", "version"])
        ts = self.load("metadata", "timestamp.json")["signed"]
        self.assertEqual(sorted(ts["meta"]), ["snapshot.json"])
        self.assertLess(abs((parse_time(snap["expires"]) - utc_now()).total_seconds()
                            - 7 * 86400), 120)
        self.assertLess(abs((parse_time(ts["expires"]) - utc_now()).total_seconds() - 86400),
                        120)

        status = json.loads(self.run_fota("repo", "status", "--repo", self.repo,
                                          "--json").stdout)
        by_role = {r["role"]: r for r in status["roles"]}
        self.assertEqual(by_role["targets"]["published_version"], 1)
        self.assertEqual(by_role["targets"]["signatures"], 1)
        self.assertFalse(by_role["root"]["changed"])

    def test_publish_renewal_and_edit_versions(self):
        self.init_repo()
        self.sign("root", self.keys["root"][0][0])
        self.sign("targets", self.keys["targets"][0][0])
        self.publish()
        # nothing changed: new snapshot and timestamp only
        p = self.publish(extra=["--json"])
        out = json.loads(p.stdout)
        self.assertEqual(out["versions"]["snapshot"], 2)
        self.assertEqual(out["versions"]["timestamp"], 2)
        self.assertEqual(sorted(out["written"]), ["metadata/2.snapshot.json",
                                                  "metadata/snapshot.json",
                                                  "metadata/timestamp.json"])
        # an edit of a published role starts version 2; further edits keep it
        a = self.write_file("a.bin", b"a")
        b = self.write_file("b.bin", b"b")
        self.run_fota("repo", "add-target", a, "--repo", self.repo)
        t = self.load("staged", "targets.json")
        self.assertEqual(t["signed"]["version"], 2)
        self.sign("targets", self.keys["targets"][0][0])
        self.run_fota("repo", "add-target", b, "--repo", self.repo)
        t = self.load("staged", "targets.json")
        self.assertEqual(t["signed"]["version"], 2)
        self.assertEqual(t["signatures"], [])  # edits clear signatures
        # unsigned: refused, naming the role and the count
        p = self.publish(code=1)
        self.assertIn("targets v2: 0 of 1 signatures", p.stderr)
        self.assertRegex(p.stderr, r"^fota: repo publish: ")
        self.sign("targets", self.keys["targets"][0][0])
        self.publish()
        self.assertEqual(self.load("metadata", "2.targets.json")["signed"]["version"], 2)
        self.run_fota("repo", "remove-target", "a.bin", "--repo", self.repo)
        self.run_fota("repo", "remove-target", "a.bin", "--repo", self.repo, code=1)
        self.assertEqual(sorted(self.load("staged", "targets.json")["signed"]["targets"]),
                         ["b.bin"])
        self.assertEqual(self.load("staged", "targets.json")["signed"]["version"], 3)
        # bump: new version and expiry, signatures cleared
        self.sign("targets", self.keys["targets"][0][0])
        self.run_fota("repo", "bump", "targets", "--repo", self.repo, "--expires",
                      "2031-01-01T00:00:00Z")
        t = self.load("staged", "targets.json")
        self.assertEqual(t["signed"]["version"], 3)
        self.assertEqual(t["signed"]["expires"], "2031-01-01T00:00:00Z")
        self.assertEqual(t["signatures"], [])
        self.sign("targets", self.keys["targets"][0][0])
        self.publish()
        self.assert_published_ok()
        self.run_fota("repo", "bump", "root", "--repo", self.repo)
        self.assertEqual(self.load("staged", "root.json")["signed"]["version"], 2)

    def test_no_consistent_snapshot(self):
        self.init_repo(extra=["--no-consistent-snapshot"])
        self.assertIs(self.load("staged", "root.json")["signed"]["consistent_snapshot"], False)
        fw = self.write_file("fw.bin", b"x" * 100)
        self.run_fota("repo", "add-target", fw, "--repo", self.repo, "--name", "d/fw.bin")
        sha = hashlib.sha256(b"x" * 100).hexdigest()
        for rel in ("targets/d/fw.bin", "targets/d/%s.fw.bin" % sha):
            with open(os.path.join(self.repo, rel), "rb") as f:
                self.assertEqual(f.read(), b"x" * 100)

    def test_add_target_rejects_bad_input(self):
        self.init_repo()
        fw = self.write_file("fw.bin", b"x")
        for name in ("../x", "a//b", "/abs", "a/./b", "a/", ""):
            with self.subTest(name=name):
                self.run_fota("repo", "add-target", fw, "--repo", self.repo, "--name", name,
                              code=2)
        for custom in ("[1]", "{\"a\":1,\"a\":2}", "{\"a\":1.5}", "{", "3"):
            with self.subTest(custom=custom):
                self.run_fota("repo", "add-target", fw, "--repo", self.repo, "--custom", custom,
                              code=2)
        self.run_fota("repo", "add-target", self.path("missing.bin"), "--repo", self.repo, code=1)
        self.run_fota("repo", "add-target", fw, "--repo", self.repo, "--role", "nope", code=1)
        self.assertEqual(self.load("staged", "targets.json")["signed"]["targets"], {})

    # -- thresholds ---------------------------------------------------------

    def test_threshold_two_of_three(self):
        keys = self.init_repo(targets=3, targets_threshold=2)
        self.sign("root", keys["root"][0][0])
        k = [p for p, _ in keys["targets"]]
        fw = self.write_file("fw.bin", b"image")
        self.run_fota("repo", "add-target", fw, "--repo", self.repo)
        # holder 1 signs alone: 1 of 2, publish refuses
        p = self.sign("targets", k[0])
        self.assertIn("targets v1: 1 of 2 signatures", p.stdout)
        p = self.publish(code=1)
        self.assertIn("targets v1: 1 of 2 signatures", p.stderr)
        self.assertEqual(os.listdir(os.path.join(self.repo, "metadata")), [])
        # signing again with the same key replaces its signature: still 1
        p = self.sign("targets", k[0])
        self.assertIn("1 of 2 signatures", p.stdout)
        self.assertEqual(len(self.load("staged", "targets.json")["signatures"]), 1)
        # the staged file travels to holder 3, who signs in a separate run
        p = self.run_fota("repo", "sign", "targets", "--json", "--repo", self.repo, "--key", k[2])
        out = json.loads(p.stdout)
        self.assertEqual((out["signatures"], out["threshold"]), (2, 2))
        self.publish()
        root = self.assert_published_ok()
        t = self.load("metadata", "1.targets.json")
        self.assertEqual(count_valid(t, root["signed"]["keys"],
                                     root["signed"]["roles"]["targets"]), 2)
        # a key the role does not list is refused, and nothing changes
        before = self.read_bytes("staged", "targets.json")
        p = self.sign("targets", keys["snapshot"][0][0], code=1)
        self.assertIn("is not a targets key", p.stderr)
        self.assertEqual(self.read_bytes("staged", "targets.json"), before)

    def test_threshold_bounds(self):
        a = self.key("a")[0]
        b = self.key("b")[0]
        base = ["repo", "init", "--repo", self.repo, "--targets-key", a, "--snapshot-key", a,
                "--timestamp-key", a]
        self.run_fota(*base, "--root-key", a, "--root-threshold", "2", code=2)
        self.run_fota(*base, "--root-key", a, "--root-threshold", "0", code=2)
        self.run_fota(*base, "--root-key", a, "--root-threshold", "x", code=2)
        self.run_fota(*base, "--root-key", a, "--root-key", a + ".pub", code=2)  # same key
        self.run_fota(*base, code=2)  # no root key
        self.assertFalse(os.path.exists(self.repo))
        self.run_fota(*base, "--root-key", a, "--root-key", b, "--root-threshold", "2")

    # -- rotation -----------------------------------------------------------

    def test_rotate_root(self):
        keys = self.init_repo()
        old = keys["root"][0]
        self.sign("root", old[0])
        self.sign("targets", keys["targets"][0][0])
        self.publish()
        new = self.key("root-new")
        self.run_fota("repo", "rotate", "root", "--repo", self.repo, "--add-key", new[0] + ".pub",
                      "--remove-key", old[1])
        staged = self.load("staged", "root.json")
        self.assertEqual(staged["signed"]["version"], 2)
        self.assertEqual(staged["signed"]["roles"]["root"]["keyids"], [new[1]])
        self.assertNotIn(old[1], staged["signed"]["keys"])  # no role uses it any more
        # only the new key: the old root's threshold is missing
        p = self.sign("root", new[0])
        self.assertIn("root v2: 1 of 1 signatures", p.stdout)
        self.assertIn("root v1 keys: 0 of 1 signatures", p.stdout)
        p = self.publish(code=1)
        self.assertIn("root v2", p.stderr)
        # the old key is accepted for root although the new root drops it
        p = self.sign("root", old[0])
        self.assertIn("root v1 keys: 1 of 1 signatures", p.stdout)
        self.publish()
        self.assertTrue(os.path.exists(os.path.join(self.repo, "metadata", "1.root.json")))
        v2 = self.load("metadata", "2.root.json")
        self.assertEqual(self.read_bytes("metadata", "2.root.json"),
                         self.read_bytes("metadata", "root.json"))
        v1 = self.load("metadata", "1.root.json")["signed"]
        self.assertEqual(count_valid(v2, v1["keys"], v1["roles"]["root"]), 1)
        self.assertEqual(count_valid(v2, v2["signed"]["keys"], v2["signed"]["roles"]["root"]), 1)
        self.assert_published_ok()
        # the removed key is no longer a root key
        self.run_fota("repo", "bump", "root", "--repo", self.repo)
        self.sign("root", old[0], code=1)

    def test_rotate_targets_key_requires_resign(self):
        keys = self.init_repo()
        self.sign("root", keys["root"][0][0])
        self.sign("targets", keys["targets"][0][0])
        self.publish()
        new = self.key("targets-new")
        self.run_fota("repo", "rotate", "targets", "--repo", self.repo, "--add-key", new[0],
                      "--remove-key", keys["targets"][0][0] + ".pub")
        self.sign("root", keys["root"][0][0])
        # targets v1 is signed by a key root v2 no longer lists
        p = self.publish(code=1)
        self.assertIn("targets v1: 0 of 1 signatures", p.stderr)
        self.run_fota("repo", "bump", "targets", "--repo", self.repo)
        self.sign("targets", new[0])
        self.publish()
        self.assert_published_ok()

    def test_rotate_usage(self):
        keys = self.init_repo()
        self.run_fota("repo", "rotate", "root", "--repo", self.repo, code=2)  # nothing to do
        self.run_fota("repo", "rotate", "nope", "--repo", self.repo, "--threshold", "1", code=2)
        self.run_fota("repo", "rotate", "root", "--repo", self.repo, "--threshold", "2", code=2)
        self.run_fota("repo", "rotate", "root", "--repo", self.repo, "--remove-key",
                      keys["root"][0][1], code=1)  # would leave no key
        self.run_fota("repo", "rotate", "root", "--repo", self.repo, "--add-key",
                      keys["root"][0][0], code=1)  # already listed

    def test_snapshot_timestamp_threshold(self):
        keys = self.init_repo()
        self.sign("root", keys["root"][0][0])
        self.sign("targets", keys["targets"][0][0])
        # a timestamp key that is not the timestamp key
        p = self.run_fota("repo", "publish", "--repo", self.repo, "--snapshot-key",
                          keys["snapshot"][0][0], "--timestamp-key", keys["snapshot"][0][0],
                          code=1)
        self.assertIn("not a timestamp key", p.stderr)
        self.assertEqual(os.listdir(os.path.join(self.repo, "metadata")), [])
        self.run_fota("repo", "publish", "--repo", self.repo, "--snapshot-key",
                      keys["snapshot"][0][0], code=2)

    # -- delegations --------------------------------------------------------

    def test_delegations(self):
        keys = self.init_repo()
        d1 = self.key("d1")
        d2 = self.key("d2")
        d3 = self.key("d3")
        self.run_fota("repo", "delegate", "--repo", self.repo, "--name", "boards/b",
                      "--key", d1[0] + ".pub", "--path", "boards/b/*", "--terminating")
        self.run_fota("repo", "delegate", "--repo", self.repo, "--name", "any",
                      "--key", d2[0], "--key", d3[0], "--threshold", "2",
                      "--path-hash-prefix", "AB", "--path-hash-prefix", "0")
        self.run_fota("repo", "delegate", "--repo", self.repo, "--from", "any", "--name",
                      "nested", "--key", d1[0], "--path", "*")
        t = self.load("staged", "targets.json")["signed"]
        roles = t["delegations"]["roles"]
        self.assertEqual([r["name"] for r in roles], ["boards/b", "any"])
        self.assertEqual(roles[0], {"name": "boards/b", "keyids": [d1[1]], "threshold": 1,
                                    "terminating": True, "paths": ["boards/b/*"]})
        self.assertEqual(roles[1]["path_hash_prefixes"], ["ab", "0"])
        self.assertEqual(roles[1]["keyids"], sorted([d2[1], d3[1]]))
        self.assertEqual(roles[1]["threshold"], 2)
        self.assertIs(roles[1]["terminating"], False)
        self.assertEqual(sorted(t["delegations"]["keys"]), sorted([d1[1], d2[1], d3[1]]))
        for keyid, key in t["delegations"]["keys"].items():
            self.assertEqual(keyid_of(key), keyid)
        staged = sorted(os.listdir(os.path.join(self.repo, "staged")))
        self.assertEqual(staged, ["any.json", "boards%2Fb.json", "nested.json", "root.json",
                                  "targets.json"])
        b = self.load("staged", "boards%2Fb.json")["signed"]
        self.assertEqual((b["_type"], b["version"], b["targets"]), ("targets", 1, {}))
        # re-delegating the same name replaces it in place
        self.run_fota("repo", "delegate", "--repo", self.repo, "--name", "boards/b",
                      "--key", d1[0], "--path", "boards/b/*", "--path", "boards/c/*")
        roles = self.load("staged", "targets.json")["signed"]["delegations"]["roles"]
        self.assertEqual([r["name"] for r in roles], ["boards/b", "any"])
        self.assertEqual(roles[0]["paths"], ["boards/b/*", "boards/c/*"])
        # names that cannot be roles, and bad options
        for bad in (["--name", "root"], ["--name", "1.x"], ["--name", ""]):
            self.run_fota("repo", "delegate", "--repo", self.repo, *bad, "--key", d1[0],
                          "--path", "*", code=2)
        self.run_fota("repo", "delegate", "--repo", self.repo, "--name", "x", "--key", d1[0],
                      code=2)
        self.run_fota("repo", "delegate", "--repo", self.repo, "--name", "x", "--key", d1[0],
                      "--path", "*", "--path-hash-prefix", "ab", code=2)
        self.run_fota("repo", "delegate", "--repo", self.repo, "--name", "x", "--key", d1[0],
                      "--path-hash-prefix", "xyz", code=2)
        self.run_fota("repo", "delegate", "--repo", self.repo, "--name", "nested",
                      "--key", d1[0], "--path", "*", code=1)  # delegated by another role

        fw = self.write_file("fw.bin", b"board b image")
        self.run_fota("repo", "add-target", fw, "--repo", self.repo, "--role", "boards/b",
                      "--name", "boards/b/fw.bin")
        # signed by a key not delegated to it: refused
        self.sign("boards/b", d2[0], code=1)
        self.sign("boards/b", d1[0])
        self.sign("any", d2[0])
        self.sign("nested", d1[0])
        self.sign("root", keys["root"][0][0])
        p = self.publish(code=1)  # targets unsigned
        self.assertIn("targets v1: 0 of 1 signatures", p.stderr)
        self.sign("targets", keys["targets"][0][0])
        p = self.publish(code=1)  # "any" needs 2 of 2
        self.assertIn("any v1: 1 of 2 signatures", p.stderr)
        self.sign("any", d3[0])
        self.publish()
        self.assert_published_ok()
        meta = sorted(os.listdir(os.path.join(self.repo, "metadata")))
        for f in ("1.boards%2Fb.json", "boards%2Fb.json", "1.any.json", "any.json",
                  "1.nested.json", "nested.json"):
            self.assertIn(f, meta)
        snap = self.load("metadata", "snapshot.json")["signed"]["meta"]
        self.assertEqual(sorted(snap), ["any.json", "boards/b.json", "nested.json",
                                        "targets.json"])
        # each delegated role verifies with the keys its delegator lists
        targets = self.load("metadata", "targets.json")["signed"]
        any_role = self.load("metadata", "any.json")
        self.assertEqual(count_valid(any_role, targets["delegations"]["keys"],
                                     targets["delegations"]["roles"][1]), 2)
        b = self.load("metadata", "boards%2Fb.json")
        self.assertEqual(count_valid(b, targets["delegations"]["keys"],
                                     targets["delegations"]["roles"][0]), 1)
        self.assertIn("boards/b/fw.bin", b["signed"]["targets"])

    # -- expiry -------------------------------------------------------------

    def test_expiry_values(self):
        self.init_repo()
        now = utc_now()
        cases = {"30d": 30 * 86400, "12h": 12 * 3600, "90m": 5400, "45s": 45,
                 "2w": 14 * 86400, "-1h": -3600, "0s": 0}
        for value, delta in cases.items():
            with self.subTest(value=value):
                self.run_fota("repo", "bump", "targets", "--repo", self.repo, "--expires", value)
                exp = parse_time(self.load("staged", "targets.json")["signed"]["expires"])
                self.assertLess(abs((exp - now).total_seconds() - delta), 120)
        self.run_fota("repo", "bump", "targets", "--repo", self.repo, "--expires=-2d")
        self.run_fota("repo", "bump", "targets", "--repo", self.repo, "--expires",
                      "2030-02-03T04:05:06Z")
        self.assertEqual(self.load("staged", "targets.json")["signed"]["expires"],
                         "2030-02-03T04:05:06Z")
        for bad in ("30", "d", "30x", "1.5d", "+1d", "--1d", "30 d", "", "abc",
                    "2030-13-01T00:00:00Z", "2030-02-30T00:00:00Z", "2030-01-01 00:00:00Z",
                    "2030-01-01T00:00:00", "99999999999999w"):
            with self.subTest(bad=bad):
                p = self.run_fota("repo", "bump", "targets", "--repo", self.repo,
                                  "--expires", bad, code=2)
                self.assertRegex(p.stderr, r"^fota: repo bump: --expires: ")
        self.assertEqual(self.load("staged", "targets.json")["signed"]["expires"],
                         "2030-02-03T04:05:06Z")
        # init --expires sets root's expiry; publish takes both online expiries
        self.sign("root", self.keys["root"][0][0])
        self.sign("targets", self.keys["targets"][0][0])
        self.publish(extra=["--snapshot-expires", "3d", "--timestamp-expires", "-1h"])
        ts = parse_time(self.load("metadata", "timestamp.json")["signed"]["expires"])
        self.assertLess(abs((ts - now).total_seconds() + 3600), 120)
        snap = parse_time(self.load("metadata", "snapshot.json")["signed"]["expires"])
        self.assertLess(abs((snap - now).total_seconds() - 3 * 86400), 120)
        self.publish(extra=["--timestamp-expires", "1y"], code=2)

    def test_init_expires(self):
        a = self.key("a")[0]
        self.run_fota("repo", "init", "--repo", self.repo, "--root-key", a, "--targets-key", a,
                      "--snapshot-key", a, "--timestamp-key", a, "--expires", "bogus", code=2)
        self.run_fota("repo", "init", "--repo", self.repo, "--root-key", a, "--targets-key", a,
                      "--snapshot-key", a, "--timestamp-key", a, "--expires",
                      "2029-06-01T00:00:00Z")
        self.assertEqual(self.load("staged", "root.json")["signed"]["expires"],
                         "2029-06-01T00:00:00Z")

    # -- help and usage -----------------------------------------------------

    def test_help_everywhere(self):
        commands = [[], ["key"], ["key", "new"], ["key", "show"], ["repo"]] + [
            ["repo", c] for c in ("init", "sign", "add-target", "remove-target", "delegate",
                                  "bump", "rotate", "publish", "status")]
        for c in commands:
            with self.subTest(command=c):
                p = self.run_fota(*c, "--help")
                self.assertIn("Usage: fota", p.stdout)
                self.assertEqual(p.stderr, "")
                if c:
                    self.assertIn(" ".join(c), p.stdout)
        self.run_fota("repo", "publish", "-h")
        p = self.run_fota("--version")
        self.assertRegex(p.stdout, r"^fota \d+\.\d+\.\d+")

    def test_usage_errors(self):
        self.init_repo()
        for args in (["bogus"], ["key"], ["key", "bogus"], ["repo"], ["repo", "bogus"],
                     ["repo", "status", "--repo", self.repo, "--bogus"],
                     ["repo", "status", "--repo"],
                     ["repo", "status", "--repo", self.repo, "--repo", self.repo],
                     ["repo", "status", "--repo", self.repo, "extra"],
                     ["repo", "sign", "--repo", self.repo, "--key", self.keys["root"][0][0]],
                     ["repo", "sign", "root", "--repo", self.repo],
                     ["repo", "sign", "snapshot", "--repo", self.repo, "--key",
                      self.keys["snapshot"][0][0]],
                     ["repo", "publish", "--repo", self.repo],
                     ["repo", "bump", "timestamp", "--repo", self.repo],
                     ["repo", "add-target", "--repo", self.repo],
                     ["repo", "status", "--json=1", "--repo", self.repo]):
            with self.subTest(args=args):
                p = self.run_fota(*args, code=2)
                self.assertRegex(p.stderr, r"^fota: ")
                self.assertEqual(p.stderr.count("\n"), 1)
        # failures that are not usage errors
        p = self.run_fota("repo", "status", "--repo", self.path("nowhere"), code=1)
        self.assertRegex(p.stderr, r"^fota: repo status: .*not a fota repository")
        self.run_fota("repo", "sign", "nope", "--repo", self.repo, "--key",
                      self.keys["root"][0][0], code=1)
        self.run_fota("repo", "sign", "root", "--repo", self.repo, "--key",
                      self.path("missing.key"), code=1)
        # options in any order, "--opt=value" form
        self.run_fota("repo", "sign", "--key=" + self.keys["root"][0][0], "root",
                      "--repo=" + self.repo)

    def test_repository_lock(self):
        """A command waits while another holds the repository lock."""
        import fcntl
        import time
        self.init_repo()
        self.run_fota("repo", "status", "--repo", self.repo)
        with open(os.path.join(self.repo, ".fota-lock"), "r+") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            p = subprocess.Popen([FOTA, "repo", "status", "--repo", self.repo],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.5)
                self.assertIsNone(p.poll())
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN)
            self.assertEqual(p.wait(timeout=60), 0)

    def test_bad_key_files(self):
        self.init_repo()
        junk = self.write_file("junk.pub", b'{"keytype":"ed25519","keytype":"x"}')
        big = self.write_file("big.key", b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 70000)
        pub = self.keys["root"][0][0] + ".pub"
        for bad in (junk, big, pub):  # a .pub cannot sign
            with self.subTest(key=bad):
                self.run_fota("repo", "sign", "root", "--repo", self.repo, "--key", bad, code=1)
        self.run_fota("key", "show", junk, code=1)


if __name__ == "__main__":
    unittest.main()
