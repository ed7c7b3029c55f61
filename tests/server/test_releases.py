# SPDX-License-Identifier: Apache-2.0
"""Publishing through fota-server (server/releases.c, server/tuf_online.c,
server/init_cmd.c) and the operator CLI that talks to it (tools/fota/api_cmd.c).

Each test reads as: a repository made offline with `fota repo`, a server
initialised from it (`fota-server init`), then an operator action (an image
upload, a signed targets POST, a `fota` command) and what must follow:
  - for a publish: the files the server serves are what a TUF client accepts
    (fota-tuf-client refreshes and downloads through /repo/), targets.json is
    byte for byte the canonical form of what the operator signed, snapshot
    and timestamp point at the served bytes;
  - for a refusal: the exact status and error code, and every file under
    data/repo and every state row in the database exactly as before.

Run: FOTA_SERVER_BIN=build/bin/fota-server FOTA_BIN=build/bin/fota \
     FOTA_TUF_CLIENT_BIN=build/bin/fota-tuf-client /usr/bin/python3 -m unittest -v test_releases
"""

import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from cryptography.hazmat.primitives import serialization

from devclient import (FOTA_BIN, SERVER_BIN, Device, Server, canonical, free_port, iso,
                       make_repo, run)

CLIENT_BIN = os.environ.get("FOTA_TUF_CLIENT_BIN") or os.path.join(
    os.path.dirname(FOTA_BIN), "fota-tuf-client")


def clean_env(**extra):
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") or \
                k in ("FOTA_TOKEN", "FOTA_SERVER"):
            del env[k]
    env.update(extra)
    return env


