# SPDX-License-Identifier: Apache-2.0
"""fota-server's HTTP layer end to end: the real program on 127.0.0.1 with a
data dir made by `fota-server init` from a repository built with the real
`fota` CLI (tests/tuf/repo.py).

What is checked: /repo/ serving (Content-Length, Range, ETag, If-None-Match,
HEAD, Cache-Control, keep-alive), every traversal attempt answered 400/404
and never with the file, body caps (413), unknown paths (404), wrong methods
(405), /metrics as Prometheus text, graceful SIGTERM during a slow download,
--help and bad flags, the config file, TLS with a self-signed certificate,
operator tokens, and fota-tuf-client refreshing and downloading from the
server (including a delegated role named "a/b").
"""

import hashlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "tuf"))

from harness import BIN_DIR, CLIENT, FOTA, clean_env  # noqa: E402
from repo import Repo  # noqa: E402

SERVER = os.path.join(BIN_DIR, "fota-server")
# Extra `serve` arguments (ctest runs this suite again in thread-per-connection mode).
SERVE_ARGS = os.environ.get("FOTA_TEST_SERVE_ARGS", "").split()
MARKER = b"SECRET-OUTSIDE-THE-REPOSITORY-7f3a"
FIRMWARE = os.urandom(100000)
TARGETS = {
    "fw/fw-1.0.bin": FIRMWARE,
    "with space.txt": b"space\n",
    "odd#?.txt": b"hash and question mark\n",
    "dir/\u00fcml\u00e4ut.bin": b"umlaut\n",
}
DELEGATED = {"deleg/x.bin": b"from role a/b\n"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                          timeout=kw.pop("timeout", 60), text=True, **kw)


class Server:
    """One fota-server process on a free port of 127.0.0.1."""

    def __init__(self, data_dir, log_path, *extra, scheme="http", serve_args=None):
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra = [str(a) for a in extra] + (SERVE_ARGS if serve_args is None else serve_args)
        self.scheme = scheme
        self.proc = None
        self.port = None

    def start(self):
        for _ in range(5):
            self.port = free_port()
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [SERVER, "serve", "--data-dir", self.data_dir,
                 "--listen", "127.0.0.1:%d" % self.port, "--log-level", "debug"] + self.extra,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
                env=clean_env())
            deadline = time.time() + 15
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop(signal.SIGKILL)
            # Lost a race for the port to another process: try another.
            if "cannot start" not in self.log_text():
                break
        raise AssertionError("fota-server did not start:\n" + self.log_text())

    def stop(self, sig=signal.SIGTERM, timeout=30):
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        if self.proc is not None:
            rc = self.proc.wait(timeout=timeout)
            self.log.close()
        return rc

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def request(self, method, path, headers=None, body=None, conn=None):
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if own:
            conn.close()
        return resp.status, hdrs, data

    def get(self, path, headers=None):
        return self.request("GET", path, headers)


def build_repository(root):
    """A fota repository with the TARGETS (top-level targets role) and a
    role named "a/b" delegated "deleg/*", signed and published; returns the
    Repo (its keys in root/keys)."""
    repo = Repo(os.path.join(root, "fota-repo"), os.path.join(root, "keys"))
    repo.init()
    for name, data in TARGETS.items():
        repo.add_target(name, data)
    repo.delegate("a/b", ["kab"], ["deleg/*"])
    for name, data in DELEGATED.items():
        repo.add_target(name, data, role="a/b")
    repo.sign("a/b", "kab")
    repo.sign("targets", "targets")
    repo.sign("root", "root")
    repo.publish()
    return repo


class Fixture:
    """The repository, data dir and server every test class shares (building
    them takes a few seconds, so once per module)."""
    tmp = None
    repo = None
    data_dir = None
    server = None


