#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A man in the middle (or a rogue, compromised server) between devices and a
real fota-server, for the agent's fault and attack tests and for the demo.

It listens on 127.0.0.1, forwards every request to the upstream server
(HTTP/1.1, keep-alive towards the client, one upstream connection per
request) and answers with what the upstream answered, except where its
current MODE says otherwise. The mode can be changed at any time, between or
during a device's cycles:

  pass        forward unchanged.
  substitute  answer GETs of /repo/targets/... whose path contains `match`
              with other bytes (`file` or `data_hex`), honouring Range, so
              that the device receives ANOTHER image (e.g. the same payload
              signed with another key) under the genuine name: the device
              must refuse it (hash-mismatch; length when the size differs).
  downgrade   a COMPROMISED server that holds the Director key
              (--director-key): each check-in is forwarded (so the server
              sees it), then answered with a Director document signed with
              that key, for the right device and the right nonce, telling it
              to install `target` (a real, TUF-listed target such as the
              1.0.0 image; `target` is a name looked up in the upstream's
              targets.json, or a dict {name, length, sha256, version,
              security_counter}). A device that runs a higher security
              counter must refuse it (rollback).
  freeze      replay: with `director` (default on) a check-in is answered
              with the OLDEST Director document recorded for that device
              (old nonce: nonce-mismatch); with `timestamp` (default on)
              GET /repo/metadata/timestamp.json is answered with the oldest
              recorded timestamp.json (or `timestamp_version`): the device
              must refuse it (TUF rollback, or expired).
  cut         a GET of /repo/targets/... (matching `match` when given) gets
              the upstream status and headers, then `bytes` bytes of the
              body, then the connection is closed; `times` cuts (default 1;
              0 = every time), after which the mode falls back to pass.
  slow        bodies of /repo/targets/... GETs trickle at `rate` bytes/s in
              `chunk`-byte writes (slow retrieval; a device killed during it).
  endless     a GET of /repo/targets/... gets its genuine bytes (from the
              Range asked for), then zeros without end (at most `cap`
              bytes), no Content-Length, close-delimited: the device must
              stop at the signed length and refuse (length).
  rogue       a rogue server or mirror that can answer anything
              (tests/attacks/). Every option is optional:
              `files` {path: answer} answers GET/HEAD of that exact path
              (query excluded) itself; an answer is bytes, a file name, or
              {"status": N, "body": bytes | "file": F | "data_hex": H,
              "headers": {name: value}}; a 200 body honours Range (206/416).
              `director` forges the answer to every check-in: a dict of
              fields of the Director document's "signed" part, set over the
              genuine answer's (None removes a field; "target" may be a TUF
              target name, resolved as for downgrade, or a dict {name,
              length, sha256, version, security_counter}); the nonce is
              echoed and issued/expires set unless given; signed with
              `director_key` (a PEM file: an attacker's key) or the proxy's.
              `checkin` "forward" (default) or "swallow": the check-in is
              answered here and the server never hears of it (without
              `director`, answered "stay", signed with the Director key: a
              compromised Director that says "nothing new" forever).
              `reports` "forward" (default) or "drop" (answered 204 here).
              `handler` (in-process only): a callable(method, path, headers,
              body) returning None (carry on) or (status, [(name, value)],
              body bytes), asked first for every request.

What passes is recorded: every genuine 200 answer to a check-in (per device)
and every genuine timestamp.json (per version) for freeze, and one record
per request for the tests: {"n","time","method","path","range","status",
"sent" (body bytes written to the client),"mode","note","client_gone"}.

In a test, in-process:

    proxy = Mitm(server_url, director_key="director.key").start()
    ... device configured with proxy.url ...
    proxy.set_mode("cut", bytes=400000)
    proxy.records(path_prefix="/repo/targets/")
    proxy.set_mode("rogue", files={"/repo/metadata/timestamp.json": forged_bytes},
                   director={"action": "install", "target": "fw/board-a/fw-1.0.0.img"})
    proxy.set_mode("rogue", checkin="swallow", reports="drop")
    proxy.stop()

Standalone (scripts/demo.sh), with a control endpoint on a second port:

    mitm.py serve --upstream URL [--port N] [--port-file F] [--control-port N]
                  [--control-port-file F] [--director-key PEM] [--log]
    mitm.py ctl CONTROL_URL mode '{"mode":"substitute","match":"fw-1.1.0","file":"evil.bin"}'
    mitm.py ctl CONTROL_URL mode '{"mode":"rogue","files":{"/repo/metadata/2.root.json":"r1.json"}}'
    mitm.py ctl CONTROL_URL mode                 (prints the current mode)
    mitm.py ctl CONTROL_URL records [PATH_PREFIX]
    mitm.py ctl CONTROL_URL reset                (forget the request records)
    mitm.py ctl CONTROL_URL record-timestamp     (fetch and keep the current timestamp.json)

Control endpoint (127.0.0.1 only): GET|POST /mode (POST body: JSON object
with "mode" and its options; answer: the mode now in force), GET /records
(?prefix=), POST /reset, POST /record-timestamp.
"""

import argparse
import base64
import datetime
import hashlib
import http.client
import http.server
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

__all__ = ["Mitm", "MODES"]

MODES = ("pass", "substitute", "downgrade", "freeze", "cut", "slow", "endless", "rogue")

# Hop-by-hop headers (RFC 9110 section 7.6.1) are not forwarded either way.
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"}

_TARGETS = "/repo/targets/"
_TIMESTAMP = "/repo/metadata/timestamp.json"
_CHECKIN = "/device/v1/checkin"
_REPORT = "/device/v1/report"
_MAX_BODY = 64 * 1024 * 1024


def _canonical(obj):
    # securesystemslib's encoder: independent of fota's own canonical JSON.
    from securesystemslib.formats import encode_canonical
    return encode_canonical(obj).encode("utf-8")


def _iso(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _parse_range(value, size):
    """(start, end inclusive) of a single "bytes=a-b" / "a-" / "-n" range,
    or None (whole body). Raises ValueError for one past the end."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[6:].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                raise ValueError("empty suffix range")
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise ValueError("range past the end")
    return start, min(end, size - 1)


def _token_device(authorization):
    """The device id (hex) a session token names (docs/device-protocol.md:
    base64url of device_id[32] || expires[8] || mac[32]), or None."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    tok = authorization[len("Bearer "):].strip()
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
    except (ValueError, TypeError):
        return None
    return raw[:32].hex() if len(raw) == 72 else None


def _load_answer(value):
    """(status, [(name, value)], bytes) of a rogue `files` entry."""
    if isinstance(value, (bytes, bytearray)):
        return 200, [("Content-Type", "application/octet-stream")], bytes(value)
    if isinstance(value, str):
        with open(value, "rb") as f:
            return 200, [("Content-Type", "application/octet-stream")], f.read()
    if not isinstance(value, dict):
        raise ValueError("a files entry is bytes, a file name or an object")
    if "file" in value:
        with open(value["file"], "rb") as f:
            data = f.read()
    elif "data_hex" in value:
        data = bytes.fromhex(value["data_hex"])
    else:
        data = value.get("body", b"")
        if isinstance(data, str):
            data = data.encode()
    headers = list((value.get("headers") or {}).items())
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/octet-stream"))
    return int(value.get("status", 200)), headers, bytes(data)


class _DirectorSigner:
    """The Director's Ed25519 private key (PEM, as `fota key new` writes it)."""

    def __init__(self, path):
        from cryptography.hazmat.primitives import serialization
        with open(path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
        keyobj = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": raw.hex()}}
        self.keyid = hashlib.sha256(_canonical(keyobj)).hexdigest()

    def document(self, signed):
        sig = self.key.sign(_canonical(signed)).hex()
        return _canonical({"signatures": [{"keyid": self.keyid, "sig": sig}],
                           "signed": signed})


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fota-mitm/1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing ---------------------------------------------------------

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(1024)
                if len(out) > _MAX_BODY:
                    raise ValueError("request body too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > _MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(n) if n else b""

    def _upstream(self, body):
        """Forward this request; (status, [(name, value)], body bytes)."""
        m = self.server.mitm
        conn = http.client.HTTPConnection(m.up_host, m.up_port, timeout=60)
        try:
            headers = {}
            for name, value in self.headers.items():
                if name.lower() in _HOP or name.lower() in ("host", "content-length",
                                                            "expect"):
                    continue
                headers[name] = value
            headers["Host"] = "%s:%d" % (m.up_host, m.up_port)
            if body or self.command in ("POST", "PUT"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body if body else None,
                         headers=headers)
            r = conn.getresponse()
            data = r.read()
            hdrs = [(k, v) for k, v in r.getheaders() if k.lower() not in _HOP]
            return r.status, hdrs, data
        finally:
            conn.close()

    def _head(self, status, headers, length, close=False, drop=()):
        self.send_response(status)
        drop = set(d.lower() for d in drop) | {"content-length", "server", "date"}
        for name, value in headers:
            if name.lower() not in drop:
                self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _write(self, data, rec, rate=0, chunk=4096):
        """Write data to the client (trickled at rate bytes/s when rate > 0);
        counts into rec["sent"]; False when the client went away."""
        m = self.server.mitm
        if rate <= 0:
            chunk = 65536
        try:
            for i in range(0, len(data), chunk):
                if m.stopping.is_set():
                    return False
                piece = data[i:i + chunk]
                self.wfile.write(piece)
                self.wfile.flush()
                rec["sent"] += len(piece)
                if rate > 0:
                    time.sleep(len(piece) / float(rate))
            return True
        except (BrokenPipeError, ConnectionResetError, OSError):
            rec["client_gone"] = True
            self.close_connection = True
            return False

    # ---- the request ------------------------------------------------------

    def _handle(self):
        m = self.server.mitm
        path = self.path.split("?", 1)[0]
        rec = m.new_record(self.command, path, self.headers.get("Range"))
        try:
            body = self._read_body()
        except ValueError as e:
            rec["status"] = 400
            rec["note"] = str(e)
            self._head(400, [], 0, close=True)
            return
        mode, opts = m.take_mode(self.command, path)
        rec["mode"] = mode
        try:
            self._dispatch(mode, opts, path, body, rec)
        finally:
            m.done_record(rec)

    def _dispatch(self, mode, opts, path, body, rec):
        m = self.server.mitm
        head = self.command == "HEAD"
        if mode == "rogue" and self._rogue(opts, path, body, rec):
            return
        if mode == "substitute" and self.command == "GET":
            return self._substitute(opts, rec)
        if mode == "freeze" and opts.get("timestamp", True) and path == _TIMESTAMP \
                and self.command == "GET":
            old = m.old_timestamp(opts.get("timestamp_version"))
            if old is not None:
                rec["note"] = "replayed timestamp.json v%d" % old[0]
                rec["status"] = 200
                self._head(200, [("Content-Type", "application/json"),
                                 ("Cache-Control", "no-cache")], len(old[1]))
                self._write(old[1], rec)
                return
            rec["note"] = "no timestamp recorded: forwarded"

        try:
            status, headers, data = self._upstream(body)
        except (OSError, http.client.HTTPException) as e:
            rec["status"] = 502
            rec["note"] = "upstream: %s" % e
            payload = json.dumps({"error": "bad_gateway", "message": str(e)}).encode()
            self._head(502, [("Content-Type", "application/json")], len(payload), close=True)
            self._write(payload, rec)
            return

        if path == _CHECKIN and self.command == "POST" and status == 200:
            device = m.remember_checkin(data)
            if mode == "downgrade":
                data = self._forge(opts, body, device, data, rec)
            elif mode == "freeze" and opts.get("director", True):
                old = m.old_checkin(device)
                if old is not None:
                    data = old
                    rec["note"] = "replayed an old Director document"
                else:
                    rec["note"] = "no Director document recorded: forwarded"
        if path == _TIMESTAMP and self.command == "GET" and status == 200:
            m.remember_timestamp(data)

        rec["status"] = status
        targets = path.startswith(_TARGETS) and self.command == "GET"
        if targets and mode == "cut" and status in (200, 206):
            n = min(int(opts.get("bytes", 0)), len(data))
            rec["note"] = "cut after %d of %d body bytes" % (n, len(data))
            self._head(status, headers, len(data), close=True)
            self._write(data[:n], rec)
            self.close_connection = True
            return
        if targets and mode == "endless" and status in (200, 206):
            self._endless(status, headers, data, opts, rec)
            return
        rate = int(opts.get("rate", 0)) if targets and mode == "slow" else 0
        if rate:
            rec["note"] = "trickled at %d B/s" % rate
        length = len(data)
        if head:
            # a HEAD answer has no body but announces the GET's length
            length = next((v for k, v in headers if k.lower() == "content-length"), 0)
        self._head(status, headers, length)
        if not head:
            self._write(data, rec, rate=rate, chunk=int(opts.get("chunk", 1024)))

    def _substitute(self, opts, rec):
        data = opts["_bytes"]
        rec["note"] = "substituted %d bytes" % len(data)
        self._serve_bytes(data, rec)

    def _serve_bytes(self, data, rec, headers=None):
        """Answer with data as a 200 body (206/416 for a Range; no body for
        HEAD)."""
        headers = list(headers or [("Content-Type", "application/octet-stream")])
        head = self.command == "HEAD"
        try:
            rng = _parse_range(self.headers.get("Range"), len(data))
        except ValueError:
            rec["status"] = 416
            self._head(416, [("Content-Range", "bytes */%d" % len(data))], 0)
            return
        if rng is None:
            rec["status"] = 200
            self._head(200, headers, len(data))
            if not head:
                self._write(data, rec)
            return
        start, end = rng
        rec["status"] = 206
        self._head(206, headers + [("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))],
                   end - start + 1)
        if not head:
            self._write(data[start:end + 1], rec)

    def _answer(self, status, headers, data, rec):
        rec["status"] = status
        self._head(status, headers, len(data))
        if self.command != "HEAD" and data:
            self._write(data, rec)

    # ---- rogue: a server that answers anything ------------------------------

    def _rogue(self, opts, path, body, rec):
        """Answer this request as the rogue server; False: not ours (the
        caller forwards it)."""
        m = self.server.mitm
        handler = opts.get("handler")
        if handler is not None:
            got = handler(self.command, path, self.headers, body)
            if got is not None:
                status, headers, data = got
                rec["note"] = "handler answered %d" % status
                self._answer(status, headers, data, rec)
                return True
        files = opts.get("_files") or {}
        if self.command in ("GET", "HEAD") and path in files:
            status, headers, data = files[path]
            rec["note"] = "served %d bytes of our own" % len(data)
            if status == 200:
                self._serve_bytes(data, rec, headers)
            else:
                self._answer(status, headers, data, rec)
            return True
        if path == _REPORT and self.command == "POST" and opts.get("reports") == "drop":
            rec["note"] = "report dropped"
            self._answer(204, [], b"", rec)
            return True
        if path != _CHECKIN or self.command != "POST":
            return False
        swallow = opts.get("checkin") == "swallow"
        if not swallow and opts.get("director") is None:
            return False
        try:
            nonce = json.loads(body)["nonce"]
        except (ValueError, KeyError, TypeError):
            nonce = None
        device = _token_device(self.headers.get("Authorization"))
        signed = None
        if not swallow:
            try:
                status, headers, data = self._upstream(body)
            except (OSError, http.client.HTTPException) as e:
                status, headers, data = 502, [], json.dumps(
                    {"error": "bad_gateway", "message": str(e)}).encode()
            if status != 200:
                rec["note"] = "check-in refused upstream: not forged"
                self._answer(status, headers, data, rec)
                return True
            m.remember_checkin(data)
            try:
                signed = json.loads(data)["signed"]
                device = signed.get("device") or device
            except (ValueError, KeyError, TypeError):
                signed = None
        if signed is None:
            signed = {"_type": "director", "action": "stay", "device": device,
                      "reports": 0, "spec_version": "1.0"}
        now = time.time()
        forged = dict(signed)
        forged.update({"issued": _iso(now), "expires": _iso(now + 3600), "nonce": nonce})
        for k, v in (opts.get("director") or {}).items():
            if v is None:
                forged.pop(k, None)
            elif k == "target":
                t = m.resolve_target(v)
                forged[k] = {"hashes": {"sha256": t["sha256"]}, "length": t["length"],
                             "name": t["name"], "security_counter": t["security_counter"],
                             "version": t["version"]}
            else:
                forged[k] = v
        if forged.get("action") == "stay":
            forged.pop("target", None)
            forged.pop("rollout", None)
        elif forged.get("action") == "install" and "rollout" not in forged:
            forged["rollout"] = "r-forged"       # an install names its rollout
        signer = opts.get("_signer") or m.signer
        if signer is None:
            rec["note"] = "rogue: no Director key to sign with"
            self._answer(502, [], b"", rec)
            return True
        data = signer.document(forged)
        rec["note"] = "%s check-in answered: %s%s" % (
            "swallowed" if swallow else "forwarded", forged.get("action"),
            (" " + str(forged["target"].get("name"))) if isinstance(forged.get("target"), dict)
            else "")
        self._answer(200, [("Content-Type", "application/json")], data, rec)
        return True

    def _forge(self, opts, request_body, device, genuine, rec):
        m = self.server.mitm
        if m.signer is None or device is None:
            rec["note"] = "downgrade: no Director key or device: forwarded"
            return genuine
        try:
            nonce = json.loads(request_body)["nonce"]
        except (ValueError, KeyError, TypeError):
            rec["note"] = "downgrade: no nonce in the check-in: forwarded"
            return genuine
        target = m.resolve_target(opts.get("target"))
        try:
            rollout = json.loads(genuine)["signed"].get("rollout") or "r-forged"
        except (ValueError, KeyError, TypeError, AttributeError):
            rollout = "r-forged"
        try:
            reports = int(json.loads(genuine)["signed"].get("reports", 0))
        except (ValueError, KeyError, TypeError, AttributeError):
            reports = 0
        now = time.time()
        signed = {"_type": "director", "action": "install", "device": device,
                  "expires": _iso(now + 3600), "issued": _iso(now), "nonce": nonce,
                  "reports": reports, "rollout": rollout, "spec_version": "1.0",
                  "target": {"hashes": {"sha256": target["sha256"]},
                             "length": target["length"], "name": target["name"],
                             "security_counter": target["security_counter"],
                             "version": target["version"]}}
        rec["note"] = "forged install %s (%s, counter %d)" % (
            target["name"], target["version"], target["security_counter"])
        return m.signer.document(signed)

    def _endless(self, status, headers, data, opts, rec):
        cap = int(opts.get("cap", 1 << 30))
        rec["note"] = "genuine %d bytes, then zeros without end" % len(data)
        # A small send buffer, so that what "sent" counts is close to what
        # the device actually took before it hung up.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        self._head(status, headers, None, close=True)
        if not self._write(data, rec):
            return
        block = b"\0" * 65536
        while rec["sent"] < cap and not self.server.mitm.stopping.is_set():
            if not self._write(block, rec):
                break
        self.close_connection = True

    do_GET = _handle
    do_HEAD = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, port, mitm, handler):
        self.mitm = mitm
        super().__init__(("127.0.0.1", port), handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fota-mitm-control/1"

    def log_message(self, fmt, *args):
        pass

    def _answer(self, status, obj):
        data = json.dumps(obj, indent=None).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        m = self.server.mitm
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/mode":
            return self._answer(200, m.mode_info())
        if url.path == "/records":
            q = urllib.parse.parse_qs(url.query)
            return self._answer(200, {"records": m.records(q.get("prefix", [None])[0])})
        return self._answer(404, {"error": "not_found"})

    def do_POST(self):
        m = self.server.mitm
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if 0 < n < 1 << 20 else b""
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path == "/mode":
                req = json.loads(body or b"{}")
                if not isinstance(req, dict) or "mode" not in req:
                    raise ValueError('a JSON object with "mode" is needed')
                mode = req.pop("mode")
                m.set_mode(mode, **req)
                return self._answer(200, m.mode_info())
            if path == "/reset":
                m.reset_records()
                return self._answer(200, {"ok": True})
            if path == "/record-timestamp":
                version = m.record_timestamp_now()
                return self._answer(200, {"version": version})
        except (ValueError, KeyError, TypeError, OSError) as e:
            return self._answer(400, {"error": "bad_request", "message": str(e)})
        return self._answer(404, {"error": "not_found"})


class Mitm:
    """The proxy, on background threads of this process."""

    def __init__(self, upstream, port=0, director_key=None, control_port=None, log=False):
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or not u.hostname:
            raise ValueError("upstream must be http://HOST:PORT")
        self.up_host = u.hostname
        self.up_port = u.port or 80
        self.signer = _DirectorSigner(director_key) if director_key else None
        self.log = log
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._mode = "pass"
        self._opts = {}
        self._cuts_left = 0
        self._records = []
        self._checkins = {}       # device id -> [document bytes], oldest first
        self._timestamps = {}     # version -> bytes
        self._srv = _Server(port, self, _Handler)
        self._ctl = None
        if control_port is not None:
            self._ctl = _Server(control_port, self, _ControlHandler)
        self._threads = []

    # ---- life -------------------------------------------------------------

    @property
    def port(self):
        return self._srv.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def control_url(self):
        return None if self._ctl is None else \
            "http://127.0.0.1:%d" % self._ctl.server_address[1]

    def start(self):
        for s in (self._srv, self._ctl):
            if s is not None:
                t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1},
                                     daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        for s in (self._srv, self._ctl):
            if s is not None:
                s.shutdown()
                s.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- modes ------------------------------------------------------------

    def set_mode(self, mode, **opts):
        """Switch mode (see the module docstring for each mode's options)."""
        if mode not in MODES:
            raise ValueError("unknown mode %r (one of %s)" % (mode, ", ".join(MODES)))
        if mode == "substitute":
            if "file" in opts:
                with open(opts["file"], "rb") as f:
                    opts["_bytes"] = f.read()
            elif "data_hex" in opts:
                opts["_bytes"] = bytes.fromhex(opts["data_hex"])
            elif "data" in opts and isinstance(opts["data"], bytes):
                opts["_bytes"] = opts.pop("data")
            else:
                raise ValueError("substitute needs file or data_hex")
        if mode == "downgrade":
            if self.signer is None:
                raise ValueError("downgrade needs the Director key (director_key)")
            opts["target"] = self.resolve_target(opts.get("target"))
        if mode == "rogue":
            opts["_files"] = dict((p, _load_answer(v))
                                  for p, v in (opts.get("files") or {}).items())
            if opts.get("director_key"):
                opts["_signer"] = _DirectorSigner(opts["director_key"])
            if opts.get("checkin", "forward") not in ("forward", "swallow"):
                raise ValueError('checkin: "forward" or "swallow"')
            if opts.get("reports", "forward") not in ("forward", "drop"):
                raise ValueError('reports: "forward" or "drop"')
            needs_key = opts.get("director") is not None or opts.get("checkin") == "swallow"
            if needs_key and opts.get("_signer") is None and self.signer is None:
                raise ValueError("rogue check-in answers need a Director key")
            if isinstance((opts.get("director") or {}).get("target"), str):
                opts["director"] = dict(opts["director"])
                opts["director"]["target"] = self.resolve_target(opts["director"]["target"])
        if mode == "slow" and int(opts.get("rate", 0)) <= 0:
            raise ValueError("slow needs rate > 0 (bytes per second)")
        if mode == "cut" and int(opts.get("bytes", -1)) < 0:
            raise ValueError("cut needs bytes >= 0")
        with self._lock:
            self._mode = mode
            self._opts = opts
            self._cuts_left = int(opts.get("times", 1)) if mode == "cut" else 0
        if self.log:
            sys.stderr.write("mitm: mode %s %s\n" % (mode, self._describe(mode, opts)))

    @staticmethod
    def _shown(opts):
        """The options as JSON can show them (files by path, no callables)."""
        shown = {}
        for k, v in opts.items():
            if k.startswith("_"):
                continue
            if k == "files":
                v = sorted(v or {})
            elif callable(v):
                v = "<callable>"
            shown[k] = v
        return shown

    @classmethod
    def _describe(cls, mode, opts):
        shown = cls._shown(opts)
        if mode == "downgrade":
            t = shown.get("target") or {}
            shown["target"] = "%s %s" % (t.get("name"), t.get("version"))
        return json.dumps(shown, sort_keys=True)

    def mode_info(self):
        with self._lock:
            info = self._shown(self._opts)
            info["mode"] = self._mode
            if self._mode == "cut":
                info["cuts_left"] = self._cuts_left
        return info

    def take_mode(self, method, path):
        """The mode applied to one request (a cut is consumed here)."""
        with self._lock:
            mode, opts = self._mode, self._opts
            if mode == "cut":
                match = opts.get("match")
                if method != "GET" or not path.startswith(_TARGETS) or \
                        (match and match not in path):
                    return "pass", {}
                if self._cuts_left > 0:
                    self._cuts_left -= 1
                    if self._cuts_left == 0:
                        self._mode, self._opts = "pass", {}
                elif int(opts.get("times", 1)) != 0:
                    return "pass", {}
                return mode, opts
            if mode in ("substitute", "slow", "endless"):
                match = opts.get("match")
                if not path.startswith(_TARGETS) or (match and match not in path):
                    return "pass", {}
            return mode, opts

    def resolve_target(self, target):
        """A target description {name, length, sha256, version,
        security_counter}; a bare name is looked up in the upstream's
        targets.json."""
        if isinstance(target, dict) and "sha256" in target:
            return target
        if not isinstance(target, str):
            raise ValueError("target: a TUF target name or a full description")
        conn = http.client.HTTPConnection(self.up_host, self.up_port, timeout=30)
        try:
            conn.request("GET", "/repo/metadata/targets.json")
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        if r.status != 200:
            raise ValueError("targets.json: HTTP %d" % r.status)
        info = json.loads(data)["signed"]["targets"].get(target)
        if info is None:
            raise ValueError("no target %r in the repository" % target)
        custom = info.get("custom") or {}
        return {"name": target, "length": info["length"], "sha256": info["hashes"]["sha256"],
                "version": custom.get("version", "0.0.0"),
                "security_counter": int(custom.get("security_counter", 0))}

    # ---- what passed ------------------------------------------------------

    def remember_checkin(self, data):
        """Record a genuine Director document; returns its device id."""
        try:
            device = json.loads(data)["signed"]["device"]
        except (ValueError, KeyError, TypeError):
            return None
        with self._lock:
            docs = self._checkins.setdefault(device, [])
            if len(docs) < 64:
                docs.append(data)
        return device

    def checkins(self, device):
        """The genuine Director documents recorded for a device, oldest
        first."""
        with self._lock:
            return list(self._checkins.get(device) or [])

    def old_checkin(self, device):
        with self._lock:
            docs = self._checkins.get(device) or []
            return docs[0] if docs else None

    def remember_timestamp(self, data):
        try:
            version = int(json.loads(data)["signed"]["version"])
        except (ValueError, KeyError, TypeError):
            return None
        with self._lock:
            self._timestamps.setdefault(version, data)
        return version

    def old_timestamp(self, version=None):
        """(version, bytes) of the recorded timestamp to replay: `version`,
        else the oldest."""
        with self._lock:
            if not self._timestamps:
                return None
            v = min(self._timestamps) if version is None else int(version)
            return (v, self._timestamps[v]) if v in self._timestamps else None

    def record_timestamp_now(self):
        """Fetch the upstream's current timestamp.json and keep it."""
        conn = http.client.HTTPConnection(self.up_host, self.up_port, timeout=30)
        try:
            conn.request("GET", _TIMESTAMP)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        if r.status != 200:
            raise OSError("timestamp.json: HTTP %d" % r.status)
        return self.remember_timestamp(data)

    def new_record(self, method, path, rng):
        rec = {"time": time.time(), "method": method, "path": path, "range": rng,
               "status": None, "sent": 0, "mode": None, "note": "", "client_gone": False}
        with self._lock:
            rec["n"] = len(self._records)
            self._records.append(rec)
        return rec

    def done_record(self, rec):
        if self.log:
            sys.stderr.write("mitm: %s %s range=%s status=%s sent=%d mode=%s%s\n" % (
                rec["method"], rec["path"], rec["range"] or "-", rec["status"], rec["sent"],
                rec["mode"], (" note=%r" % rec["note"]) if rec["note"] else ""))

    def records(self, path_prefix=None):
        """A copy of the request records, oldest first."""
        with self._lock:
            return [dict(r) for r in self._records
                    if path_prefix is None or r["path"].startswith(path_prefix)]

    def reset_records(self):
        with self._lock:
            self._records = []


# ---- command line -----------------------------------------------------------

def _write_port(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


def _serve(args):
    m = Mitm(args.upstream, port=args.port, director_key=args.director_key,
             control_port=args.control_port, log=args.log)
    m.start()
    if args.control_port_file:
        _write_port(args.control_port_file, int(m.control_url.rsplit(":", 1)[1]))
    if args.port_file:
        _write_port(args.port_file, m.port)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    m.stop()
    return 0


def _ctl(args):
    u = urllib.parse.urlsplit(args.control)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    if args.what == "mode" and args.arg:
        conn.request("POST", "/mode", body=args.arg.encode(),
                     headers={"Content-Type": "application/json"})
    elif args.what == "mode":
        conn.request("GET", "/mode")
    elif args.what == "records":
        q = ("?prefix=" + urllib.parse.quote(args.arg)) if args.arg else ""
        conn.request("GET", "/records" + q)
    elif args.what in ("reset", "record-timestamp"):
        conn.request("POST", "/" + args.what, body=b"")
    r = conn.getresponse()
    data = r.read()
    sys.stdout.write(data.decode())
    return 0 if r.status == 200 else 1


def main(argv=None):
    p = argparse.ArgumentParser(prog="mitm.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the proxy")
    s.add_argument("--upstream", required=True, help="the real server, http://HOST:PORT")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--port-file")
    s.add_argument("--control-port", type=int, default=0)
    s.add_argument("--control-port-file")
    s.add_argument("--director-key", help="the Director's private key (PEM): downgrade mode")
    s.add_argument("--log", action="store_true", help="one line per request on stderr")
    c = sub.add_parser("ctl", help="talk to a running proxy's control endpoint")
    c.add_argument("control", help="the control URL, http://127.0.0.1:PORT")
    c.add_argument("what", choices=("mode", "records", "reset", "record-timestamp"))
    c.add_argument("arg", nargs="?")
    args = p.parse_args(argv)
    return _serve(args) if args.cmd == "serve" else _ctl(args)


if __name__ == "__main__":
    sys.exit(main())
