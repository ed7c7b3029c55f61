#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A small HTTP/1.1 file server for tests and the demo.

Serves one directory on 127.0.0.1 (a free port by default), records every
request path in the order it arrived, and can be told to answer a path with
a forced status, forced bytes, a lying Content-Length, endless data, or a
slow trickle. Tests start and stop it in-process:

    srv = FileServer(directory)
    srv.start()
    ... srv.url, srv.requests() ...
    srv.stop()

Standalone (for scripts/demo.sh):

    python3 tests/support/httpd.py --dir D [--port 0] [--port-file F] [--log]

A URL path is looked up first as the literal file name (so repository files
whose names hold percent-encoded role names, like "3.a%2Fb.json", are found
by the request that names them as they are), then percent-decoded (so
"with%20space.txt" finds "with space.txt"). Paths that would leave the
directory get 404.
"""

import argparse
import http.server
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.parse

__all__ = ["FileServer", "Override"]


class Override:
    """How to answer one path instead of serving the file.

    status        HTTP status to send (default 200)
    body          bytes to send (default: the file's bytes, or b"" if absent)
    content_length  value of Content-Length to announce (default len(body));
                    None with endless or with close=True sends none
    endless       send body-sized blocks (or zeros) until the client hangs up
                  or `endless_cap` bytes were sent
    delay         seconds to sleep before each block of `chunk` bytes (slow
                  retrieval)
    headers       extra response headers {name: value} (e.g. Location)
    """

    def __init__(self, status=200, body=None, content_length=-1, endless=False,
                 endless_cap=512 * 1024 * 1024, delay=0.0, chunk=1024, headers=None):
        self.headers = dict(headers or {})
        self.status = status
        self.body = body
        self.content_length = content_length
        self.endless = endless
        self.endless_cap = endless_cap
        self.delay = delay
        self.chunk = chunk


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fota-test-httpd/1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle
    # and the peer's delayed ACK add about 40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.log_requests:
            sys.stderr.write("httpd: %s\n" % (fmt % args))

    def _resolve(self, path):
        """The file a URL path names, or None."""
        root = self.server.root
        for candidate in (path, urllib.parse.unquote(path, errors="strict")):
            rel = candidate.lstrip("/")
            full = os.path.realpath(os.path.join(root, rel))
            if full != root and not full.startswith(root + os.sep):
                continue
            if os.path.isfile(full):
                return full
        return None

    def _send(self, status, body, content_length=-1, close=False, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if content_length == -1:
            content_length = len(body)
        if content_length is not None:
            self.send_header("Content-Length", str(content_length))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        return content_length

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head):
        raw = self.path.split("?", 1)[0].split("#", 1)[0]
        self.server.record(self.command, raw)
        override = self.server.override_for(raw)
        try:
            full = self._resolve(raw)
        except UnicodeDecodeError:
            full = None
        data = None
        if full is not None:
            with open(full, "rb") as f:
                data = f.read()

        if override is None:
            if data is None:
                self._send(404, b"not found\n")
                if not head:
                    self.wfile.write(b"not found\n")
                return
            self._send(200, data)
            if not head:
                self.wfile.write(data)
            return

        body = override.body if override.body is not None else (data or b"")
        if override.endless:
            self._send(override.status, body, content_length=override.content_length
                       if override.content_length != -1 else None, close=True,
                       headers=override.headers)
            if head:
                return
            block = body or b"\0" * 65536
            sent = 0
            try:
                while sent < override.endless_cap:
                    if override.delay:
                        time.sleep(override.delay)
                    self.wfile.write(block)
                    sent += len(block)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        announced = override.content_length
        close = announced != -1  # a lie about the length ends the connection
        self._send(override.status, body, content_length=announced, close=close,
                   headers=override.headers)
        if head:
            return
        try:
            if override.delay:
                for i in range(0, len(body), override.chunk):
                    time.sleep(override.delay)
                    self.wfile.write(body[i:i + override.chunk])
                    self.wfile.flush()
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, root, port, log_requests):
        self.root = os.path.realpath(root)
        self.log_requests = log_requests
        self._lock = threading.Lock()
        self._requests = []
        self._overrides = {}
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-transfer (as the size caps make it do)
        # is expected; anything else is worth a trace.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def record(self, method, path):
        with self._lock:
            self._requests.append((method, path))

    def override_for(self, path):
        with self._lock:
            return self._overrides.get(path)


class FileServer:
    """The server, run on a background thread of this process."""

    def __init__(self, root, port=0, log_requests=False):
        self._server = _Server(root, port, log_requests)
        self._thread = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        """Base URL, with a trailing "/"."""
        return "http://127.0.0.1:%d/" % self.port

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what was asked ------------------------------------------------------

    def requests(self, prefix=None, method="GET"):
        """Request paths in arrival order. With prefix ("/metadata/"), only
        paths under it, with the prefix removed."""
        with self._server._lock:
            reqs = [p for m, p in self._server._requests if method is None or m == method]
        if prefix is None:
            return reqs
        return [p[len(prefix):] for p in reqs if p.startswith(prefix)]

    def clear_requests(self):
        with self._server._lock:
            self._server._requests.clear()

    # -- how to answer -------------------------------------------------------

    def override(self, path, override):
        """Answer the URL path `path` ("/metadata/timestamp.json") as told."""
        with self._server._lock:
            self._server._overrides[path] = override

    def force_status(self, path, status):
        self.override(path, Override(status=status, body=b"forced\n"))

    def clear_overrides(self):
        with self._server._lock:
            self._server._overrides.clear()


def main(argv=None):
    ap = argparse.ArgumentParser(description="serve a directory over HTTP/1.1 on 127.0.0.1")
    ap.add_argument("--dir", required=True, help="directory to serve")
    ap.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    ap.add_argument("--port-file", help="write the chosen port to this file once listening")
    ap.add_argument("--log", action="store_true", help="log each request on stderr")
    args = ap.parse_args(argv)

    srv = FileServer(args.dir, args.port, log_requests=args.log)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    srv.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.port)
        os.replace(tmp, args.port_file)
    else:
        print(srv.port, flush=True)
    while not stop.wait(0.2):
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