def setUpModule():
    for prog in (SERVER, FOTA, CLIENT):
        if not os.access(prog, os.X_OK):
            raise unittest.SkipTest("%s is not built (run make)" % prog)
    Fixture.tmp = tempfile.mkdtemp(prefix="fota-http-test-")
    Fixture.repo = build_repository(Fixture.tmp)
    data_dir = Fixture.data_dir = os.path.join(Fixture.tmp, "data")
    os.makedirs(os.path.join(data_dir, "keys"))
    for role in ("snapshot", "timestamp"):
        shutil.copy(Fixture.repo.key(role).priv, os.path.join(data_dir, "keys", role + ".pem"))
    proc = run(SERVER, "init", "--data-dir", data_dir, "--repo", Fixture.repo.path)
    if proc.returncode != 0:
        raise AssertionError("fota-server init failed:\n" + proc.stderr)
    run(FOTA, "key", "new", "--type", "ed25519", "--out",
        os.path.join(data_dir, "keys", "director.pem"))
    # Bait outside the served tree, and links pointing at it from inside.
    repo_dir = os.path.join(data_dir, "repo")
    with open(os.path.join(data_dir, "secret.txt"), "wb") as f:
        f.write(MARKER)
    os.symlink(os.path.join(data_dir, "secret.txt"), os.path.join(repo_dir, "metadata", "evil.json"))
    os.symlink(data_dir, os.path.join(repo_dir, "targets", "up"))
    os.symlink("../../secret.txt", os.path.join(repo_dir, "targets", "rel.bin"))
    Fixture.server = Server(data_dir, os.path.join(Fixture.tmp, "server.log")).start()


def tearDownModule():
    try:
        if Fixture.server is not None:
            # A clean exit also means no sanitizer report (leaks are found at exit).
            rc = Fixture.server.stop()
            if rc != 0:
                raise AssertionError("fota-server exited %s:\n%s"
                                     % (rc, Fixture.server.log_text()[-20000:]))
    finally:
        if Fixture.tmp:
            shutil.rmtree(Fixture.tmp, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """Tests against the shared server (Fixture); a test needing a server
    of its own (other flags, signals) starts one on the same data dir."""

    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="case-", dir=Fixture.tmp)
        self.data_dir = Fixture.data_dir
        self.server = Fixture.server

    def served(self, rel):
        with open(os.path.join(self.data_dir, "repo", rel), "rb") as f:
            return f.read()

    def target_path(self, name):
        """/repo/targets/... path of a target as the repository stores it."""
        d, _, base = name.rpartition("/")
        sha = hashlib.sha256(TARGETS.get(name, DELEGATED.get(name, b""))).hexdigest()
        return "targets/" + (d + "/" if d else "") + "%s.%s" % (sha, base)


