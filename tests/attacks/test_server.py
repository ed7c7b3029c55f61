# SPDX-License-Identifier: Apache-2.0
"""Attacks on fota-server itself: device impersonation, operator API abuse,
path traversal and oversized requests, on every endpoint of the route table.

The attacker here is a client of a real fota-server (tests/server/devclient.py
for the device side: keys from python3-cryptography, canonical JSON from
securesystemslib, nothing shared with the server). Each attack asserts the
HTTP refusal (status and error code) and that nothing was stored: the state
tables of the database (read-only sqlite3), every file of the served
repository, and the list of files under the server's directory, exactly as
before.

Devices authenticate with their own key (enrol, session: signed requests)
and then a short-lived session token bound to the device id by an HMAC
(check-ins, reports); an enrolled device does nothing until an operator
accepts it. Operators need a bearer token of the right scope (read < deploy
< admin) for every /api/v1 call; the device endpoints, /repo/, /metrics and
the dashboard are public by design (the repository is signed, metrics and
the dashboard hold nothing secret).

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_server
"""

import base64
import json
import os
import re
import shutil
import socket
import tempfile
import time
import unittest

import attacklib  # noqa: F401  (sets up the import paths and FOTA_BIN_DIR defaults)
from devclient import Device, Server, iso, make_repo, release_id, stage_release

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTES_C = os.path.join(HERE, "..", "..", "server", "routes.c")

IMG = b"\x5a" * 4096
IMG_NAME = "fw/board-a/fw-1.1.0.img"


def routes():
    """The server's route table, read from server/routes.c: [(name,
    methods, kind, pattern)], so that a route added there without an attack
    here fails this suite."""
    with open(ROUTES_C) as f:
        text = f.read()
    table = text[text.index("fota_routes[] = {"):text.index("};", text.index("fota_routes[]"))]
    out = []
    for m in re.finditer(r'\{"(\w+)",\s*([^,]+),\s*FOTA_ROUTE_(\w+),\s*"([^"]+)"', table):
        methods = set()
        for part in m.group(2).split("|"):
            part = part.strip()
            methods |= {"GET", "HEAD"} if part == "M_READ" else {part.replace("FOTA_M_", "")}
        out.append((m.group(1), methods, m.group(3), m.group(4)))
    assert out, "no route found in server/routes.c"
    return out


