# SPDX-License-Identifier: Apache-2.0
"""A TUF repository written and signed without any fota code.

Keys are made and signatures computed by securesystemslib (which uses
pyca/cryptography underneath); canonical JSON comes from securesystemslib
too. The published files are pretty-printed (not canonical), as python-tuf
writes them, so a client that verifies the canonical form of "signed" but
stores the bytes it received is exercised on both counts.

This is the independent half of the interop tests: whatever fota's own tools
get wrong in the same way as fota's client cannot hide here.
"""

import datetime
import hashlib
import json
import os
import urllib.parse

from securesystemslib import formats as sslib_formats
from securesystemslib import keys as sslib_keys

SPEC_VERSION = "1.0.31"

_GENERATORS = {
    "ed25519": sslib_keys.generate_ed25519_key,
    "ecdsa": sslib_keys.generate_ecdsa_key,
    "rsa": sslib_keys.generate_rsa_key,
}


def canonical(obj):
    return sslib_formats.encode_canonical(obj).encode("utf-8")


def expiry(delta):
    t = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + delta
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_name(name):
    """Role name or target path as one file name (everything but
    A-Z a-z 0-9 _ . - ~ percent-encoded, upper-case hex)."""
    return urllib.parse.quote(name, safe="")


class Key:
    def __init__(self, keytype="ed25519"):
        self.priv = _GENERATORS[keytype]()
        self.obj = {
            "keytype": self.priv["keytype"],
            "scheme": self.priv["scheme"],
            "keyval": {"public": self.priv["keyval"]["public"]},
        }
        # The key id as the TUF specification defines it: sha256 of the
        # canonical key object (not securesystemslib's legacy key id).
        self.keyid = hashlib.sha256(canonical(self.obj)).hexdigest()

    def sign(self, signed):
        sig = sslib_keys.create_signature(self.priv, canonical(signed))
        return {"keyid": self.keyid, "sig": sig["sig"]}


def envelope(signed, keys):
    return {"signatures": [k.sign(signed) for k in keys], "signed": signed}