class RepoServingTest(ServerTestCase):

    def test_metadata_and_target(self):
        status, h, body = self.server.get("/repo/metadata/timestamp.json")
        self.assertEqual(status, 200)
        self.assertEqual(body, self.served("metadata/timestamp.json"))
        self.assertEqual(int(h["content-length"]), len(body))
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(h["cache-control"], "no-cache")
        self.assertEqual(h["accept-ranges"], "bytes")
        self.assertRegex(h["etag"], r'^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$')

        rel = self.target_path("fw/fw-1.0.bin")
        status, h, body = self.server.get("/repo/" + rel)
        self.assertEqual(status, 200)
        self.assertEqual(body, FIRMWARE)
        self.assertEqual(int(h["content-length"]), len(FIRMWARE))
        self.assertEqual(h["content-type"], "application/octet-stream")
        self.assertIn("immutable", h["cache-control"])

    def test_head(self):
        rel = self.target_path("fw/fw-1.0.bin")
        status, h, body = self.server.request("HEAD", "/repo/" + rel)
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertEqual(int(h["content-length"]), len(FIRMWARE))
        self.assertIn("etag", h)

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            conn.request("GET", "/repo/metadata/root.json")
            r1 = conn.getresponse()
            r1.read()
            sock = conn.sock
            self.assertFalse(r1.will_close)
            conn.request("GET", "/repo/metadata/timestamp.json")
            r2 = conn.getresponse()
            r2.read()
            self.assertEqual(r2.status, 200)
            self.assertIs(conn.sock, sock, "the connection was not kept alive")
            # An error answer without a body keeps the connection too.
            conn.request("GET", "/no/such/thing")
            r3 = conn.getresponse()
            r3.read()
            self.assertEqual(r3.status, 404)
            self.assertFalse(r3.will_close)
        finally:
            conn.close()

    def test_ranges(self):
        path = "/repo/" + self.target_path("fw/fw-1.0.bin")
        size = len(FIRMWARE)
        cases = [
            ("bytes=0-9", 206, FIRMWARE[0:10], "bytes 0-9/%d" % size),
            ("bytes=10-", 206, FIRMWARE[10:], "bytes 10-%d/%d" % (size - 1, size)),
            ("bytes=-10", 206, FIRMWARE[-10:], "bytes %d-%d/%d" % (size - 10, size - 1, size)),
            ("bytes=-%d" % (size * 2), 206, FIRMWARE, "bytes 0-%d/%d" % (size - 1, size)),
            ("bytes=%d-%d" % (size - 5, size * 3), 206, FIRMWARE[-5:],
             "bytes %d-%d/%d" % (size - 5, size - 1, size)),
            ("bytes=5-5", 206, FIRMWARE[5:6], "bytes 5-5/%d" % size),
            # Ignored (whole file): malformed, reversed, several ranges.
            ("bytes=5-2", 200, FIRMWARE, None),
            ("bytes=0-1,4-5", 200, FIRMWARE, None),
            ("items=0-1", 200, FIRMWARE, None),
            ("bytes=x-1", 200, FIRMWARE, None),
        ]
        for rng, want_status, want_body, want_cr in cases:
            with self.subTest(range=rng):
                status, h, body = self.server.get(path, {"Range": rng})
                self.assertEqual(status, want_status)
                self.assertEqual(body, want_body)
                self.assertEqual(int(h["content-length"]), len(want_body))
                self.assertEqual(h.get("content-range"), want_cr)
        for rng in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 10, size + 20), "bytes=-0"):
            with self.subTest(range=rng):
                status, h, body = self.server.get(path, {"Range": rng})
                self.assertEqual(status, 416)
                self.assertEqual(h["content-range"], "bytes */%d" % size)
                self.assertNotIn(FIRMWARE[:16], body)

    def test_etag_and_conditionals(self):
        path = "/repo/" + self.target_path("fw/fw-1.0.bin")
        _, h, _ = self.server.get(path)
        etag = h["etag"]
        for inm in (etag, "W/" + etag, '"other", ' + etag, "*"):
            with self.subTest(if_none_match=inm):
                status, h2, body = self.server.get(path, {"If-None-Match": inm})
                self.assertEqual(status, 304)
                self.assertEqual(body, b"")
                self.assertEqual(h2["etag"], etag)
                self.assertIn("immutable", h2["cache-control"])
        status, _, body = self.server.get(path, {"If-None-Match": '"not-it"'})
        self.assertEqual((status, body), (200, FIRMWARE))
        # If-Range: a range only while the client's copy is current.
        status, _, body = self.server.get(path, {"Range": "bytes=0-3", "If-Range": etag})
        self.assertEqual((status, body), (206, FIRMWARE[:4]))
        status, _, body = self.server.get(path, {"Range": "bytes=0-3", "If-Range": '"old"'})
        self.assertEqual((status, body), (200, FIRMWARE))
        # The tag changes with the file.
        scratch = os.path.join(self.data_dir, "repo", "targets", "etag.bin")
        self.addCleanup(os.unlink, scratch)
        with open(scratch, "wb") as f:
            f.write(b"one")
        _, h3, _ = self.server.get("/repo/targets/etag.bin")
        with open(scratch, "wb") as f:
            f.write(b"two!")
        _, h4, body = self.server.get("/repo/targets/etag.bin", {"If-None-Match": h3["etag"]})
        self.assertNotEqual(h3["etag"], h4["etag"])
        self.assertEqual(body, b"two!")

    def test_literal_then_decoded_names(self):
        # "1.a%2Fb.json" is the file's literal name on disk.
        status, _, body = self.server.get("/repo/metadata/1.a%2Fb.json")
        self.assertEqual(status, 200)
        self.assertEqual(body, self.served("metadata/1.a%2Fb.json"))
        # "with space.txt" is stored with a space: found once decoded.
        rel = self.target_path("with space.txt")
        status, _, body = self.server.get("/repo/" + rel.replace(" ", "%20"))
        self.assertEqual((status, body), (200, TARGETS["with space.txt"]))

    def test_traversal_is_refused(self):
        attempts = [
            "/repo/../secret.txt",
            "/repo/metadata/../../secret.txt",
            "/repo/metadata/../metadata/root.json",
            "/repo/./metadata/root.json",
            "/repo/%2e%2e/secret.txt",
            "/repo/%2E%2E%2Fsecret.txt",
            "/repo/metadata/%2e%2e%2f%2e%2e%2fsecret.txt",
            "/repo/metadata/..%2f..%2fsecret.txt",
            "/repo/metadata/%2e%2e/%2e%2e/secret.txt",
            "/repo/%2e/metadata/root.json",
            "/repo/%252e%252e/secret.txt",
            "//etc/passwd",
            "/repo//etc/passwd",
            "/repo/%2Fetc%2Fpasswd",
            "/repo/metadata/..\\..\\secret.txt",
            "/repo/metadata/%5c..%5c..%5csecret.txt",
            "/repo/metadata/root.json%00",
            "/repo/metadata/root.json%00.txt",
            "/repo/%00/../secret.txt",
            "/repo/metadata/evil.json",
            "/repo/targets/up/secret.txt",
            "/repo/targets/rel.bin",
            "/repo/targets/fw",
            "/repo/targets/fw/",
            "/repo/metadata",
            "/repo/",
            "/repo/metadata/%zz.json",
            "/repo/metadata/%2",
            "/repo/" + "a" * 5000,
            "/repo/metadata/" + "a/" * 600 + "root.json",
        ]
        for path in attempts:
            with self.subTest(path=path[:80]):
                status, _, body = self.server.get(path)
                self.assertIn(status, (400, 404))
                self.assertNotIn(MARKER, body)
                self.assertNotIn(b"root:", body)
                self.assertNotIn(b'"_type"', body)

    def test_unknown_paths_and_methods(self):
        for path in ("/nope", "/repo", "/metrics/", "/device/v1/nope", "/REPO/metadata/root.json"):
            with self.subTest(path=path):
                status, h, body = self.server.get(path)
                self.assertEqual(status, 404)
                self.assertEqual(h["content-type"], "application/json")
                self.assertIn(b'"error":"not_found"', body)
        for method, path, allow in (("POST", "/repo/metadata/root.json", "GET, HEAD"),
                                    ("DELETE", "/metrics", "GET, HEAD"),
                                    ("PUT", "/", "GET, HEAD"),
                                    ("GET", "/device/v1/checkin", "POST"),
                                    ("OPTIONS", "/repo/metadata/root.json", "GET, HEAD")):
            with self.subTest(method=method, path=path):
                status, h, body = self.server.request(method, path)
                self.assertEqual(status, 405)
                self.assertEqual(h["allow"], allow)
                self.assertIn(b'"error":"method_not_allowed"', body)

    def test_dashboard(self):
        status, h, body = self.server.get("/")
        self.assertEqual(status, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))
        self.assertIn(b"/metrics", body)