def tree(root):
    """{relative path: bytes} of every file under root (links recorded as such)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[rel] = f.read()
    return out


def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


class ReleaseTestCase(unittest.TestCase):
    """A published repository (targets v1, empty) and a server made from it;
    tokens of every scope."""

    maxDiff = None
    server_extra = ()
    start_server = True

    def setUp(self):
        for b in (FOTA_BIN, SERVER_BIN, CLIENT_BIN):
            if not os.access(b, os.X_OK):
                self.fail("%s is not built" % b)
        self.tmp = tempfile.mkdtemp(prefix="fota-rel-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.repo = self.make_repo(self.tmp)
        self.srv = Server(self.tmp, self.repo, extra=self.server_extra)
        # (cleanups run last first: stop, then look at how it ended)
        self.addCleanup(self.check_server_exit)
        self.addCleanup(self.srv.stop)
        self.meta = os.path.join(self.srv.data, "repo", "metadata")
        self.targets_dir = os.path.join(self.srv.data, "repo", "targets")
        if self.start_server:
            self.srv.start()
            self.deploy = self.srv.token_new("deploy", "ci")
            self.reader = self.srv.token_new("read", "dashboard")
            self.token_file = os.path.join(self.tmp, "deploy.token")
            with open(self.token_file, "w") as f:
                f.write(self.deploy + "\n")

    def make_repo(self, tmp):
        return make_repo(tmp)

    def check_server_exit(self):
        """A clean stop: exit 0 on SIGTERM and nothing from the sanitizers
        (a build with ASan reports leaks at exit)."""
        if self.srv.proc is None:
            return
        log = self.srv.read_log()
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error", log)
        self.assertEqual(self.srv.proc.returncode, 0, log[-4000:])

    # ---- the offline side --------------------------------------------------------

    def image(self, name, data):
        path = os.path.join(self.tmp, "img-" + name.replace("/", "_"))
        with open(path, "wb") as f:
            f.write(data)
        return path

    def stage(self, name, data, custom=None, expires=None):
        """add-target + sign targets; returns (image path, staged envelope)."""
        path = self.image(name, data)
        args = [FOTA_BIN, "repo", "add-target", path, "--repo", self.repo["repo"],
                "--name", name]
        if custom is not None:
            args += ["--custom", json.dumps(custom)]
        run(args)
        if expires is not None:
            run([FOTA_BIN, "repo", "bump", "targets", "--repo", self.repo["repo"],
                 "--expires", expires])
        run([FOTA_BIN, "repo", "sign", "targets", "--repo", self.repo["repo"], "--key",
             self.repo["keys"]["targets"]])
        return path, load(self.staged_targets)

    @property
    def staged_targets(self):
        return os.path.join(self.repo["repo"], "staged", "targets.json")

    def sign_targets(self, signed, key_path=None):
        """An envelope of signed made here (python-cryptography), by the
        targets key or another one."""
        key_path = key_path or self.repo["keys"]["targets"]
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        keyid = hashlib.sha256(canonical(load(key_path + ".pub"))).hexdigest()
        return {"signed": signed,
                "signatures": [{"keyid": keyid, "sig": key.sign(canonical(signed)).hex()}]}

    def targets_signed(self, version=2, targets=None, expires=None):
        return {"_type": "targets", "spec_version": "1.0.31", "version": version,
                "expires": expires or iso(time.time() + 86400), "targets": targets or {}}

    @staticmethod
    def entry(data, custom=None, **over):
        e = {"length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest(),
                                             "sha512": hashlib.sha512(data).hexdigest()}}
        if custom is not None:
            e["custom"] = custom
        e.update(over)
        return e

    # ---- the server side ---------------------------------------------------------

    def upload(self, name, data, token=None, path=None):
        return self.srv.api("PUT", path or "/api/v1/images/" + name, raw=data,
                            token=token or self.deploy, content_type="application/octet-stream")

    def publish(self, env, token=None):
        return self.srv.api("POST", "/api/v1/releases", body={"targets": env},
                            token=token or self.deploy)

    def state(self):
        """Everything a refused request must leave as it was."""
        return tree(os.path.join(self.srv.data, "repo")), self.srv.snapshot()

    def assertRefused(self, result, status, code, before):
        st, value, _ = result
        self.assertEqual((st, (value or {}).get("error")), (status, code), value)
        self.assertEqual(self.state(), before)

    def version(self, role):
        return load(os.path.join(self.meta, role + ".json"))["signed"]["version"]

    # ---- a device's view ---------------------------------------------------------

    def client(self, *args, check=True):
        md = os.path.join(self.tmp, "client", "metadata")
        if not os.path.exists(md):
            os.makedirs(md)
            os.makedirs(os.path.join(self.tmp, "client", "targets"))
            run([CLIENT_BIN, "--metadata-dir", md, "init",
                 os.path.join(self.repo["repo"], "metadata", "1.root.json")])
        base = "http://127.0.0.1:%d/repo/" % self.srv.port
        p = subprocess.run([CLIENT_BIN, "--metadata-dir", md, "--metadata-url",
                            base + "metadata/"] + list(args), capture_output=True, text=True,
                           timeout=60, env=clean_env())
        if check and p.returncode != 0:
            self.fail("fota-tuf-client %s: %d\n%s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def download(self, name):
        base = "http://127.0.0.1:%d/repo/targets/" % self.srv.port
        self.client("--target-name", name, "--target-base-url", base, "--target-dir",
                    os.path.join(self.tmp, "client", "targets"), "download")
        with open(os.path.join(self.tmp, "client", "targets",
                               name.replace("/", "%2F")), "rb") as f:
            return f.read()

    # ---- the CLI -----------------------------------------------------------------

    def fota(self, *args, token_env=None, expect=0):
        env = clean_env()
        if token_env is not None:
            env["FOTA_TOKEN"] = token_env
        p = subprocess.run([FOTA_BIN] + [str(a) for a in args], capture_output=True, text=True,
                           timeout=120, env=env)
        if expect is not None and p.returncode != expect:
            self.fail("fota %s: exit %d (expected %d)\nstdout:\n%s\nstderr:\n%s"
                      % (" ".join(map(str, args)), p.returncode, expect, p.stdout, p.stderr))
        return p

    def api_args(self):
        return ["--server", "http://127.0.0.1:%d" % self.srv.port, "--token-file",
                self.token_file]


# ---- publishing ---------------------------------------------------------------------

class TestPublish(ReleaseTestCase):

    def test_push_end_to_end(self):
        data = os.urandom(5000)
        custom = {"hardware_ids": ["board-x"], "version": "1.1.0", "security_counter": 2}
        path, env = self.stage("board-x/fw-1.1.0.bin", data, custom)
        p = self.fota("release", "push", *self.api_args(), "--targets", self.staged_targets,
                      "--repo", self.repo["repo"], path, "--json")
        out = json.loads(p.stdout)
        self.assertEqual(out["published"]["targets_version"], 2)
        self.assertEqual(out["published"]["snapshot_version"], 2)
        self.assertEqual(out["published"]["timestamp_version"], 2)
        sha = hashlib.sha256(data).hexdigest()
        self.assertEqual(out["uploaded"][0]["hashes"]["sha256"], sha)
        self.assertEqual(out["uploaded"][0]["hashes"]["sha512"], hashlib.sha512(data).hexdigest())
        self.assertEqual(out["uploaded"][0]["path"], "targets/board-x/%s.fw-1.1.0.bin" % sha)
        rel = out["published"]["releases"][0]
        self.assertEqual((rel["target"], rel["version"], rel["security_counter"],
                          rel["hardware_ids"], rel["length"]),
                         ("board-x/fw-1.1.0.bin", "1.1.0", 2, ["board-x"], len(data)))

        # What is served: targets exactly as signed, in canonical form; snapshot
        # and timestamp describe the served bytes and carry the online keys'
        # signatures (the client checks those).
        with open(os.path.join(self.meta, "targets.json"), "rb") as f:
            targets_bytes = f.read()
        self.assertEqual(targets_bytes, canonical(env))
        with open(os.path.join(self.meta, "2.targets.json"), "rb") as f:
            self.assertEqual(f.read(), targets_bytes)
        snap = load(os.path.join(self.meta, "snapshot.json"))
        self.assertEqual(snap["signed"]["meta"]["targets.json"],
                         {"version": 2, "length": len(targets_bytes),
                          "hashes": {"sha256": hashlib.sha256(targets_bytes).hexdigest()}})
        with open(os.path.join(self.meta, "snapshot.json"), "rb") as f:
            snap_bytes = f.read()
        self.assertEqual(snap_bytes, canonical(snap))
        ts = load(os.path.join(self.meta, "timestamp.json"))
        self.assertEqual(ts["signed"]["meta"]["snapshot.json"],
                         {"version": 2, "length": len(snap_bytes),
                          "hashes": {"sha256": hashlib.sha256(snap_bytes).hexdigest()}})

        # A device sees the release through the server's /repo/.
        self.assertEqual(self.download("board-x/fw-1.1.0.bin"), data)

        # The release is recorded, readable with a read token.
        st, v, _ = self.srv.api("GET", "/api/v1/releases", token=self.reader)
        self.assertEqual(st, 200)
        self.assertEqual([r["id"] for r in v["releases"]], [rel["id"]])
        st, v, _ = self.srv.api("GET", "/api/v1/releases/" + rel["id"], token=self.reader)
        self.assertEqual((st, v), (200, rel))
        st, v, _ = self.srv.api("GET", "/api/v1/releases/0123456789abcdef", token=self.reader)
        self.assertEqual((st, v["error"]), (404, "not_found"))
        # ... and audited.
        st, v, _ = self.srv.api("GET", "/api/v1/audit")
        actions = [(e["actor"], e["action"]) for e in v["entries"]]
        self.assertIn(("ci", "image.upload"), actions)
        self.assertIn(("ci", "release.publish"), actions)

        # A second release on top: v3, the first release still listed.
        data2 = os.urandom(3000)
        custom2 = {"hardware_ids": ["board-x", "board-y"], "version": "1.2.0",
                   "security_counter": 3}
        path2, _ = self.stage("board-x/fw-1.2.0.bin", data2, custom2)
        p = self.fota("release", "push", *self.api_args(), "--repo", self.repo["repo"], path2)
        self.assertIn("published targets v3 (snapshot v3, timestamp v3)", p.stdout)
        self.assertEqual(self.download("board-x/fw-1.2.0.bin"), data2)
        p = self.fota("release", "list", *self.api_args(), "--json")
        self.assertEqual(len(json.loads(p.stdout)["releases"]), 2)
        p = self.fota("release", "list", *self.api_args())
        self.assertTrue(p.stdout.startswith("ID "), p.stdout)
        self.assertIn("board-x,board-y", p.stdout)

    def test_push_with_repo_records_published_targets(self):
        data = os.urandom(1000)
        path, _ = self.stage("fw-a.bin", data, {"hardware_ids": ["hw"], "version": "2.0.0",
                                                "security_counter": 1})
        self.fota("release", "push", *self.api_args(), "--repo", self.repo["repo"], path)
        state = load(os.path.join(self.repo["repo"], "fota-repo.json"))
        with open(os.path.join(self.meta, "targets.json"), "rb") as f:
            served = f.read()
        self.assertEqual(state["published"]["targets"],
                         {"version": 2, "length": len(served),
                          "sha256": hashlib.sha256(served).hexdigest()})
        # The next edit stages v3, which the server accepts.
        path2, env = self.stage("fw-b.bin", os.urandom(500))
        self.assertEqual(env["signed"]["version"], 3)
        self.fota("release", "push", *self.api_args(), "--repo", self.repo["repo"], path2)
        self.assertEqual(self.version("targets"), 3)
        self.client("refresh")

    def test_upload_is_content_addressed_and_idempotent(self):
        data = b"\x00firmware\xff" * 100
        st, v, _ = self.upload("a/b/c/fw.bin", data)
        self.assertEqual(st, 201, v)
        sha = hashlib.sha256(data).hexdigest()
        stored = os.path.join(self.targets_dir, "a", "b", "c", sha + ".fw.bin")
        with open(stored, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(v, {"name": "a/b/c/fw.bin", "length": len(data),
                             "hashes": {"sha256": sha,
                                        "sha512": hashlib.sha512(data).hexdigest()},
                             "path": "targets/a/b/c/%s.fw.bin" % sha})
        st, v2, _ = self.upload("a/b/c/fw.bin", data)
        self.assertEqual((st, v2), (201, v))
        # Names with bytes a URL must encode arrive decoded.
        st, v, _ = self.upload("x", b"", path="/api/v1/images/dir%20one/f%C3%A9.bin")
        self.assertEqual((st, v["name"]), (201, "dir one/f\u00e9.bin"))
        self.assertEqual(sorted(os.listdir(os.path.join(self.targets_dir, "dir one"))),
                         [hashlib.sha256(b"").hexdigest() + ".f\u00e9.bin"])
        # No temp file is left anywhere.
        for rel in tree(self.targets_dir):
            self.assertNotIn(".fota+tmp.", rel)

    def test_publish_without_releases_and_unchanged_images(self):
        """A target without custom release fields is published but is no
        release; a later version listing it again does not re-hash it."""
        data = os.urandom(2048)
        self.upload("plain.bin", data)
        env = self.sign_targets(self.targets_signed(2, {"plain.bin": self.entry(data)}))
        st, v, _ = self.publish(env)
        self.assertEqual((st, v["releases"]), (201, []))
        env3 = self.sign_targets(self.targets_signed(3, {"plain.bin": self.entry(data)}))
        st, v, _ = self.publish(env3)
        self.assertEqual(st, 201, v)
        self.assertEqual(self.version("targets"), 3)
        self.client("refresh")


class TestPublishPlainNames(ReleaseTestCase):
    """A repository without consistent snapshots: clients fetch targets by
    their plain names, which the server links to the uploaded images."""

    def make_repo(self, tmp):
        keys = {}
        for role in ("root", "targets", "snapshot", "timestamp"):
            keys[role] = os.path.join(tmp, role + ".key")
            run([FOTA_BIN, "key", "new", "--type", "ed25519", "--out", keys[role]])
        repo = os.path.join(tmp, "repo")
        run([FOTA_BIN, "repo", "init", "--repo", repo, "--root-key", keys["root"] + ".pub",
             "--targets-key", keys["targets"] + ".pub", "--snapshot-key", keys["snapshot"],
             "--timestamp-key", keys["timestamp"], "--no-consistent-snapshot"])
        run([FOTA_BIN, "repo", "sign", "root", "--repo", repo, "--key", keys["root"]])
        run([FOTA_BIN, "repo", "sign", "targets", "--repo", repo, "--key", keys["targets"]])
        run([FOTA_BIN, "repo", "publish", "--repo", repo, "--snapshot-key", keys["snapshot"],
             "--timestamp-key", keys["timestamp"]])
        return {"repo": repo, "keys": keys, "tmp": tmp}

    def test_plain_names_linked(self):
        one, two = os.urandom(900), os.urandom(950)
        path, _ = self.stage("dir/fw.bin", one)
        self.fota("release", "push", *self.api_args(), "--repo", self.repo["repo"], path)
        self.assertEqual(self.download("dir/fw.bin"), one)
        with open(os.path.join(self.targets_dir, "dir", "fw.bin"), "rb") as f:
            self.assertEqual(f.read(), one)
        # the same name, a new image: the plain name follows the release
        run([FOTA_BIN, "repo", "remove-target", "dir/fw.bin", "--repo", self.repo["repo"]])
        path, _ = self.stage("dir/fw.bin", two)
        self.fota("release", "push", *self.api_args(), "--repo", self.repo["repo"], path)
        with open(os.path.join(self.targets_dir, "dir", "fw.bin"), "rb") as f:
            self.assertEqual(f.read(), two)
        self.assertEqual(self.download("dir/fw.bin"), two)


# ---- refusals -------------------------------------------------------------------------

class TestMetadataCap(ReleaseTestCase):
    """POST /api/v1/releases has its own cap (max_metadata), not max_body:
    a targets file with a few hundred entries is well over 64 KiB."""
    server_extra = ("--max-metadata", "256K")

    def many(self, version, n):
        return self.sign_targets(self.targets_signed(version, {
            "board-a/fw-%04d.bin" % i: self.entry(b"image %d" % i) for i in range(n)}))

    def test_big_targets_published(self):
        for i in range(400):
            st, v, _ = self.upload("board-a/fw-%04d.bin" % i, b"image %d" % i)
            self.assertEqual(st, 201, v)
        env = self.many(2, 400)
        self.assertGreater(len(json.dumps({"targets": env})), 64 * 1024)
        st, v, _ = self.publish(env)
        self.assertEqual(st, 201, v)
        self.assertEqual(self.version("targets"), 2)

    def test_long_token_name_audited_whole(self):
        """Token names are up to 128 bytes; the audit actor keeps all of them."""
        name = "deploy-" + "n" * 121
        token = self.srv.token_new("deploy", name)
        st, v, _ = self.upload("long.bin", b"long name", token=token)
        self.assertEqual(st, 201, v)
        st, v, _ = self.srv.api("GET", "/api/v1/audit?limit=1000")
        self.assertEqual(st, 200, v)
        actors = [e["actor"] for e in v["entries"] if e["action"] == "image.upload"]
        self.assertEqual(actors, [name])

    def test_over_max_metadata_refused(self):
        before = self.state()
        env = self.many(2, 1200)
        self.assertGreater(len(json.dumps({"targets": env})), 256 * 1024)
        self.assertRefused(self.publish(env), 413, "too_large", before)


class TestRefusals(ReleaseTestCase):
    server_extra = ("--max-image", "4K")

    def setUp(self):
        super().setUp()
        self.data = os.urandom(1500)
        st, _, _ = self.upload("fw.bin", self.data)
        self.assertEqual(st, 201)
        self.good = self.targets_signed(2, {"fw.bin": self.entry(self.data)})

    def test_wrong_key(self):
        other = os.path.join(self.tmp, "other.key")
        run([FOTA_BIN, "key", "new", "--type", "ed25519", "--out", other])
        before = self.state()
        self.assertRefused(self.publish(self.sign_targets(self.good, other)), 400,
                           "bad_signature", before)
        # signed by the snapshot key (a key of root, but not for targets)
        self.assertRefused(self.publish(self.sign_targets(self.good,
                                                          self.repo["keys"]["snapshot"])),
                           400, "bad_signature", before)
        # no signature at all; a signature over something else
        env = self.sign_targets(self.good)
        self.assertRefused(self.publish(dict(env, signatures=[])), 400, "bad_signature", before)
        tampered = json.loads(json.dumps(env))
        tampered["signed"]["version"] = 7
        self.assertRefused(self.publish(tampered), 400, "bad_signature", before)

    def test_version_not_increasing(self):
        before = self.state()
        for v in (1, 0):
            signed = dict(self.good, version=v)
            res = self.publish(self.sign_targets(signed))
            if v == 0:
                self.assertRefused(res, 400, "bad_metadata", before)
            else:
                self.assertRefused(res, 409, "version", before)
        # the published file itself, sent again
        self.assertRefused(self.publish(load(os.path.join(self.meta, "1.targets.json"))), 409,
                           "version", before)
        # a version accepted once is not accepted twice
        self.assertEqual(self.publish(self.sign_targets(self.good))[0], 201)
        before = self.state()
        self.assertRefused(self.publish(self.sign_targets(self.good)), 409, "version", before)

    def test_expired(self):
        before = self.state()
        signed = self.targets_signed(2, {"fw.bin": self.entry(self.data)},
                                     expires=iso(time.time() - 60))
        self.assertRefused(self.publish(self.sign_targets(signed)), 400, "expired", before)
        # through the CLI: `fota repo bump --expires` in the past
        path, _ = self.stage("fw2.bin", b"x" * 10, expires="-1h")
        p = self.fota("release", "push", *self.api_args(), "--targets", self.staged_targets,
                      path, expect=1)
        self.assertIn("HTTP 400 expired", p.stderr)
        before_files, _ = before
        after_files, _ = self.state()
        # only the uploaded image was added
        self.assertEqual(set(after_files) - set(before_files),
                         {"targets/%s.fw2.bin" % hashlib.sha256(b"x" * 10).hexdigest()})
        self.assertEqual({k: v for k, v in after_files.items() if k in before_files},
                         before_files)

    def test_image_missing_or_different(self):
        before = self.state()
        other = os.urandom(1500)
        cases = [
            # never uploaded
            ({"missing.bin": self.entry(other)}, 409, "target_missing"),
            # uploaded under another name only
            ({"elsewhere/fw.bin": self.entry(self.data)}, 409, "target_missing"),
            # same sha256, another length
            ({"fw.bin": self.entry(self.data, length=1499)}, 409, "target_length"),
            # same sha256 and length, another sha512
            ({"fw.bin": dict(self.entry(self.data),
                             hashes={"sha256": hashlib.sha256(self.data).hexdigest(),
                                     "sha512": hashlib.sha512(b"x").hexdigest()})},
             409, "target_hash"),
            # one good target and one missing: nothing is published
            ({"fw.bin": self.entry(self.data), "missing.bin": self.entry(other)},
             409, "target_missing"),
            # no sha256 (the server stores images by sha256)
            ({"fw.bin": {"length": 1500,
                         "hashes": {"sha512": hashlib.sha512(self.data).hexdigest()}}},
             400, "bad_target"),
            # a name the server does not store
            ({"../fw.bin": self.entry(self.data)}, 400, "bad_target"),
            # half a release in custom
            ({"fw.bin": self.entry(self.data, custom={"version": "1.0"})}, 400, "bad_custom"),
        ]
        for targets, status, code in cases:
            with self.subTest(code=code, targets=list(targets)):
                signed = self.targets_signed(2, targets)
                self.assertRefused(self.publish(self.sign_targets(signed)), status, code,
                                   before)

        # The stored file changed on disk after its upload (same name, same
        # size): the hashes no longer match.
        sha = hashlib.sha256(self.data).hexdigest()
        stored = os.path.join(self.targets_dir, "%s.fw.bin" % sha)
        with open(stored, "r+b") as f:
            f.seek(100)
            f.write(bytes([self.data[100] ^ 1]))
        before = self.state()
        self.assertRefused(self.publish(self.sign_targets(self.good)), 409, "target_hash",
                           before)

    def test_bad_bodies(self):
        before = self.state()
        env = self.sign_targets(self.good)
        cases = [
            (dict(raw=b"{not json", content_type="application/json"), 400),
            (dict(raw=b'{"targets":{},"targets":{}}', content_type="application/json"), 400),
            (dict(body={"targets": env, "images": {}}), 400),
            (dict(body={"metadata": env}), 400),
            (dict(body={"targets": dict(env, signed=dict(self.good, _type="snapshot"))}), 400),
            (dict(raw=json.dumps({"targets": env}).encode(), content_type="text/plain"), 415),
        ]
        for kw, status in cases:
            with self.subTest(kw=str(kw)[:80]):
                st, v, _ = self.srv.api("POST", "/api/v1/releases", token=self.deploy, **kw)
                self.assertEqual(st, status, v)
                self.assertEqual(self.state(), before)
        st, _, _ = self.srv.api("PUT", "/api/v1/releases", token=self.deploy, body={})
        self.assertEqual(st, 405)

    def test_auth(self):
        before = self.state()
        env = self.sign_targets(self.good)
        st, _, hdrs = self.srv.request("POST", "/api/v1/releases", body={"targets": env})
        self.assertEqual(st, 401)
        st, _, _ = self.srv.request("PUT", "/api/v1/images/x.bin", raw=b"abc",
                                    content_type="application/octet-stream")
        self.assertEqual(st, 401)
        st, _, _ = self.srv.request("GET", "/api/v1/releases")
        self.assertEqual(st, 401)
        for args in (("POST", "/api/v1/releases", {"body": {"targets": env}}),
                     ("PUT", "/api/v1/images/x.bin",
                      {"raw": b"abc", "content_type": "application/octet-stream"})):
            st, v, _ = self.srv.api(args[0], args[1], token=self.reader, **args[2])
            self.assertEqual((st, v["error"]), (403, "forbidden"))
            st, v, _ = self.srv.api(args[0], args[1], token="x" * 43, **args[2])
            self.assertEqual(st, 401)
        self.assertEqual(self.state(), before)

    def test_oversized_upload(self):
        before = self.state()
        big = os.urandom(4097)
        st, v, _ = self.upload("big.bin", big)
        self.assertEqual((st, v and v["error"]), (413, "too_large"))
        # chunked: no Content-Length to refuse early; stopped while streaming
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        try:
            conn.request("PUT", "/api/v1/images/big.bin",
                         body=iter([big[:2000], big[2000:]]), encode_chunked=True,
                         headers={"Authorization": "Bearer " + self.deploy,
                                  "Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            self.assertEqual(r.status, 413)
            r.read()
        finally:
            conn.close()
        # exactly at the cap is fine
        st, _, _ = self.upload("four.bin", big[:4096])
        self.assertEqual(st, 201)
        files, rows = self.state()
        self.assertEqual(set(files) - set(before[0]),
                         {"targets/%s.four.bin" % hashlib.sha256(big[:4096]).hexdigest()})
        for rel in files:
            self.assertNotIn(".fota+tmp.", rel)

    def test_traversal_and_bad_names(self):
        before = self.state()
        names = [
            "/api/v1/images/../fw.bin",
            "/api/v1/images/a/../../fw.bin",
            "/api/v1/images/%2e%2e/fw.bin",
            "/api/v1/images/a/%2E%2E/%2e%2e/x",
            "/api/v1/images/..%2Ffw.bin",
            "/api/v1/images/a%2F..%2F..%2Fx",
            "/api/v1/images//etc/passwd",
            "/api/v1/images/%2Fetc%2Fpasswd",
            "/api/v1/images/a//b",
            "/api/v1/images/./x",
            "/api/v1/images/a/.",
            "/api/v1/images/a%00b",
            "/api/v1/images/a%0Ab",
            "/api/v1/images/a%5C..%5Cb",
            "/api/v1/images/a%zzb",
            "/api/v1/images/" + "a" * 256,
            "/api/v1/images/" + "d/" * 40 + "b" * 181,
            "/api/v1/images/",
        ]
        for path in names:
            with self.subTest(path=path[:60]):
                st, v, _ = self.upload(None, b"evil", path=path)
                self.assertIn(st, (400, 404), (path, v))
                if st == 400:
                    self.assertEqual(v["error"], "bad_target")
        self.assertEqual(self.state(), before)
        self.assertFalse(os.path.exists(os.path.join(self.srv.data, "fw.bin")))
        self.assertFalse(os.path.exists(os.path.join(self.srv.data, "repo", "fw.bin")))


# ---- two server processes, one repository ------------------------------------------------

class TestTwoProcesses(ReleaseTestCase):

    def test_concurrent_publishes_do_not_interleave(self):
        second = Server(self.tmp, self.repo)
        second.data = self.srv.data
        second.admin = self.srv.admin
        second.log_path = os.path.join(self.tmp, "server2.log")
        second.log = open(second.log_path, "ab")
        second.proc = subprocess.Popen(
            [SERVER_BIN, "serve", "--data-dir", self.srv.data, "--listen",
             "127.0.0.1:%d" % second.port, "--threads", "2"] + self.srv.keys,
            stdout=second.log, stderr=second.log)
        self.addCleanup(second.stop)
        deadline = time.time() + 20
        while True:
            try:
                if second.request("GET", "/repo/metadata/root.json")[0] == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.time(), deadline, second.read_log())
            time.sleep(0.05)

        a, b = os.urandom(700), os.urandom(800)
        self.upload("a.bin", a)
        self.upload("b.bin", b)
        results = {}
        for round_ in range(3):
            version = 2 + round_
            envs = [self.sign_targets(self.targets_signed(version, {"a.bin": self.entry(a)})),
                    self.sign_targets(self.targets_signed(version, {"b.bin": self.entry(b)}))]

            def go(i, srv, env):
                results[i] = srv.api("POST", "/api/v1/releases", body={"targets": env},
                                     token=self.deploy)[0]

            ts = [threading.Thread(target=go, args=(0, self.srv, envs[0])),
                  threading.Thread(target=go, args=(1, second, envs[1]))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(sorted(results.values()), [201, 409], results)
            self.assertEqual(self.version("targets"), version)
            self.assertEqual(self.version("snapshot"), version)
            self.assertEqual(self.version("timestamp"), version)
            self.client("refresh")


# ---- the online roles: start-up and timestamp renewal --------------------------------------

class TestTimestampRenewal(ReleaseTestCase):
    start_server = False

    def republish(self, timestamp_expires):
        run([FOTA_BIN, "repo", "publish", "--repo", self.repo["repo"], "--snapshot-key",
             self.repo["keys"]["snapshot"], "--timestamp-key", self.repo["keys"]["timestamp"],
             "--timestamp-expires", timestamp_expires])

    def test_renewed_at_start_and_then_periodically(self):
        # the repository's timestamp expires in 10 s; the server renews when
        # less than 15 s are left and signs 20 s ones: a renewal at start,
        # then about every 5 s.
        self.republish("10s")
        self.srv.extra = ["--timestamp-expiry", "20s", "--timestamp-renew-before", "15s"]
        self.srv.start()
        ts0 = self.version("timestamp")
        self.assertEqual(ts0, 3)   # v2 from the republish, v3 from the server
        snap = self.version("snapshot")
        self.client("refresh")
        deadline = time.time() + 20
        while self.version("timestamp") < ts0 + 2:
            self.assertLess(time.time(), deadline, self.srv.read_log())
            time.sleep(0.5)
        self.assertEqual(self.version("snapshot"), snap)
        ts = load(os.path.join(self.meta, "timestamp.json"))
        with open(os.path.join(self.meta, "snapshot.json"), "rb") as f:
            snap_bytes = f.read()
        self.assertEqual(ts["signed"]["meta"]["snapshot.json"]["hashes"]["sha256"],
                         hashlib.sha256(snap_bytes).hexdigest())
        p = self.client("-v", "refresh")
        self.assertIn("timestamp", p.stderr)
        self.assertIn("timestamp-renew", self.srv.read_log())

    def test_a_second_process_finds_it_renewed(self):
        self.republish("1h")
        self.srv.extra = ["--timestamp-expiry", "1d", "--timestamp-renew-before", "2h"]
        self.srv.start()
        self.assertEqual(self.version("timestamp"), 3)
        files = tree(self.meta)
        second = subprocess.Popen(
            [SERVER_BIN, "serve", "--data-dir", self.srv.data, "--listen",
             "127.0.0.1:%d" % free_port(), "--threads", "1", "--timestamp-expiry", "1d",
             "--timestamp-renew-before", "2h"] + self.srv.keys,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            self.assertIsNone(second.poll())
        finally:
            second.send_signal(signal.SIGTERM)
            _, err = second.communicate(timeout=20)
        self.assertEqual(second.returncode, 0, err)
        self.assertEqual(tree(self.meta), files)
        self.assertNotIn(b"timestamp-renew", err)
        self.client("refresh")

    def test_snapshot_renewed_before_it_expires(self):
        run([FOTA_BIN, "repo", "publish", "--repo", self.repo["repo"], "--snapshot-key",
             self.repo["keys"]["snapshot"], "--timestamp-key", self.repo["keys"]["timestamp"],
             "--snapshot-expires", "1h", "--timestamp-expires", "1h"])
        self.srv.extra = ["--timestamp-expiry", "1d", "--timestamp-renew-before", "2h"]
        self.srv.start()
        self.assertEqual((self.version("snapshot"), self.version("timestamp")), (3, 3))
        snap = load(os.path.join(self.meta, "snapshot.json"))
        self.assertEqual(snap["signed"]["meta"],
                         load(os.path.join(self.meta, "2.snapshot.json"))["signed"]["meta"])
        self.assertTrue(os.path.exists(os.path.join(self.meta, "3.snapshot.json")))
        self.client("refresh")


    def test_rotated_timestamp_key_resigned_at_start(self):
        """A new root that rotates the timestamp key, put in place by hand:
        the restarted server re-signs timestamp with the new key at once."""
        self.srv.start()
        self.client("refresh")
        self.srv.stop()
        self.srv.proc = None
        ts2 = os.path.join(self.tmp, "timestamp2.key")
        repo, keys = self.repo["repo"], self.repo["keys"]
        run([FOTA_BIN, "key", "new", "--type", "ed25519", "--out", ts2])
        run([FOTA_BIN, "repo", "rotate", "timestamp", "--repo", repo, "--add-key", ts2 + ".pub",
             "--remove-key", keys["timestamp"] + ".pub"])
        run([FOTA_BIN, "repo", "sign", "root", "--repo", repo, "--key", keys["root"]])
        run([FOTA_BIN, "repo", "publish", "--repo", repo, "--snapshot-key", keys["snapshot"],
             "--timestamp-key", ts2])
        for name in ("2.root.json", "root.json"):
            shutil.copyfile(os.path.join(repo, "metadata", name), os.path.join(self.meta, name))
        before = self.version("timestamp")
        # the old key is refused now
        p = subprocess.run([SERVER_BIN, "serve", "--data-dir", self.srv.data, "--listen",
                            "127.0.0.1:%d" % free_port()] + self.srv.keys,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not a timestamp key", p.stderr)
        keys_args = list(self.srv.keys)
        keys_args[keys_args.index("--timestamp-key") + 1] = ts2
        self.srv.keys = keys_args
        self.srv.log = open(self.srv.log_path, "ab")
        self.srv.proc = subprocess.Popen(
            [SERVER_BIN, "serve", "--data-dir", self.srv.data, "--listen",
             "127.0.0.1:%d" % self.srv.port, "--threads", "2"] + keys_args,
            stdout=self.srv.log, stderr=self.srv.log)
        deadline = time.time() + 20
        while self.version("timestamp") == before:
            self.assertLess(time.time(), deadline, self.srv.read_log())
            time.sleep(0.05)
        while True:
            try:
                if self.srv.request("GET", "/repo/metadata/root.json")[0] == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.time(), deadline, self.srv.read_log())
            time.sleep(0.05)
        self.assertEqual(self.version("timestamp"), before + 1)
        p = self.client("-v", "refresh")
        self.assertIn("refresh done: root v2, timestamp v%d" % (before + 1), p.stderr)


class TestInit(ReleaseTestCase):
    start_server = False

    def init(self, *args):
        return subprocess.run([SERVER_BIN, "init", "--data-dir", self.srv.data] + list(args),
                              capture_output=True, text=True, timeout=60)

    def test_serve_refuses_without_a_repository(self):
        p = subprocess.run([SERVER_BIN, "serve", "--data-dir", self.srv.data, "--listen",
                            "127.0.0.1:%d" % free_port()] + self.srv.keys,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("fota-server init", p.stderr)

    def test_keys_must_match_root(self):
        other = os.path.join(self.tmp, "other.key")
        run([FOTA_BIN, "key", "new", "--type", "ed25519", "--out", other])
        keys = self.repo["keys"]
        for snap, ts, what in ((other, keys["timestamp"], "snapshot"),
                               (keys["snapshot"], other, "timestamp"),
                               (keys["timestamp"], keys["snapshot"], "snapshot")):
            p = self.init("--repo", self.repo["repo"], "--snapshot-key", snap,
                          "--timestamp-key", ts)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("is not a %s key" % what, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.srv.data, "repo")))
        p = self.init("--repo", self.repo["repo"], "--snapshot-key", keys["snapshot"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("no timestamp key", p.stderr)

    def test_init_copies_and_refuses_twice(self):
        keys = self.repo["keys"]
        args = ["--repo", self.repo["repo"], "--snapshot-key", keys["snapshot"],
                "--timestamp-key", keys["timestamp"]]
        p = self.init(*args)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(tree(os.path.join(self.srv.data, "repo", "metadata")),
                         tree(os.path.join(self.repo["repo"], "metadata")))
        self.assertTrue(os.path.exists(os.path.join(self.srv.data, "fota.db")))
        p = self.init(*args)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already holds a repository", p.stderr)
        p = self.init("--snapshot-key", keys["snapshot"])
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([SERVER_BIN, "init", "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--repo REPO", p.stdout)

    def test_unpublished_or_linked_repositories_refused(self):
        keys = self.repo["keys"]
        bare = os.path.join(self.tmp, "bare")
        run([FOTA_BIN, "repo", "init", "--repo", bare, "--root-key", keys["root"] + ".pub",
             "--targets-key", keys["targets"] + ".pub", "--snapshot-key", keys["snapshot"],
             "--timestamp-key", keys["timestamp"]])
        p = self.init("--repo", bare, "--snapshot-key", keys["snapshot"], "--timestamp-key",
                      keys["timestamp"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("root.json", p.stderr)
        os.symlink("/etc/passwd", os.path.join(self.repo["repo"], "targets", "passwd"))
        p = self.init("--repo", self.repo["repo"], "--snapshot-key", keys["snapshot"],
                      "--timestamp-key", keys["timestamp"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("links are not copied", p.stderr)
        self.assertEqual(sorted(os.listdir(self.srv.data)), [])


# ---- the operator CLI against a running server -----------------------------------------------

class TestOperatorCli(ReleaseTestCase):

    def setUp(self):
        super().setUp()
        data = os.urandom(1200)
        path, _ = self.stage("board-x/fw-2.0.0.bin", data,
                             {"hardware_ids": ["board-x"], "version": "2.0.0",
                              "security_counter": 2})
        p = self.fota("release", "push", *self.api_args(), "--targets", self.staged_targets,
                      path, "--json")
        self.release = json.loads(p.stdout)["published"]["releases"][0]["id"]

    def test_devices(self):
        devs = [Device(hardware_id="board-x") for _ in range(3)]
        for d in devs:
            d.enrol(self.srv)
        p = self.fota("device", "list", *self.api_args(), "--json")
        listed = json.loads(p.stdout)["devices"]
        self.assertEqual(sorted(d["id"] for d in listed), sorted(d.id for d in devs))
        self.assertEqual({d["status"] for d in listed}, {"pending"})
        p = self.fota("device", "list", *self.api_args())
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split()[:3], ["ID", "STATUS", "HARDWARE"])
        self.assertEqual(len(lines), 4)

        self.fota("device", "accept", devs[0].id, *self.api_args())
        self.fota("device", "reject", devs[1].id, *self.api_args())
        p = self.fota("device", "tag", devs[0].id, "--add", "lab", "--add", "eu",
                      *self.api_args(), "--json")
        self.assertEqual(sorted(json.loads(p.stdout)["tags"]), ["eu", "lab"])
        self.fota("device", "tag", devs[0].id, "--remove", "eu", *self.api_args())
        p = self.fota("device", "show", devs[0].id, *self.api_args(), "--json")
        shown = json.loads(p.stdout)
        self.assertEqual((shown["status"], shown["tags"]), ("accepted", ["lab"]))
        p = self.fota("device", "show", devs[0].id, *self.api_args())
        self.assertIn("status: accepted", p.stdout)
        p = self.fota("device", "list", "--status", "pending", *self.api_args(), "--json")
        self.assertEqual([d["id"] for d in json.loads(p.stdout)["devices"]], [devs[2].id])
        p = self.fota("device", "list", "--tag", "lab", *self.api_args(), "--json")
        self.assertEqual([d["id"] for d in json.loads(p.stdout)["devices"]], [devs[0].id])

        # refusals: an unknown device (server 404, exit 1), a bad id (usage, 2),
        # a read token for a change (403, exit 1)
        p = self.fota("device", "accept", "0" * 64, *self.api_args(), expect=1)
        self.assertIn("HTTP 404", p.stderr)
        self.fota("device", "accept", "../x", *self.api_args(), expect=2)
        self.fota("device", "tag", devs[0].id, *self.api_args(), expect=2)
        p = self.fota("device", "accept", devs[2].id, "--server",
                      "http://127.0.0.1:%d" % self.srv.port, token_env=self.reader, expect=1)
        self.assertIn("HTTP 403", p.stderr)

    def test_rollouts(self):
        devs = [Device(hardware_id="board-x") for _ in range(2)]
        for d in devs:
            d.enrol(self.srv)
            self.fota("device", "accept", d.id, *self.api_args())
        p = self.fota("rollout", "create", "--release", self.release, "--device", devs[0].id,
                      "--device", devs[1].id, "--waves", "50,100", "--success-threshold",
                      "0.5", *self.api_args(), "--json")
        rollout = json.loads(p.stdout)
        rid = rollout["id"]
        self.assertEqual((rollout["release"], rollout["waves"], rollout["device_count"]),
                         (self.release, [50, 100], 2))
        p = self.fota("rollout", "list", *self.api_args(), "--json")
        self.assertEqual([r["id"] for r in json.loads(p.stdout)["rollouts"]], [rid])
        p = self.fota("rollout", "list", *self.api_args())
        self.assertIn(rid, p.stdout)
        p = self.fota("rollout", "show", rid, *self.api_args())
        self.assertIn("state: active", p.stdout)
        self.assertIn("WAVE", p.stdout)
        for action, state in (("pause", "paused"), ("resume", "active"), ("abort", "aborted")):
            self.fota("rollout", action, rid, *self.api_args())
            p = self.fota("rollout", "show", rid, *self.api_args(), "--json")
            self.assertEqual(json.loads(p.stdout)["state"], state)
        p = self.fota("rollout", "resume", rid, *self.api_args(), expect=1)
        self.assertIn("HTTP 409", p.stderr)
        # a group by hardware id, with the token from the environment
        p = self.fota("rollout", "create", "--release", self.release, "--hardware-id",
                      "board-x", "--server", "http://127.0.0.1:%d" % self.srv.port,
                      token_env=self.deploy)
        self.assertTrue(p.stdout.startswith("created rollout "), p.stdout)
        # usage errors
        for args in (["--release", self.release],
                     ["--release", self.release, "--device", devs[0].id, "--hardware-id", "x"],
                     ["--release", self.release, "--device", devs[0].id, "--waves", "50,40"],
                     ["--release", self.release, "--device", devs[0].id, "--waves", "10,50"],
                     ["--release", self.release, "--device", devs[0].id,
                      "--success-threshold", "1.5"]):
            self.fota("rollout", "create", *args, *self.api_args(), expect=2)

    def test_tokens_and_usage(self):
        base = ["--server", "http://127.0.0.1:%d" % self.srv.port]
        p = self.fota("device", "list", *base, expect=2)
        self.assertIn("FOTA_TOKEN", p.stderr)
        p = self.fota("device", "list", *base, token_env="not-a-token", expect=1)
        self.assertIn("HTTP 401", p.stderr)
        self.fota("device", "list", *base, token_env=self.reader)
        bad = os.path.join(self.tmp, "bad.token")
        with open(bad, "w") as f:
            f.write("two words\n")
        self.fota("device", "list", *base, "--token-file", bad, expect=1)
        self.fota("device", "list", "--token-file", self.token_file, expect=2)
        self.fota("device", "list", "--server", "ftp://x", "--token-file", self.token_file,
                  expect=2)
        p = self.fota("device", "list", "--server", "http://127.0.0.1:%d" % free_port(),
                      "--token-file", self.token_file, expect=1)
        self.assertIn("fota: device list:", p.stderr)
        for cmd in (["release", "push"], ["release", "list"], ["rollout", "create"],
                    ["rollout", "show"], ["device", "tag"], ["device", "list"]):
            p = self.fota(*cmd, "--help")
            self.assertTrue(p.stdout.startswith("Usage: fota " + " ".join(cmd)), p.stdout)
        self.fota("release", expect=2)
        self.fota("release", "bogus", expect=2)
        # push refusals: an image the metadata does not list; unsigned metadata
        stray = self.image("stray.bin", b"stray")
        p = self.fota("release", "push", *self.api_args(), "--targets", self.staged_targets,
                      stray, expect=1)
        self.assertIn("not listed", p.stderr)
        unsigned = os.path.join(self.tmp, "unsigned.json")
        env = load(self.staged_targets)
        env["signatures"] = []
        with open(unsigned, "w") as f:
            json.dump(env, f)
        p = self.fota("release", "push", *self.api_args(), "--targets", unsigned, expect=1)
        self.assertIn("not signed", p.stderr)
        self.fota("release", "push", *self.api_args(), expect=2)


if __name__ == "__main__":
    unittest.main()