def serialise(env):
    # Pretty-printed like python-tuf's JSONSerializer(compact=False).
    return json.dumps(env, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")


class SslibRepo:
    """Top-level roles plus optional delegations from "targets", one key
    type per role as asked. Call publish() after any change."""

    def __init__(self, root_dir, key_types=None, consistent_snapshot=True,
                 snapshot_meta_hashes=False):
        key_types = key_types or {}
        self.dir = root_dir
        self.metadata_dir = os.path.join(root_dir, "metadata")
        self.targets_dir = os.path.join(root_dir, "targets")
        os.makedirs(self.metadata_dir, exist_ok=True)
        os.makedirs(self.targets_dir, exist_ok=True)
        self.consistent = consistent_snapshot
        self.snapshot_meta_hashes = snapshot_meta_hashes
        self.keys = {r: [Key(key_types.get(r, "ed25519"))]
                     for r in ("root", "targets", "snapshot", "timestamp")}
        self.root_version = 0
        self.published_root_keys = None
        self.versions = {"targets": 0, "snapshot": 0, "timestamp": 0}
        self.targets = {}        # path -> target info
        self.delegations = []    # [(name, Key, paths, terminating)]
        self.delegated = {}      # name -> {path: info}
        self.delegated_versions = {}
        self.extra_root_fields = {}
        self.publish_root()

    # -- root ------------------------------------------------------------------

    def root_signed(self):
        keys = {}
        roles = {}
        for role, ks in self.keys.items():
            for k in ks:
                obj = dict(k.obj)
                # Older writers add this field; a client must ignore it but
                # keep it in the canonical form it verifies.
                obj["keyid_hash_algorithms"] = ["sha256", "sha512"]
                keys[k.keyid] = obj
            roles[role] = {"keyids": [k.keyid for k in ks], "threshold": len(ks)}
        signed = {
            "_type": "root",
            "spec_version": SPEC_VERSION,
            "version": self.root_version,
            "expires": expiry(datetime.timedelta(days=365)),
            "consistent_snapshot": self.consistent,
            "keys": keys,
            "roles": roles,
        }
        signed.update(self.extra_root_fields)
        return signed

    def publish_root(self):
        """Write the next root version, signed by the previous root's keys
        and the new ones."""
        self.root_version += 1
        signers = {k.keyid: k for k in self.keys["root"]}
        if self.published_root_keys:
            for k in self.published_root_keys:
                signers[k.keyid] = k
        data = serialise(envelope(self.root_signed(), list(signers.values())))
        self._write(self.metadata_dir, "%d.root.json" % self.root_version, data)
        self._write(self.metadata_dir, "root.json", data)
        self.published_root_keys = list(self.keys["root"])
        self.root_bytes = data
        return data

    def rotate(self, role, keytype="ed25519"):
        self.keys[role] = [Key(keytype)]

    # -- targets -----------------------------------------------------------------

    def add_target(self, path, data, role="targets", custom=None):
        info = {
            "length": len(data),
            "hashes": {
                "sha256": hashlib.sha256(data).hexdigest(),
                "sha512": hashlib.sha512(data).hexdigest(),
            },
        }
        if custom is not None:
            info["custom"] = custom
        if role == "targets":
            self.targets[path] = info
        else:
            self.delegated[role][path] = info
        d, sep, base = path.rpartition("/")
        self._write(os.path.join(self.targets_dir, d) if d else self.targets_dir,
                    "%s.%s" % (info["hashes"]["sha256"], base), data)
        self._write(os.path.join(self.targets_dir, d) if d else self.targets_dir, base, data)
        return info

    def delegate(self, name, paths, keytype="ed25519", terminating=False):
        self.delegations.append((name, Key(keytype), paths, terminating))
        self.delegated[name] = {}
        self.delegated_versions[name] = 0

    # -- publishing ---------------------------------------------------------------

    def _targets_signed(self, version, targets, delegations=None):
        signed = {
            "_type": "targets",
            "spec_version": SPEC_VERSION,
            "version": version,
            "expires": expiry(datetime.timedelta(days=90)),
            "targets": targets,
            "x-fota-interop-unknown-field": {"kept": True},
        }
        if delegations:
            signed["delegations"] = {
                "keys": {k.keyid: k.obj for _, k, _, _ in delegations},
                "roles": [
                    {"name": n, "keyids": [k.keyid], "threshold": 1, "paths": p,
                     "terminating": t}
                    for n, k, p, t in delegations
                ],
            }
        return signed

    def _versioned(self, name, version):
        return "%d.%s" % (version, name) if self.consistent else name

    def publish(self):
        """Publish targets, every delegated role, snapshot and timestamp,
        each with a new version."""
        meta = {}
        for name, key, _, _ in self.delegations:
            self.delegated_versions[name] += 1
            v = self.delegated_versions[name]
            data = serialise(envelope(self._targets_signed(v, self.delegated[name]), [key]))
            fname = encode_name(name) + ".json"
            self._write(self.metadata_dir, self._versioned(fname, v), data)
            self._write(self.metadata_dir, fname, data)
            meta[name + ".json"] = self._meta(v, data)
        self.versions["targets"] += 1
        v = self.versions["targets"]
        data = serialise(envelope(self._targets_signed(v, self.targets, self.delegations),
                                  self.keys["targets"]))
        self._write(self.metadata_dir, self._versioned("targets.json", v), data)
        self._write(self.metadata_dir, "targets.json", data)
        meta["targets.json"] = self._meta(v, data)

        self.versions["snapshot"] += 1
        v = self.versions["snapshot"]
        snap = {
            "_type": "snapshot",
            "spec_version": SPEC_VERSION,
            "version": v,
            "expires": expiry(datetime.timedelta(days=7)),
            "meta": meta,
        }
        data = serialise(envelope(snap, self.keys["snapshot"]))
        self._write(self.metadata_dir, self._versioned("snapshot.json", v), data)
        self._write(self.metadata_dir, "snapshot.json", data)

        self.versions["timestamp"] += 1
        ts = {
            "_type": "timestamp",
            "spec_version": SPEC_VERSION,
            "version": self.versions["timestamp"],
            "expires": expiry(datetime.timedelta(days=1)),
            "meta": {"snapshot.json": {
                "version": v,
                "length": len(data),
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            }},
        }
        self._write(self.metadata_dir, "timestamp.json",
                    serialise(envelope(ts, self.keys["timestamp"])))

    def _meta(self, version, data):
        m = {"version": version}
        if self.snapshot_meta_hashes:
            m["length"] = len(data)
            m["hashes"] = {"sha256": hashlib.sha256(data).hexdigest()}
        return m

    @staticmethod
    def _write(d, name, data):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