class BodyLimitTest(ServerTestCase):

    def post_raw(self, path, head, body_chunks):
        """Send a request by hand; return the status line's code."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(head)
            try:
                for chunk in body_chunks:
                    s.sendall(chunk)
            except OSError:
                pass  # the server may hang up once it has answered
            data = b""
            while b"\r\n" not in data:
                more = s.recv(4096)
                if not more:
                    break
                data += more
        m = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
        return int(m.group(1)) if m else None

    def test_announced_length_over_cap(self):
        body = b"{" + b" " * 70000 + b"}"
        status, h, rbody = self.server.request(
            "POST", "/device/v1/enrol", {"Content-Type": "application/json"}, body)
        self.assertEqual(status, 413)
        self.assertIn(b'"error":"too_large"', rbody)

    def test_length_over_cap_answered_before_the_body(self):
        # Only the headers are sent; the answer must come anyway.
        code = self.post_raw("/device/v1/enrol",
                             b"POST /device/v1/enrol HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 999999999\r\n"
                             b"Expect: 100-continue\r\n\r\n", [])
        self.assertEqual(code, 413)

    def test_chunked_body_over_cap(self):
        chunk = b" " * 8192
        chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)] + [b"0\r\n\r\n"]
        code = self.post_raw("/device/v1/enrol",
                             b"POST /device/v1/enrol HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n", chunks)
        self.assertEqual(code, 413)

    def test_cap_is_configurable(self):
        body = b'{"k":"' + b"x" * 300 + b'"}'
        extra = Server(self.data_dir, os.path.join(self.tmp, "cap.log"), "--max-body", "256")
        extra.start()
        try:
            status, _, _ = extra.request("POST", "/device/v1/enrol",
                                         {"Content-Type": "application/json"}, body)
            self.assertEqual(status, 413)
        finally:
            self.assertEqual(extra.stop(), 0)

    def test_json_rules(self):
        status, _, body = self.server.request("POST", "/device/v1/enrol",
                                              {"Content-Type": "text/plain"}, b"{}")
        self.assertEqual(status, 415)
        status, _, body = self.server.request("POST", "/device/v1/enrol",
                                              {"Content-Type": "application/json"},
                                              b'{"a":1,"a":2}')
        self.assertEqual(status, 400)
        self.assertIn(b'"error":"malformed_json"', body)
        status, _, _ = self.server.request("POST", "/device/v1/enrol",
                                           {"Content-Type": "application/json"}, b"[" * 40)
        self.assertEqual(status, 400)


PROM_SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})?'
    r' (-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)$')


class MetricsTest(ServerTestCase):

    def parse(self, text):
        types, samples = {}, []
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                self.assertIn(kind, ("counter", "gauge", "histogram", "summary", "untyped"))
                self.assertNotIn(name, types, "TYPE given twice for " + name)
                types[name] = kind
                continue
            if line.startswith("# HELP ") or line == "":
                continue
            m = PROM_SAMPLE.match(line)
            self.assertIsNotNone(m, "not a Prometheus sample line: %r" % line)
            name = m.group(1)
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            self.assertTrue(name in types or family in types, "sample before its TYPE: " + line)
            samples.append((name, m.group(2) or "", float(m.group(3))))
        return types, samples

    def test_exposition(self):
        rel = self.target_path("fw/fw-1.0.bin")
        self.server.get("/repo/" + rel)
        self.server.get("/nope")
        status, h, body = self.server.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"))
        types, samples = self.parse(body.decode("utf-8"))
        self.assertEqual(types["fota_http_requests_total"], "counter")
        self.assertEqual(types["fota_http_request_duration_seconds"], "histogram")
        self.assertEqual(types["fota_checkins_total"], "counter")
        self.assertEqual(types["fota_rollout_devices"], "gauge")
        by_key = {(n, labels): v for n, labels, v in samples}
        self.assertGreaterEqual(
            by_key[("fota_http_requests_total", '{route="repo",code="200"}')], 1)
        self.assertGreaterEqual(
            by_key[("fota_http_requests_total", '{route="unmatched",code="404"}')], 1)
        self.assertGreaterEqual(by_key[("fota_downloads_total", "")], 1)
        self.assertGreaterEqual(by_key[("fota_download_bytes_total", "")], len(FIRMWARE))
        # Histogram buckets are cumulative and end in +Inf == _count.
        buckets = [(labels, v) for n, labels, v in samples
                   if n == "fota_http_request_duration_seconds_bucket"
                   and labels.startswith('{route="repo"')]
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values))
        self.assertTrue(buckets[-1][0].endswith('le="+Inf"}'))
        self.assertEqual(values[-1], by_key[("fota_http_request_duration_seconds_count",
                                             '{route="repo"}')])


class CommandLineTest(unittest.TestCase):

    def setUp(self):
        if not os.access(SERVER, os.X_OK):
            self.skipTest("%s is not built" % SERVER)
        self.tmp = tempfile.mkdtemp(prefix="fota-http-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def test_help(self):
        for args in (["--help"], ["help"], ["serve", "--help"], ["token", "--help"],
                     ["token", "new", "--help"], ["init", "--help"], ["--version"]):
            with self.subTest(args=args):
                proc = run(SERVER, *args)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertTrue(proc.stdout.strip())

    def test_bad_flags(self):
        d = self.tmp
        for args in (["--bogus"],
                     ["serve", "--data-dir", d, "--bogus", "1"],
                     ["serve", "--data-dir", d, "--listen", "nope"],
                     ["serve", "--data-dir", d, "--listen", "127.0.0.1:70000"],
                     ["serve", "--data-dir", d, "--threads", "x"],
                     ["serve", "--data-dir", d, "--max-body", "0"],
                     ["serve", "--data-dir", d, "--token-ttl", "5y"],
                     ["serve", "--data-dir", d, "--event-mode", "select"],
                     ["serve", "--data-dir", d, "--log-level", "loud"],
                     ["serve", "--data-dir", d, "--tls-cert", "c.pem"],
                     ["serve", "--data-dir", d, "--timestamp-expiry", "1h"],
                     ["serve", "--data-dir"],
                     ["serve", "stray"],
                     ["serve"],
                     ["frobnicate"],
                     ["token"],
                     ["token", "new", "--data-dir", d, "--scope", "root", "--name", "x"],
                     ["token", "new", "--data-dir", d, "--scope", "read"],
                     ["token", "new", "--data-dir", d, "--scope", "read", "--name", "a b"],
                     ["token", "new", "--data-dir", d, "--scope", "read", "--name", "x",
                      "--ttl", "soon"],
                     ["token", "zap", "--data-dir", d]):
            with self.subTest(args=args):
                proc = run(SERVER, *args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn("fota-server", proc.stderr)

    def test_config_file_errors_name_the_line(self):
        cfg = os.path.join(self.tmp, "server.conf")
        with open(cfg, "w") as f:
            f.write("# a comment\ndata_dir = %s\n\nmax_body = lots\n" % self.tmp)
        proc = run(SERVER, "serve", "--config", cfg)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("server.conf:4: max_body", proc.stderr)
        with open(cfg, "w") as f:
            f.write("colour = blue\n")
        proc = run(SERVER, "serve", "--config", cfg)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unknown setting 'colour'", proc.stderr)


class ConfigFileTest(ServerTestCase):

    def test_flags_override_the_file(self):
        taken = free_port()
        cfg = os.path.join(self.tmp, "server.conf")
        with open(cfg, "w") as f:
            f.write('# fota-server\nlisten = 127.0.0.1:%d\ndata_dir = "%s"\nthreads = 1\n'
                    "event_mode = epoll\nmax_body = 64K\ntimestamp_expiry = 1d\n"
                    % (taken, self.data_dir))
        # The flag's port wins over the file's.
        srv = Server(self.data_dir, os.path.join(self.tmp, "conf.log"), "--config", cfg,
                     serve_args=[])
        srv.start()
        try:
            self.assertNotEqual(srv.port, taken)
            status, _, _ = srv.get("/repo/metadata/root.json")
            self.assertEqual(status, 200)
            self.assertIn("threads=1 event_mode=epoll", srv.log_text())
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_event_modes(self):
        # Each mode serves (the suites run in full in poll and in
        # thread-per-connection mode: tests/server/CMakeLists.txt); the
        # listening line names the mode, and a pool size given to the
        # thread-per-connection mode is reported as unused.
        rel = self.target_path("fw/fw-1.0.bin")
        for args, line, warned in (
                (["--event-mode", "poll", "--threads", "3"], "threads=3 event_mode=poll", False),
                (["--event-mode", "epoll", "--threads", "2"], "threads=2 event_mode=epoll", False),
                (["--event-mode", "thread-per-connection"],
                 "threads=per-connection event_mode=thread-per-connection", False),
                (["--event-mode", "thread-per-connection", "--threads", "3"],
                 "threads=per-connection event_mode=thread-per-connection", True)):
            with self.subTest(args=args):
                srv = Server(self.data_dir, os.path.join(self.tmp, "modes.log"), *args,
                             serve_args=[])
                open(srv.log_path, "w").close()
                srv.start()
                try:
                    status, h, body = srv.get("/repo/" + rel, headers={"Range": "bytes=1-"})
                    self.assertEqual(status, 206)
                    self.assertEqual(body, FIRMWARE[1:])
                    status, _, body = srv.get("/repo/" + rel)
                    self.assertEqual((status, body), (200, FIRMWARE))
                    log = srv.log_text()
                    self.assertIn(line, log)
                    self.assertEqual("threads=3 is not used" in log, warned)
                finally:
                    self.assertEqual(srv.stop(), 0)


    def test_port_in_use_is_an_error(self):
        # Never two servers sharing a port (no SO_REUSEPORT): the second fails.
        proc = run(SERVER, "serve", "--data-dir", self.data_dir,
                   "--listen", "127.0.0.1:%d" % self.server.port)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("Address already in use", proc.stderr)
        self.assertEqual(self.server.get("/repo/metadata/root.json")[0], 200)


class ShutdownTest(ServerTestCase):

    def test_sigterm_finishes_the_download_in_flight(self):
        slow = os.urandom(16 << 20)
        path = os.path.join(self.data_dir, "repo", "targets", "slow.bin")
        with open(path, "wb") as f:
            f.write(slow)
        self.addCleanup(os.unlink, path)
        srv = Server(self.data_dir, os.path.join(self.tmp, "shutdown.log")).start()
        try:
            s = socket.socket()
            # A small window: the server cannot hand the whole file to the kernel.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(b"GET /repo/targets/slow.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            data = s.recv(65536)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.7)
            # Still sending to us, but no longer accepting anyone else.
            self.assertIsNone(srv.proc.poll(), "exited with a download in flight")
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
            while True:
                more = s.recv(1 << 20)
                if not more:
                    break
                data += more
            s.close()
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertIn(b"200 OK", head.split(b"\r\n")[0])
            self.assertIn(b"Content-Length: %d" % len(slow), head)
            self.assertEqual(len(body), len(slow))
            self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(slow).digest())
            self.assertEqual(srv.proc.wait(timeout=30), 0)
            log = srv.log_text()
            self.assertRegex(log, r"info stopping signal=TERM in_flight=[1-9]")
            self.assertIn("info stopped status=0", log)
        finally:
            srv.stop(signal.SIGKILL)

    def test_sigint_when_idle(self):
        srv = Server(self.data_dir, os.path.join(self.tmp, "int.log")).start()
        self.assertEqual(srv.get("/repo/metadata/root.json")[0], 200)
        self.assertEqual(srv.stop(signal.SIGINT), 0)


class TlsTest(ServerTestCase):

    def test_self_signed_certificate(self):
        if shutil.which("openssl") is None or shutil.which("curl") is None:
            self.skipTest("openssl and curl are needed")
        cert = os.path.join(self.tmp, "cert.pem")
        key = os.path.join(self.tmp, "key.pem")
        proc = run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                   "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                   "subjectAltName=IP:127.0.0.1")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        srv = Server(self.data_dir, os.path.join(self.tmp, "tls.log"), "--tls-cert", cert,
                     "--tls-key", key, scheme="https").start()
        try:
            out = os.path.join(self.tmp, "ts.json")
            proc = run("curl", "-sS", "--fail", "--cacert", cert, "-o", out,
                       srv.url + "/repo/metadata/timestamp.json")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            with open(out, "rb") as f:
                self.assertEqual(f.read(), self.served("metadata/timestamp.json"))
            # Without the CA the certificate is not trusted; plain HTTP gets nothing.
            proc = run("curl", "-sS", "-o", os.devnull, srv.url + "/")
            self.assertNotEqual(proc.returncode, 0)
            proc = run("curl", "-sS", "-m", "5", "-o", os.devnull,
                       "http://127.0.0.1:%d/" % srv.port)
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn("tls=on", srv.log_text())
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_bad_certificate_files(self):
        bad = os.path.join(self.tmp, "bad.pem")
        with open(bad, "w") as f:
            f.write("not a certificate\n")
        proc = run(SERVER, "serve", "--data-dir", self.data_dir, "--listen",
                   "127.0.0.1:%d" % free_port(), "--tls-cert", bad, "--tls-key", bad)
        self.assertEqual(proc.returncode, 1)
        proc = run(SERVER, "serve", "--data-dir", self.data_dir, "--listen",
                   "127.0.0.1:%d" % free_port(), "--tls-cert", bad + ".missing",
                   "--tls-key", bad)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("tls_cert", proc.stderr)


class TokenTest(ServerTestCase):

    def token(self, *args):
        return run(SERVER, "token", *args, "--data-dir", self.data_dir)

    def test_new_list_revoke(self):
        proc = self.token("new", "--scope", "read", "--name", "ci-reader", "--ttl", "1d")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        token = proc.stdout.strip()
        self.assertRegex(token, r"^[A-Za-z0-9_-]{43}$")
        self.assertIn("shown only this once", proc.stderr)
        # The database never holds the token itself.
        for name in os.listdir(self.data_dir):
            if name.startswith("fota.db"):
                with open(os.path.join(self.data_dir, name), "rb") as f:
                    self.assertNotIn(token.encode(), f.read())

        proc = self.token("new", "--scope", "admin", "--name", "ci-reader")
        self.assertEqual(proc.returncode, 1)
        proc = self.token("list")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertRegex(proc.stdout, r"ci-reader\s+read\s+\S+\s+\S+\s+live")
        self.assertNotIn(token, proc.stdout)

        api = self.server.get("/api/v1/devices", {"Authorization": "Bearer " + token})[0]
        if api != 501:
            self.assertEqual(api, 200)
            self.assertEqual(self.server.get("/api/v1/devices",
                                             {"Authorization": "Bearer x" + token})[0], 401)

        self.assertEqual(self.token("revoke", "ci-reader").returncode, 0)
        self.assertRegex(self.token("list").stdout, r"ci-reader\s+read\s+.*revoked")
        self.assertEqual(self.token("revoke", "ci-reader").returncode, 1)
        if api != 501:
            self.assertEqual(self.server.get("/api/v1/devices",
                                             {"Authorization": "Bearer " + token})[0], 401)

    def test_never_expiring(self):
        proc = self.token("new", "--scope", "deploy", "--name", "forever", "--ttl", "never")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertRegex(self.token("list").stdout, r"forever\s+deploy\s+\S+\s+never\s+live")


class TufClientTest(ServerTestCase):
    """fota-tuf-client against the server: the repository works as served."""

    def test_refresh_and_download(self):
        meta = os.path.join(self.tmp, "client", "metadata")
        tdir = os.path.join(self.tmp, "client", "targets")
        os.makedirs(meta)
        os.makedirs(tdir)
        proc = run(CLIENT, "--metadata-dir", meta, "init",
                   os.path.join(self.data_dir, "repo", "metadata", "1.root.json"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        base = self.server.url + "/repo/"
        proc = run(CLIENT, "--metadata-dir", meta, "--metadata-url", base + "metadata",
                   "refresh")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        args = [CLIENT, "--metadata-dir", meta, "--metadata-url", base + "metadata"]
        names = list(TARGETS) + list(DELEGATED)
        for n in names:
            args += ["--target-name", n]
        args += ["--target-base-url", base + "targets", "--target-dir", tdir, "download"]
        proc = run(*args)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for name, data in list(TARGETS.items()) + list(DELEGATED.items()):
            with open(os.path.join(tdir, urllib.parse.quote(name, safe="")), "rb") as f:
                self.assertEqual(f.read(), data, name)
        # The delegated role was fetched under its literal %2F name.
        self.assertRegex(self.server.log_text(),
                         r"path=/repo/metadata/1\.a%2Fb\.json status=200")


if __name__ == "__main__":
    unittest.main()
