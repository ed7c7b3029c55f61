#!/usr/bin/python3
"""Prepare the devices of bench/server/run.sh against a running fota-server.

First (--image, --targets-json) publish the release through the operator API
as `fota release push` does: the image bytes with PUT /api/v1/images/<name>,
then the offline-signed targets metadata with POST /api/v1/releases.
Then for each of N devices: make an Ed25519 key pair, enrol it (a request signed
by the new key), accept it through the operator API, open a session (a
signed request) and check in once. Optionally (--rollout) a rollout
of that release to every device is created between acceptance and the first
check-ins, so that every check-in is answered "install" through the rollout
logic rather than "stay".

Writes "<session token> <device id>" a line to --tokens-out (read by
checkin.lua) and the first Director document the server answered, byte for
byte, to --doc-out (nginx serves a file of that size). Every Director document is checked: the
signature with the key from /device/v1/director-key, the echoed nonce and
device id. Prints key=value lines for run.sh.

Uses only the stdlib, python3-cryptography and python3-securesystemslib
(canonical JSON), as a device written independently of the server would.
"""
import argparse
import hashlib
import http.client
import json
import os
import sys
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)
from securesystemslib.formats import encode_canonical

RAW = serialization.Encoding.Raw
RAW_PUB = serialization.PublicFormat.Raw


def canonical(obj):
    return encode_canonical(obj).encode("utf-8")


def iso_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Client:
    """One keep-alive HTTP connection; JSON in, (status, raw body) out."""

    def __init__(self, host, port):
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def call(self, method, path, body=None, token=None, content_type="application/json"):
        headers = {}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def expect(self, want, method, path, body=None, token=None, content_type="application/json"):
        status, raw = self.call(method, path, body, token, content_type)
        if status not in want:
            sys.exit("prepare.py: %s %s answered %d: %s"
                     % (method, path, status, raw[:300].decode("utf-8", "replace")))
        return raw


class Device:
    def __init__(self, hardware_id):
        self.key = Ed25519PrivateKey.generate()
        pub = self.key.public_key().public_bytes(RAW, RAW_PUB).hex()
        self.keyobj = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": pub}}
        self.id = hashlib.sha256(canonical(self.keyobj)).hexdigest()
        self.hardware_id = hardware_id
        self.token = None

    def envelope(self, signed):
        sig = self.key.sign(canonical(signed)).hex()
        return {"signed": signed, "signatures": [{"keyid": self.id, "sig": sig}]}


def checkin_body(seq):
    return {"nonce": os.urandom(16).hex(), "seq": seq,
            "running": {"version": "1.0.0", "security_counter": 1, "slot": 0},
            "slots": [{"slot": 0, "version": "1.0.0", "state": "confirmed"},
                      {"slot": 1, "version": None, "state": "empty"}]}


