# SPDX-License-Identifier: Apache-2.0
"""Repositories built with the real `fota` CLI (docs: notes/cli.md), and the
ways a test tampers with what they publish.

Building goes through the program only (keys, init, sign, add-target,
delegate, rotate, bump, publish). Tampering works on the published files in
REPO/metadata: edit the JSON and write it back (re-signing it with a key of
the test's choosing when the test needs a validly signed but malicious
file), drop a signature, flip a byte, append bytes, or put an older copy
back in place. Re-signing uses pyca/cryptography directly, never fota code.
"""

import hashlib
import json
import os
import subprocess

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from securesystemslib import formats as sslib_formats

from harness import FOTA, ClientTestCase, clean_env

__all__ = ["Key", "Repo", "RepoTestCase", "FotaError", "canonical"]


def canonical(obj):
    return sslib_formats.encode_canonical(obj).encode("utf-8")


class FotaError(Exception):
    def __init__(self, proc):
        super().__init__("fota %s: exit %d\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(proc.args[1:]), proc.returncode, proc.stdout, proc.stderr))
        self.proc = proc


def run_fota(*args, check=True):
    proc = subprocess.run([FOTA] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                          timeout=120, text=True)
    if check and proc.returncode != 0:
        raise FotaError(proc)
    return proc


class Key:
    """A key pair made by `fota key new`: priv (PEM path), pub (.pub path),
    keyid, and the public key object."""

    def __init__(self, path, keytype="ed25519"):
        run_fota("key", "new", "--type", keytype, "--out", path)
        self.priv = path
        self.pub = path + ".pub"
        self.type = keytype
        with open(self.pub, "rb") as f:
            self.obj = json.loads(f.read())
        self.keyid = hashlib.sha256(canonical(self.obj)).hexdigest()
        self._signer = None

    def sign(self, data):
        """Raw signature over data, as TUF encodes it for this key type."""
        if self._signer is None:
            with open(self.priv, "rb") as f:
                self._signer = serialization.load_pem_private_key(f.read(), password=None)
        k = self._signer
        if isinstance(k, ed25519.Ed25519PrivateKey):
            return k.sign(data)
        if isinstance(k, ec.EllipticCurvePrivateKey):
            return k.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(k, rsa.RSAPrivateKey):
            return k.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                          hashes.SHA256())
        raise ValueError("unknown key type")

    def signature(self, signed):
        return {"keyid": self.keyid, "sig": self.sign(canonical(signed)).hex()}


