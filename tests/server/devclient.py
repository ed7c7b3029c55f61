# SPDX-License-Identifier: Apache-2.0
"""Test support for fota-server: a Python device, a server runner, an offline
TUF repository made with `fota repo`, and release publishing through the
operator API. Nothing here shares code with the server: device keys come from
python3-cryptography, canonical JSON from securesystemslib.

Used by test_api.py and test_rollouts.py (and free for any server test):

    repo = make_repo(tmpdir)                       # keys + published repo (fota)
    srv = Server(tmpdir, repo).start()             # init, admin token, serve
    dev = Device(hardware_id="board-a"); dev.enrol(srv); srv.accept(dev)
    dev.session(srv); status, doc = dev.checkin(srv)   # doc = verified "signed"
    dev.report(srv, "downloading", target="fw.img")
    env, images = stage_release(repo, [("fw.img", b"..", {"hardware_ids": [..], ...})])
    srv.publish(env, images)                       # PUT images, POST /api/v1/releases

Environment: FOTA_SERVER_BIN, FOTA_BIN (default build/bin/...).
"""

import datetime
import hashlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.formats import encode_canonical

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.path.join(HERE, "..", "..", "build", "bin")
SERVER_BIN = os.environ.get("FOTA_SERVER_BIN") or os.path.join(BIN_DIR, "fota-server")
# Extra `fota-server serve` arguments for every server a test starts: ctest
# runs some suites a second time with "--event-mode thread-per-connection".
SERVE_ARGS = os.environ.get("FOTA_TEST_SERVE_ARGS", "").split()
FOTA_BIN = os.environ.get("FOTA_BIN") or os.path.join(BIN_DIR, "fota")


def canonical(obj):
    return encode_canonical(obj).encode("utf-8")


def keyid_of(keyobj):
    return hashlib.sha256(canonical(keyobj)).hexdigest()


def iso(t=None):
    t = time.time() if t is None else t
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def run(args, timeout=120):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout,
                                                    p.stderr))
    return p.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the offline side: a TUF repository made with `fota repo` -------------------

def make_repo(tmp):
    """Keys for the four top-level roles and a published repository (targets
    v1, empty). Returns {"repo": dir, "keys": {role: private key file}}."""
    keys = {}
    for role in ("root", "targets", "snapshot", "timestamp"):
        keys[role] = os.path.join(tmp, role + ".key")
        run([FOTA_BIN, "key", "new", "--type", "ed25519", "--out", keys[role]])
    repo = os.path.join(tmp, "repo")
    run([FOTA_BIN, "repo", "init", "--repo", repo, "--root-key", keys["root"] + ".pub",
         "--targets-key", keys["targets"] + ".pub", "--snapshot-key", keys["snapshot"],
         "--timestamp-key", keys["timestamp"]])
    run([FOTA_BIN, "repo", "sign", "root", "--repo", repo, "--key", keys["root"]])
    run([FOTA_BIN, "repo", "sign", "targets", "--repo", repo, "--key", keys["targets"]])
    run([FOTA_BIN, "repo", "publish", "--repo", repo, "--snapshot-key", keys["snapshot"],
         "--timestamp-key", keys["timestamp"]])
    return {"repo": repo, "keys": keys, "tmp": tmp}


def stage_release(repo, targets):
    """Add targets [(name, bytes, custom)] to the offline repository and sign
    targets with the offline key, as a release manager would. Returns the
    signed targets envelope and {name: bytes} for the uploads."""
    images = {}
    for name, data, custom in targets:
        path = os.path.join(repo["tmp"], "img-" + name.replace("/", "_"))
        with open(path, "wb") as f:
            f.write(data)
        run([FOTA_BIN, "repo", "add-target", path, "--repo", repo["repo"], "--name", name,
             "--custom", json.dumps(custom)])
        images[name] = data
    run([FOTA_BIN, "repo", "sign", "targets", "--repo", repo["repo"], "--key",
         repo["keys"]["targets"]])
    with open(os.path.join(repo["repo"], "staged", "targets.json"), "rb") as f:
        env = json.loads(f.read())
    return env, images