def director_verifier(cli):
    """/device/v1/director-key ({"keys":{keyid: key object},"threshold":1},
    the shape of the fota/director.json target) -> (keyid, verify(envelope))."""
    doc = json.loads(cli.expect((200,), "GET", "/device/v1/director-key"))
    keys = doc.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1 or doc.get("threshold") != 1:
        sys.exit("prepare.py: unexpected director key document: %s" % json.dumps(doc)[:300])
    (keyobj,) = keys.values()
    if keyobj.get("keytype") != "ed25519":
        sys.exit("prepare.py: director key type %r not handled" % keyobj.get("keytype"))
    keyid = hashlib.sha256(canonical(keyobj)).hexdigest()
    if keyid not in keys:
        sys.exit("prepare.py: the director key is listed under another key id")
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(keyobj["keyval"]["public"]))

    def verify(env):
        for s in env.get("signatures", []):
            if s.get("keyid") == keyid:
                try:
                    pub.verify(bytes.fromhex(s["sig"]), canonical(env["signed"]))
                    return True
                except (InvalidSignature, ValueError):
                    return False
        return False
    return keyid, verify


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--api-token", required=True, help="operator token, deploy scope or more")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--hardware-id", default="bench-board")
    ap.add_argument("--image", help="image file to publish as --target")
    ap.add_argument("--targets-json", help="offline-signed targets metadata listing --target")
    ap.add_argument("--target", help="the image's target name")
    ap.add_argument("--rollout", action="store_true", help="roll the release of --target out to all")
    ap.add_argument("--tokens-out", required=True)
    ap.add_argument("--doc-out", required=True)
    args = ap.parse_args()

    t0 = time.monotonic()
    cli = Client(args.host, args.port)
    dir_keyid, verify = director_verifier(cli)

    if args.image:
        with open(args.image, "rb") as f:
            cli.expect((200, 201), "PUT", "/api/v1/images/" + args.target, f.read(),
                       token=args.api_token, content_type="application/octet-stream")
        with open(args.targets_json, "rb") as f:
            envelope = json.load(f)
        cli.expect((200, 201), "POST", "/api/v1/releases", {"targets": envelope},
                   token=args.api_token)
    t_publish = time.monotonic()

    devices = [Device(args.hardware_id) for _ in range(args.devices)]
    for d in devices:
        signed = {"_type": "enrol", "key": d.keyobj, "hardware_id": d.hardware_id,
                  "version": "1.0.0", "security_counter": 1, "time": iso_now()}
        raw = cli.expect((200, 202), "POST", "/device/v1/enrol", d.envelope(signed))
        status = json.loads(raw).get("status")
        if status == "pending":
            cli.expect((200, 204), "POST", "/api/v1/devices/%s/accept" % d.id, b"{}",
                       token=args.api_token)
        elif status != "accepted":
            sys.exit("prepare.py: enrolment answered status %r" % status)
    t_enrol = time.monotonic()

    rollout = "none"
    if args.rollout:
        releases = json.loads(cli.expect((200,), "GET", "/api/v1/releases?limit=1000",
                                         token=args.api_token))
        if isinstance(releases, dict):
            releases = releases.get("releases", releases.get("items", []))
        rel = [r for r in releases
               if args.target in (r.get("target"), r.get("name"), r.get("target_name"))]
        if not rel:
            sys.exit("prepare.py: no release for target %s in %s"
                     % (args.target, json.dumps(releases)[:300]))
        body = {"release": rel[0]["id"], "group": {"hardware_id": args.hardware_id},
                "waves": [100], "success_threshold": 0.9, "failure_limit": 0.1}
        raw = cli.expect((200, 201), "POST", "/api/v1/rollouts", body, token=args.api_token)
        rollout = str(json.loads(raw).get("id", "?"))

    first_doc = None
    actions = {}
    for d in devices:
        signed = {"_type": "session", "device": d.id, "counter": 1, "time": iso_now()}
        raw = cli.expect((200,), "POST", "/device/v1/session", d.envelope(signed))
        d.token = json.loads(raw)["token"]
        body = checkin_body(1)
        raw = cli.expect((200,), "POST", "/device/v1/checkin", body, token=d.token)
        env = json.loads(raw)
        sig = env.get("signed", {})
        if not verify(env) or sig.get("_type") != "director" or sig.get("nonce") != body["nonce"] \
                or sig.get("device") != d.id:
            sys.exit("prepare.py: bad Director document: %s" % raw[:400].decode("utf-8", "replace"))
        actions[sig.get("action")] = actions.get(sig.get("action"), 0) + 1
        if first_doc is None:
            first_doc = raw
    t_end = time.monotonic()

    with open(args.tokens_out, "w") as f:
        for d in devices:
            f.write("%s %s\n" % (d.token, d.id))
    with open(args.doc_out, "wb") as f:
        f.write(first_doc)
    print("devices=%d" % len(devices))
    print("publish_s=%.2f" % (t_publish - t0))
    print("enrol_accept_s=%.2f" % (t_enrol - t_publish))
    print("session_checkin_s=%.2f" % (t_end - t_enrol))
    print("rollout=%s" % rollout)
    print("actions=%s" % ",".join("%s:%d" % kv for kv in sorted(actions.items())))
    print("director_keyid=%s" % dir_keyid)
    print("doc_bytes=%d" % len(first_doc))


if __name__ == "__main__":
    main()