class Repo:
    """A repository in `path` (what the server serves: path/metadata and
    path/targets), with its keys kept in `keys_dir` (never served)."""

    def __init__(self, path, keys_dir):
        self.path = path
        self.keys_dir = keys_dir
        self.metadata_dir = os.path.join(path, "metadata")
        self.targets_dir = os.path.join(path, "targets")
        os.makedirs(keys_dir, exist_ok=True)
        self.keys = {}
        self.role_keys = {}

    # -- building through the CLI --------------------------------------------------

    def fota(self, *args, check=True):
        return run_fota(*args, check=check)

    def key(self, name, keytype="ed25519"):
        """The key called name, made on first use (a Key passes through)."""
        if isinstance(name, Key):
            return name
        if name not in self.keys:
            self.keys[name] = Key(os.path.join(self.keys_dir, name + ".pem"), keytype)
        return self.keys[name]

    def init(self, root=("root",), targets=("targets",), snapshot=("snapshot",),
             timestamp=("timestamp",), thresholds=None, expires=None, consistent=True):
        """fota repo init with the named keys (made on first use)."""
        thresholds = thresholds or {}
        args = ["repo", "init", "--repo", self.path]
        for role, names in (("root", root), ("targets", targets), ("snapshot", snapshot),
                            ("timestamp", timestamp)):
            self.role_keys[role] = [self.key(n) for n in names]
            for k in self.role_keys[role]:
                args += ["--%s-key" % role, k.pub]
            if role in thresholds:
                args += ["--%s-threshold" % role, thresholds[role]]
        if expires is not None:
            args += ["--expires", expires]
        if not consistent:
            args.append("--no-consistent-snapshot")
        self.fota(*args)

    def sign(self, role, *key_names, check=True):
        args = ["repo", "sign", role, "--repo", self.path]
        for n in key_names:
            args += ["--key", self.key(n).priv]
        return self.fota(*args, check=check)

    def add_target(self, name, data, role=None, custom=None):
        """Add data as target `name`; returns its (length, sha256 hex)."""
        src_dir = os.path.join(os.path.dirname(self.keys_dir), "target-sources")
        os.makedirs(src_dir, exist_ok=True)
        src = os.path.join(src_dir, hashlib.sha256(name.encode()).hexdigest())
        with open(src, "wb") as f:
            f.write(data)
        args = ["repo", "add-target", src, "--repo", self.path, "--name", name]
        if role is not None:
            args += ["--role", role]
        if custom is not None:
            args += ["--custom", json.dumps(custom)]
        self.fota(*args)
        return len(data), hashlib.sha256(data).hexdigest()

    def remove_target(self, name, role=None):
        args = ["repo", "remove-target", name, "--repo", self.path]
        if role is not None:
            args += ["--role", role]
        self.fota(*args)

    def delegate(self, name, key_names, paths, from_role=None, threshold=None,
                 terminating=False):
        args = ["repo", "delegate", "--repo", self.path, "--name", name]
        if from_role is not None:
            args += ["--from", from_role]
        for n in key_names:
            args += ["--key", self.key(n).pub]
        if threshold is not None:
            args += ["--threshold", threshold]
        for p in paths:
            args += ["--path", p]
        if terminating:
            args.append("--terminating")
        self.fota(*args)

    def bump(self, role, expires=None):
        args = ["repo", "bump", role, "--repo", self.path]
        if expires is not None:
            args += ["--expires", expires]
        self.fota(*args)

    def rotate(self, role, add=(), remove=(), threshold=None, expires=None):
        args = ["repo", "rotate", role, "--repo", self.path]
        for n in add:
            args += ["--add-key", self.key(n).pub]
        for n in remove:
            args += ["--remove-key", self.key(n).pub]
        if threshold is not None:
            args += ["--threshold", threshold]
        if expires is not None:
            args += ["--expires", expires]
        self.fota(*args)
        gone = {self.key(n).keyid for n in remove}
        keys = [k for k in self.role_keys[role] if k.keyid not in gone]
        self.role_keys[role] = keys + [self.key(n) for n in add]

    def publish(self, snapshot=None, timestamp=None, snapshot_expires=None,
                timestamp_expires=None, check=True):
        """fota repo publish with the role's current keys (or the named ones)."""
        args = ["repo", "publish", "--repo", self.path]
        snap = [self.key(n) for n in snapshot] if snapshot else self.role_keys["snapshot"]
        ts = [self.key(n) for n in timestamp] if timestamp else self.role_keys["timestamp"]
        for k in snap:
            args += ["--snapshot-key", k.priv]
        for k in ts:
            args += ["--timestamp-key", k.priv]
        if snapshot_expires is not None:
            args += ["--snapshot-expires", snapshot_expires]
        if timestamp_expires is not None:
            args += ["--timestamp-expires", timestamp_expires]
        return self.fota(*args, check=check)

    def standard(self, files=None, expires=None, timestamp_expires=None,
                 snapshot_expires=None, consistent=True, **init_kw):
        """A one-key-per-role repository, root and targets signed, published
        once: root v1, targets v1, snapshot v1, timestamp v1. files maps
        target name -> bytes; other keywords go to init()."""
        self.init(expires=expires, consistent=consistent, **init_kw)
        for name, data in (files or {}).items():
            self.add_target(name, data)
        self.sign("root", *self.role_keys["root"])
        self.sign("targets", *self.role_keys["targets"])
        self.publish(snapshot_expires=snapshot_expires, timestamp_expires=timestamp_expires)
        return self

    # -- reading what is published -------------------------------------------------

    def file(self, name):
        return os.path.join(self.metadata_dir, name)

    def read(self, name):
        with open(self.file(name), "rb") as f:
            return f.read()

    def write(self, name, data):
        with open(self.file(name), "wb") as f:
            f.write(data)

    def load(self, name):
        return json.loads(self.read(name))

    def save(self, name, env):
        """Write an envelope back as canonical JSON, as fota publishes it."""
        self.write(name, canonical(env))

    def version(self, name):
        return self.load(name)["signed"]["version"]

    def target_file(self, name):
        """Served path of a target added as name (consistent snapshot form)."""
        d, sep, base = name.rpartition("/")
        meta = None
        for fname in sorted(os.listdir(self.metadata_dir)):
            if fname.endswith(".json") and not fname[0].isdigit() and fname not in (
                    "root.json", "snapshot.json", "timestamp.json"):
                signed = self.load(fname)["signed"]
                if name in signed.get("targets", {}):
                    meta = signed["targets"][name]
        if meta is None:
            raise KeyError(name)
        return os.path.join(self.targets_dir, d, "%s.%s" % (meta["hashes"]["sha256"], base))

    # -- tampering -------------------------------------------------------------------

    def edit(self, names, fn, sign_with=None):
        """Apply fn to signed of each of names (files with the same content,
        e.g. "3.snapshot.json" and "snapshot.json") and write them back.
        With sign_with (key names), the signatures are replaced by theirs;
        without, the old signatures stay (and no longer verify)."""
        if isinstance(names, str):
            names = [names]
        env = self.load(names[0])
        fn(env["signed"])
        if sign_with is not None:
            env["signatures"] = [self.key(n).signature(env["signed"]) for n in sign_with]
        for n in names:
            self.save(n, env)
        return env

    def rechain(self):
        """After tampering with targets-role files: make the currently served
        snapshot and timestamp name them again (same versions, new lengths
        and hashes where listed) and re-sign both with the role keys, so
        that only the tampered file itself is at fault."""
        import urllib.parse
        ts = self.load("timestamp.json")["signed"]
        snap_v = ts["meta"]["snapshot.json"]["version"]
        consistent = os.path.exists(self.file("%d.snapshot.json" % snap_v))
        snap_name = "%d.snapshot.json" % snap_v if consistent else "snapshot.json"

        def fix_snapshot(signed):
            for role_file, mf in signed["meta"].items():
                enc = urllib.parse.quote(role_file[:-len(".json")], safe="") + ".json"
                fname = "%d.%s" % (mf["version"], enc) if consistent else enc
                if not os.path.exists(self.file(fname)):
                    continue
                data = self.read(fname)
                if "length" in mf:
                    mf["length"] = len(data)
                if "hashes" in mf:
                    mf["hashes"] = {"sha256": hashlib.sha256(data).hexdigest()}
        names = [snap_name] + (["snapshot.json"] if consistent else [])
        self.edit(names, fix_snapshot, sign_with=self.role_keys["snapshot"])
        data = self.read(snap_name)

        def fix_timestamp(signed):
            mf = signed["meta"]["snapshot.json"]
            if "length" in mf:
                mf["length"] = len(data)
            if "hashes" in mf:
                mf["hashes"] = {"sha256": hashlib.sha256(data).hexdigest()}
        self.edit("timestamp.json", fix_timestamp, sign_with=self.role_keys["timestamp"])

    def resign(self, names, key_names):
        return self.edit(names, lambda s: None, sign_with=key_names)

    def drop_signature(self, names, index=-1):
        if isinstance(names, str):
            names = [names]
        env = self.load(names[0])
        del env["signatures"][index]
        for n in names:
            self.save(n, env)

    def flip_byte(self, name, offset=None):
        data = bytearray(self.read(name))
        if offset is None:
            # Inside a signature: the JSON stays valid, the signature does not.
            offset = data.index(b'"sig":"') + len(b'"sig":"') + 4
        data[offset] = ord("0") if data[offset] != ord("0") else ord("1")
        self.write(name, bytes(data))

    def append(self, name, extra):
        self.write(name, self.read(name) + extra)

    def snapshot_files(self):
        """Copy of every published metadata file, to put back later."""
        out = {}
        for fname in os.listdir(self.metadata_dir):
            out[fname] = self.read(fname)
        return out

    def meta_for(self, name):
        """{"version","length","hashes":{"sha256"}} of a published file."""
        data = self.read(name)
        return {"version": json.loads(data)["signed"]["version"], "length": len(data),
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}


class RepoTestCase(ClientTestCase):
    """ClientTestCase with an empty fota repository served at /repo/."""

    def setUp(self):
        super().setUp()
        if not os.access(FOTA, os.X_OK):
            self.fail("%s is not built (set FOTA_BIN_DIR or run make)" % FOTA)
        self.use_repo("repo")
        self.repo = Repo(os.path.join(self.serve_dir, "repo"), os.path.join(self.tmp, "keys"))

    def assertUnchanged(self, before):
        """The metadata dir holds exactly the files (and bytes) it held."""
        self.assertEqual(self.metadata_bytes(), before)