def tamper_token(token, device_id):
    """A session token with another device id spliced in (the MAC no longer
    matches)."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    raw = bytes.fromhex(device_id) + raw[32:]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class ServerAttackCase(unittest.TestCase):
    """One server per class, with a published release, a pending device and
    an accepted one, a rollout, and read/deploy tokens."""
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fota-attack-server-")
        try:
            cls.repo = make_repo(cls.tmp)
            cls.srv = Server(cls.tmp, cls.repo, extra=["--max-image", "1M",
                                                               "--max-metadata", "256K"]).start()
            cls.read = cls.srv.token_new("read", "reader")
            cls.deploy = cls.srv.token_new("deploy", "deployer")
            env, images = stage_release(cls.repo, [
                (IMG_NAME, IMG, {"hardware_ids": ["board-a"], "version": "1.1.0",
                                 "security_counter": 2})])
            cls.targets_env = env
            cls.srv.publish(env, images)
            cls.release = release_id(IMG_NAME, IMG)
            cls.pending = Device()
            cls.pending.enrol(cls.srv)
            cls.dev = Device()
            cls.dev.enrol(cls.srv)
            cls.srv.accept(cls.dev)
            cls.dev.session(cls.srv)
            st, _ = cls.dev.checkin(cls.srv)
            assert st == 200
            st, v, _ = cls.srv.api("POST", "/api/v1/rollouts", body={
                "release": cls.release, "group": {"devices": [cls.dev.id]}, "waves": [100]})
            assert st == 201, v
            cls.rollout = v["id"]
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "srv", None) is not None:
            cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- "nothing stored" ---------------------------------------------------------------

    def state(self):
        """The database's state tables, every served file's bytes, and the
        names of all files under the server's directory (the log and the
        database files aside)."""
        repo = os.path.join(self.srv.data, "repo")
        served = {}
        for d, _, files in os.walk(repo):
            for n in files:
                with open(os.path.join(d, n), "rb") as f:
                    served[os.path.relpath(os.path.join(d, n), repo)] = f.read()
        names = set()
        for d, _, files in os.walk(self.tmp):
            for n in files:
                if n.startswith("fota.db") or n.endswith(".log"):
                    continue
                names.add(os.path.relpath(os.path.join(d, n), self.tmp))
        return self.srv.snapshot(), served, names

    def assertRefused(self, expect, method, path, body=None, token=None, headers=None,
                      raw=None, content_type="application/json", code=None):
        """The request is answered with a status in expect (and `code`),
        stores nothing, and leaks no secret. Returns (status, payload)."""
        before = self.state()
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer %s" % token
        st, hdrs, payload = self.srv.request(method, path, body=body, headers=h, raw=raw,
                                             content_type=content_type)
        expect = (expect,) if isinstance(expect, int) else expect
        self.assertIn(st, expect, "%s %s: %d %s" % (method, path[:100], st, payload[:300]))
        if code is not None:
            self.assertEqual(json.loads(payload)["error"], code, payload)
        for secret in (b"PRIVATE KEY", b"SQLite format 3", b"root:x:0:0"):
            self.assertNotIn(secret, payload, path)
        self.assertEqual(self.state(), before, "%s %s stored something" % (method, path[:100]))
        return st, payload


# ---- devices ---------------------------------------------------------------------------

class DeviceImpersonationTest(ServerAttackCase):

    def test_checkin_with_a_token_of_another_device(self):
        """Device B (the attacker's own, accepted) splices device A's id into
        its session token to check in and report as A: the token's HMAC
        covers the device id (401 bad_token)."""
        b = Device()
        b.enrol(self.srv)
        self.srv.accept(b)
        b.session(self.srv)
        forged = tamper_token(b.token, self.dev.id)
        body = {"nonce": os.urandom(16).hex(), "seq": 1000,
                "running": {"version": "1.0.0", "security_counter": 1, "slot": 0},
                "slots": [{"slot": 0, "version": "1.0.0", "state": "confirmed"}]}
        self.assertRefused(401, "POST", "/device/v1/checkin", body=body, token=forged,
                           code="bad_token")
        self.assertRefused(401, "POST", "/device/v1/report", token=forged, code="bad_token",
                           body={"seq": 1001, "event": "failed", "reason": "rollback"})

    def test_session_signed_by_another_devices_key(self):
        """Device B asks for a session token for device A, signing with its
        own key under A's key id (401 bad_signature), or under its own key
        id (400 key_mismatch)."""
        b = Device()
        b.enrol(self.srv)
        self.srv.accept(b)
        signed = {"_type": "session", "device": self.dev.id, "counter": 1 << 40,
                  "time": iso()}
        env = b.envelope(signed)
        env["signatures"][0]["keyid"] = self.dev.id
        self.assertRefused(401, "POST", "/device/v1/session", body=env, code="bad_signature")
        self.assertRefused(400, "POST", "/device/v1/session", body=b.envelope(signed),
                           code="key_mismatch")

    def test_enrol_with_another_devices_key(self):
        """Device B enrols A's public key, signing with its own key (no
        proof of possession of A's key): 401 bad_signature, A untouched."""
        b = Device()
        signed = {"_type": "enrol", "key": self.dev.keyobj, "hardware_id": "board-b",
                  "version": "9.9.9", "security_counter": 0, "time": iso()}
        env = b.envelope(signed)
        env["signatures"][0]["keyid"] = self.dev.id
        self.assertRefused(401, "POST", "/device/v1/enrol", body=env, code="bad_signature")

    def test_unenrolled_device(self):
        """A device the server never saw: its session request is 404
        unknown_device; a token it made up (right form, no secret) is 401
        bad_token for check-ins and reports."""
        stranger = Device()
        signed = {"_type": "session", "device": stranger.id, "counter": 1, "time": iso()}
        self.assertRefused(404, "POST", "/device/v1/session", body=stranger.envelope(signed),
                           code="unknown_device")
        made_up = base64.urlsafe_b64encode(
            bytes.fromhex(stranger.id) + (int(time.time()) + 3600).to_bytes(8, "big") +
            os.urandom(32)).decode().rstrip("=")
        body = {"nonce": os.urandom(16).hex(), "seq": 1,
                "running": {"version": "1.0.0", "security_counter": 1, "slot": 0},
                "slots": [{"slot": 0, "version": "1.0.0", "state": "confirmed"}]}
        self.assertRefused(401, "POST", "/device/v1/checkin", body=body, token=made_up,
                           code="bad_token")
        self.assertRefused(401, "POST", "/device/v1/report", body={"seq": 2, "event": "installed"},
                           token=made_up, code="bad_token")

    def test_enrolled_but_not_accepted(self):
        """A device that enrolled but no operator accepted gets no session
        (403 device_pending), so it cannot check in."""
        signed = {"_type": "session", "device": self.pending.id, "counter": 1, "time": iso()}
        self.assertRefused(403, "POST", "/device/v1/session",
                           body=self.pending.envelope(signed), code="device_pending")


# ---- the operator API -------------------------------------------------------------------

class OperatorApiTest(ServerAttackCase):
    """Every /api/v1 endpoint, with the scope it needs."""

    def endpoints(self):
        """[(route name, method, path, body, content type, scope)]."""
        d, r = self.dev.id, self.rollout
        js = "application/json"
        return [
            ("api", "GET", "/api/v1/devices", None, js, "read"),
            ("api", "GET", "/api/v1/devices/" + d, None, js, "read"),
            ("api", "POST", "/api/v1/devices/%s/accept" % self.pending.id, {}, js, "deploy"),
            ("api", "POST", "/api/v1/devices/%s/reject" % d, {}, js, "deploy"),
            ("api", "POST", "/api/v1/devices/%s/decommission" % d, {}, js, "admin"),
            ("api", "POST", "/api/v1/devices/%s/tags" % d, {"add": ["x"]}, js, "deploy"),
            ("api", "GET", "/api/v1/rollouts", None, js, "read"),
            ("api", "POST", "/api/v1/rollouts",
             {"release": self.release, "group": {"hardware_id": "board-a"}}, js, "deploy"),
            ("api", "GET", "/api/v1/rollouts/" + r, None, js, "read"),
            ("api", "GET", "/api/v1/rollouts/%s/devices" % r, None, js, "read"),
            ("api", "POST", "/api/v1/rollouts/%s/pause" % r, {}, js, "deploy"),
            ("api", "POST", "/api/v1/rollouts/%s/resume" % r, {}, js, "deploy"),
            ("api", "POST", "/api/v1/rollouts/%s/abort" % r, {}, js, "deploy"),
            ("api", "GET", "/api/v1/audit", None, js, "read"),
            ("releases", "GET", "/api/v1/releases", None, js, "read"),
            ("releases", "GET", "/api/v1/releases/" + self.release, None, js, "read"),
            ("releases", "POST", "/api/v1/releases", {"targets": self.targets_env}, js,
             "deploy"),
            ("images", "PUT", "/api/v1/images/fw/board-a/evil.img", b"\x00" * 512,
             "application/octet-stream", "deploy"),
            ("root", "POST", "/api/v1/root", {"root": {}}, js, "admin"),
        ]

    def call(self, expect, code, method, path, body, ctype, **kw):
        raw = body if isinstance(body, bytes) else None
        return self.assertRefused(expect, method, path, body=None if raw else body, raw=raw,
                                  content_type=ctype, code=code, **kw)

    def test_every_api_route_is_covered(self):
        api = set(name for name, _, _, pattern in routes() if pattern.startswith("/api/"))
        self.assertEqual(api, set(e[0] for e in self.endpoints()))

    def test_no_token(self):
        """No Authorization header, or another scheme: 401 unauthorized with
        WWW-Authenticate: Bearer, on every endpoint."""
        for _, method, path, body, ctype, _ in self.endpoints():
            with self.subTest(method=method, path=path):
                self.call(401, "unauthorized", method, path, body, ctype)
                self.call(401, "unauthorized", method, path, body, ctype,
                          headers={"Authorization": "Basic " + self.srv.admin})

    def test_wrong_token(self):
        """Tokens that are not the admin token: one character changed, one
        more or one fewer, a made-up one of the right form, an absurdly
        long one: 401 invalid_token on every endpoint."""
        adm = self.srv.admin
        wrong = [adm[:-1] + ("A" if adm[-1] != "A" else "B"), adm + "x", adm[:-1],
                 base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="), "Z" * 4000]
        for _, method, path, body, ctype, _ in self.endpoints():
            for tok in wrong:
                with self.subTest(method=method, path=path, token=tok[:12]):
                    self.call(401, "invalid_token", method, path, body, ctype, token=tok)

    def test_under_scoped_token(self):
        """A read token on every deploy and admin endpoint, a deploy token
        on every admin endpoint: 403 forbidden, nothing changed."""
        for _, method, path, body, ctype, scope in self.endpoints():
            tokens = {"read": [], "deploy": [self.read], "admin": [self.read, self.deploy]}
            for tok in tokens[scope]:
                with self.subTest(method=method, path=path, scope=scope):
                    self.call(403, "forbidden", method, path, body, ctype, token=tok)

    def test_revoked_token(self):
        """An admin token revoked on the server machine: 401 everywhere."""
        gone = self.srv.token_new("admin", "revoked-admin")
        self.srv.token_revoke("revoked-admin")
        for _, method, path, body, ctype, _ in self.endpoints():
            with self.subTest(method=method, path=path):
                self.call(401, "invalid_token", method, path, body, ctype, token=gone)


# ---- every route: traversal and oversized requests --------------------------------------

TRAVERSALS = [
    "/../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/%252e%252e/%252e%252e/etc/passwd",
    "/..\\..\\..\\etc\\passwd",
    "/%00/../../data/fota.db",
    "/../../data/fota.db",
    "/../../director.key",
    "/metadata/../../../director.key",
    "/./../repo.lock",
]


class RouteTableTest(ServerAttackCase):

    def samples(self, name):
        """Requests the route serves: [(method, path, body, content type,
        token)], a body-taking one included where the route takes bodies."""
        js = "application/json"
        adm = self.srv.admin
        return {
            "enrol": [("POST", "/device/v1/enrol", {}, js, None)],
            "session": [("POST", "/device/v1/session", {}, js, None)],
            "checkin": [("POST", "/device/v1/checkin", {}, js, self.dev.token)],
            "report": [("POST", "/device/v1/report", {}, js, self.dev.token)],
            "director_key": [("GET", "/device/v1/director-key", None, js, None)],
            "releases": [("GET", "/api/v1/releases", None, js, adm),
                         ("POST", "/api/v1/releases", {}, js, adm)],
            "images": [("PUT", "/api/v1/images/fw/x.img", b"\0" * 512,
                        "application/octet-stream", adm)],
            "root": [("POST", "/api/v1/root", {}, js, adm)],
            "api": [("GET", "/api/v1/devices", None, js, adm),
                    ("POST", "/api/v1/devices/%s/tags" % self.dev.id, {}, js, adm)],
            "repo": [("GET", "/repo/metadata/root.json", None, js, None)],
            "metrics": [("GET", "/metrics", None, js, None)],
            "dashboard": [("GET", "/", None, js, None)],
        }[name]

    def caps(self, name):
        """The body cap of a route on this server (--max-image 1M,
        --max-metadata 256K, max_body 64 KiB)."""
        return {"images": 1 << 20, "releases": 256 << 10, "root": 256 << 10}.get(name, 64 << 10)

    def test_every_route_has_samples(self):
        for name, methods, _, pattern in routes():
            for method, path, _, _, _ in self.samples(name):
                self.assertIn(method, methods, name)
                self.assertTrue(path.startswith(pattern.rstrip("/")), (name, path))

    def send(self, method, path, body, ctype, token, expect):
        raw = body if isinstance(body, bytes) else None
        return self.assertRefused(expect, method, path, body=None if raw else body, raw=raw,
                                  content_type=ctype, token=token)

    def upload_stays_inside(self, path, body, token):
        """An image upload whose name merely looks like a traversal once
        decoded twice ("%252e%252e" is the literal name "%2e%2e"): refused,
        or stored under that literal name inside targets/, nothing outside."""
        targets = os.path.realpath(os.path.join(self.srv.data, "repo", "targets"))
        before = set(n for n in self.state()[2] if not n.startswith("data/repo/targets/"))
        st, _, payload = self.srv.request("PUT", path, raw=body,
                                          headers={"Authorization": "Bearer " + token},
                                          content_type="application/octet-stream")
        self.assertIn(st, (201, 400, 404), payload)
        if st == 201:
            stored = json.loads(payload)["path"]
            self.assertTrue(stored.startswith("targets/"), stored)
            self.assertNotIn("..", stored.split("/"))
            real = os.path.realpath(os.path.join(self.srv.data, "repo", stored))
            self.assertTrue(real.startswith(targets + os.sep), real)
            self.assertTrue(os.path.isfile(real))
        after = set(n for n in self.state()[2] if not n.startswith("data/repo/targets/"))
        self.assertEqual(after, before)

    def test_path_traversal_on_every_route(self):
        """Each route's pattern followed by ../ in every spelling (plain,
        percent-encoded, double-encoded, backslashes, NUL), aimed at the
        database, the Director key, /etc/passwd: 400, 404 or 405, never a
        file, nothing written. The one exception is an image upload named
        with a double-encoded "%252e%252e": that is the legal literal name
        "%2e%2e/...", stored inside targets/ (upload_stays_inside)."""
        for name, methods, kind, pattern in routes():
            method, _, body, ctype, token = self.samples(name)[0]
            base = pattern.rstrip("/")
            paths = [base + t for t in TRAVERSALS]
            paths += [base + "/x/../../../../etc/passwd",
                      base + "/metadata/%2e%2e/%2e%2e/data/fota.db"]
            for path in paths:
                with self.subTest(route=name, path=path):
                    if name == "images" and "%25" in path:
                        self.upload_stays_inside(path, body, token)
                    else:
                        self.send(method, path, body, ctype, token, (400, 404, 405))
        # the server is still there and serves what it should
        st, _, _ = self.srv.request("GET", "/repo/metadata/root.json")
        self.assertEqual(st, 200)

    def raw(self, data):
        """Send bytes, return the answer's status (None: closed without one)."""
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=30) as s:
            try:
                s.sendall(data)
            except OSError:
                pass
            out = b""
            try:
                while b"\r\n" not in out:
                    more = s.recv(4096)
                    if not more:
                        break
                    out += more
            except OSError:
                pass
        m = re.match(rb"HTTP/1\.[01] (\d{3}) ", out)
        return int(m.group(1)) if m else None

    def test_oversized_requests_on_every_route(self):
        """On every route: a 70 KB URL (414), a 70 KB header or 5,000
        headers (431); where it takes a body, one over the route's cap
        (max_body 64 KiB; max_metadata for releases and root, 256 KiB here;
        max_image for images, 1 MiB here) announced in Content-Length (413,
        answered before the body is sent) or sent chunked (413). Nothing
        stored, and the server answers normally afterwards."""
        for name, methods, kind, pattern in routes():
            for method, path, body, ctype, token in self.samples(name):
                auth = ("Authorization: Bearer %s\r\n" % token).encode() if token else b""
                head = ("%s %s HTTP/1.1\r\nHost: x\r\n" % (method, path)).encode() + auth
                with self.subTest(route=name, method=method, what="url"):
                    before = self.state()
                    st = self.raw(("%s %s?%s HTTP/1.1\r\nHost: x\r\n\r\n" % (
                        method, path, "a" * 70000)).encode())
                    self.assertEqual(st, 414)
                    self.assertEqual(self.state(), before)
                with self.subTest(route=name, method=method, what="headers"):
                    before = self.state()
                    st = self.raw(head + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n")
                    self.assertEqual(st, 431)
                    st = self.raw(head + b"".join(b"X-%d: 1\r\n" % i for i in range(5000)) +
                                  b"\r\n")
                    self.assertEqual(st, 431)
                    self.assertEqual(self.state(), before)
                if method not in ("POST", "PUT"):
                    continue
                cap = self.caps(name)
                with self.subTest(route=name, method=method, what="body"):
                    before = self.state()
                    st = self.raw(head + ("Content-Type: %s\r\nContent-Length: %d\r\n\r\n" %
                                          (ctype, cap + 1)).encode())
                    self.assertEqual(st, 413)
                    chunk = b" " * 8192
                    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                                      for _ in range(cap // len(chunk) + 2)) + b"0\r\n\r\n"
                    st = self.raw(head + ("Content-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                                          "\r\n" % ctype).encode() + chunks)
                    self.assertEqual(st, 413)
                    self.assertEqual(self.state(), before)
        st, _, _ = self.srv.request("GET", "/repo/metadata/root.json")
        self.assertEqual(st, 200)
        st, _ = self.dev.checkin(self.srv)
        self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main()