def release_id(name, data):
    """The server's release id of a target (docs/api.md)."""
    sha = hashlib.sha256(data).hexdigest()
    return hashlib.sha256(("%s\n%s" % (name, sha)).encode()).hexdigest()[:16]


# ---- the server -----------------------------------------------------------------

class Server:
    """fota-server on a free port of 127.0.0.1 with its own data dir, made
    from a published repository (make_repo)."""

    def __init__(self, tmp, repo, extra=()):
        self.tmp = tmp
        self.repo = repo
        self.data = os.path.join(tmp, "data")
        os.makedirs(self.data, exist_ok=True)
        self.port = free_port()
        director = os.path.join(tmp, "director.key")
        key = ed25519.Ed25519PrivateKey.generate()
        with open(director, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        self.director_pub = key.public_key()
        self.director_keyid = keyid_of({"keytype": "ed25519", "scheme": "ed25519",
                                        "keyval": {"public": raw.hex()}})
        self.keys = ["--snapshot-key", repo["keys"]["snapshot"],
                     "--timestamp-key", repo["keys"]["timestamp"],
                     "--director-key", director]
        self.extra = list(extra)
        self.log_path = os.path.join(tmp, "server.log")
        self.proc = None
        self.log = None
        self.admin = None

    def tool(self, *args):
        return run([SERVER_BIN] + list(args), timeout=60)

    def token_new(self, scope, name, ttl=None):
        args = ["token", "new", "--data-dir", self.data, "--scope", scope, "--name", name]
        if ttl is not None:
            args += ["--ttl", ttl]
        return self.tool(*args).strip().split()[-1]

    def token_revoke(self, name):
        self.tool("token", "revoke", name, "--data-dir", self.data)

    def start(self):
        self.tool("init", "--data-dir", self.data, "--repo", self.repo["repo"], *self.keys[:4])
        self.admin = self.token_new("admin", "test-admin")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SERVER_BIN, "serve", "--data-dir", self.data, "--listen",
             "127.0.0.1:%d" % self.port, "--threads", "2"] + self.keys + self.extra + SERVE_ARGS,
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("fota-server exited: %s" % self.read_log())
            try:
                st, _, _ = self.request("GET", "/device/v1/director-key")
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("fota-server did not start: %s" % self.read_log())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
        # Under ASan/UBSan (make check's second pass) a report in the log is
        # a failure even when every answer was right.
        log = self.read_log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                raise AssertionError("fota-server: %s\n%s" % (marker, log[-8000:]))

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, raw=None,
                content_type="application/json"):
        """(status, {lower-case header: value}, payload bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            h = dict(headers or {})
            data = raw
            if data is None and body is not None:
                data = json.dumps(body).encode()
            if data is not None and content_type is not None:
                h.setdefault("Content-Type", content_type)
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), payload
        finally:
            conn.close()

    def api(self, method, path, body=None, token=None, **kw):
        """An operator API call with a token (default: the admin token);
        returns (status, parsed JSON or None, headers)."""
        headers = dict(kw.pop("headers", {}) or {})
        headers["Authorization"] = "Bearer %s" % (token or self.admin)
        st, hdrs, payload = self.request(method, path, body=body, headers=headers, **kw)
        try:
            value = json.loads(payload) if payload else None
        except ValueError:
            value = None
        return st, value, hdrs

    def accept(self, device):
        st, v, _ = self.api("POST", "/api/v1/devices/%s/accept" % device.id)
        if st != 200:
            raise AssertionError("accept: %d %s" % (st, v))

    def publish(self, env, images, token=None):
        """Upload images, then POST the signed targets: the release endpoints."""
        for name, data in images.items():
            st, v, _ = self.api("PUT", "/api/v1/images/" + name, raw=data, token=token,
                                content_type="application/octet-stream")
            if st not in (200, 201):
                raise AssertionError("upload %s: %d %s" % (name, st, v))
        st, v, _ = self.api("POST", "/api/v1/releases", body={"targets": env}, token=token)
        if st not in (200, 201):
            raise AssertionError("publish: %d %s" % (st, v))
        return v

    # ---- the database, read-only, for "nothing stored" checks ------------------

    def db(self):
        uri = "file:%s?mode=ro" % os.path.join(self.data, "fota.db")
        return sqlite3.connect(uri, uri=True, timeout=10)

    def count(self, table):
        with self.db() as c:
            return c.execute("SELECT count(*) FROM %s" % table).fetchone()[0]

    def snapshot(self, tables=("devices", "device_history", "audit", "rollouts",
                               "rollout_devices", "releases", "tokens")):
        """Every row of the state tables, to compare before and after a refusal."""
        out = {}
        with self.db() as c:
            names = set(r[0] for r in c.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"))
            for t in tables:
                if t in names:
                    out[t] = sorted(tuple(r) for r in c.execute("SELECT * FROM %s" % t))
        return out


# ---- the device -----------------------------------------------------------------

class Device:
    """A device: an Ed25519 key made here, its id, session counter and seq."""

    def __init__(self, hardware_id="board-a", version="1.0.0", counter=1):
        self.priv = ed25519.Ed25519PrivateKey.generate()
        raw = self.priv.public_key().public_bytes(serialization.Encoding.Raw,
                                                  serialization.PublicFormat.Raw)
        self.keyobj = {"keytype": "ed25519", "scheme": "ed25519",
                       "keyval": {"public": raw.hex()}}
        self.id = keyid_of(self.keyobj)
        self.hardware_id = hardware_id
        self.version = version
        self.security_counter = counter
        self.session_counter = 0
        self.seq = 0
        self.token = None

    def envelope(self, signed):
        sig = self.priv.sign(canonical(signed)).hex()
        return {"signed": signed, "signatures": [{"keyid": self.id, "sig": sig}]}

    def enrol(self, srv):
        signed = {"_type": "enrol", "key": self.keyobj, "hardware_id": self.hardware_id,
                  "version": self.version, "security_counter": self.security_counter,
                  "time": iso()}
        st, _, payload = srv.request("POST", "/device/v1/enrol", body=self.envelope(signed))
        if st not in (200, 202):
            raise AssertionError("enrol: %d %s" % (st, payload))
        return json.loads(payload)["status"]

    def session(self, srv):
        self.session_counter += 1
        signed = {"_type": "session", "device": self.id, "counter": self.session_counter,
                  "time": iso()}
        st, _, payload = srv.request("POST", "/device/v1/session", body=self.envelope(signed))
        if st != 200:
            raise AssertionError("session: %d %s" % (st, payload))
        self.token = json.loads(payload)["token"]
        return self.token

    def checkin(self, srv, version=None, counter=None, state="confirmed"):
        """Check in running version (default: self.version). Returns (status,
        the Director document's "signed" part after checking its signature,
        device id and nonce) or (status, the error body)."""
        version = version or self.version
        counter = self.security_counter if counter is None else counter
        self.seq += 1
        nonce = os.urandom(16).hex()
        body = {"nonce": nonce, "seq": self.seq,
                "running": {"version": version, "security_counter": counter, "slot": 0},
                "slots": [{"slot": 0, "version": version, "state": state},
                          {"slot": 1, "version": None, "state": "empty"}]}
        st, _, payload = srv.request("POST", "/device/v1/checkin", body=body,
                                     headers={"Authorization": "Bearer %s" % self.token})
        if st != 200:
            return st, json.loads(payload) if payload else None
        doc = json.loads(payload)
        sigs = doc["signatures"]
        assert len(sigs) == 1 and sigs[0]["keyid"] == srv.director_keyid, sigs
        srv.director_pub.verify(bytes.fromhex(sigs[0]["sig"]), canonical(doc["signed"]))
        signed = doc["signed"]
        assert signed["device"] == self.id and signed["nonce"] == nonce, signed
        return st, signed

    def report(self, srv, event, target=None, version=None, reason=None):
        self.seq += 1
        body = {"seq": self.seq, "event": event}
        if target is not None:
            body["target"] = target
        if version is not None:
            body["version"] = version
        if reason is not None:
            body["reason"] = reason
        st, _, payload = srv.request("POST", "/device/v1/report", body=body,
                                     headers={"Authorization": "Bearer %s" % self.token})
        if st != 204:
            raise AssertionError("report %s: %d %s" % (event, st, payload))
