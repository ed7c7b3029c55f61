# SPDX-License-Identifier: Apache-2.0
"""The device endpoints of fota-server (/device/v1/, docs/device-protocol.md),
driven by a device written here in Python: keys from python3-cryptography,
canonical JSON from securesystemslib, so nothing on the device side shares
code with the server.

Each test reads as: a fresh server (its own data dir and port), a device that
enrols / opens a session / checks in / reports, and then
  - the exact HTTP status and error code,
  - for a refusal: the device's row and history in the database (read-only
    sqlite3) exactly as before, i.e. nothing stored;
  - for a Director answer: its signature checked independently with the
    Director public key, over the canonical form of "signed".

Run: FOTA_SERVER_BIN=build/bin/fota-server FOTA_BIN=build/bin/fota \
     /usr/bin/python3 -m unittest -v test_devices
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import sqlite3
import struct
import tempfile
import time
import unittest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import devclient
from devclient import FOTA_BIN as FOTA, SERVER_BIN as SERVER, canonical, iso, keyid_of, make_repo


# ---- the device side --------------------------------------------------------

def parse_iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Device:
    """A device: its key pair, id, session counter and seq."""

    def __init__(self, kind="ed25519", hardware_id="board-a", version="1.0.0"):
        self.kind = kind
        if kind == "ed25519":
            self.priv = ed25519.Ed25519PrivateKey.generate()
            raw = self.priv.public_key().public_bytes(serialization.Encoding.Raw,
                                                      serialization.PublicFormat.Raw)
            self.keyobj = {"keytype": "ed25519", "scheme": "ed25519",
                           "keyval": {"public": raw.hex()}}
        elif kind == "ecdsa":
            self.priv = ec.generate_private_key(ec.SECP256R1())
            pem = self.priv.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            self.keyobj = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
                           "keyval": {"public": pem}}
        elif kind == "rsa":
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = self.priv.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            self.keyobj = {"keytype": "rsa", "scheme": "rsassa-pss-sha256",
                           "keyval": {"public": pem}}
        self.id = keyid_of(self.keyobj)
        self.hardware_id = hardware_id
        self.version = version
        self.counter = 0
        self.seq = 0
        self.token = None

    def sign_bytes(self, data):
        if self.kind == "ed25519":
            return self.priv.sign(data)
        if self.kind == "ecdsa":
            return self.priv.sign(data, ec.ECDSA(hashes.SHA256()))
        from cryptography.hazmat.primitives.asymmetric import padding
        return self.priv.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                salt_length=32), hashes.SHA256())

    def envelope(self, signed, keyid=None, signer=None):
        signer = signer or self
        # Canonical JSON has no floats: a float field is signed as 0 (the
        # server must refuse the type before it looks at signatures).
        signable = {k: (0 if isinstance(v, float) else v) for k, v in signed.items()}
        sig = signer.sign_bytes(canonical(signable)).hex()
        return {"signed": signed, "signatures": [{"keyid": keyid or self.id, "sig": sig}]}

    def enrol_signed(self, **over):
        signed = {"_type": "enrol", "key": self.keyobj, "hardware_id": self.hardware_id,
                  "version": self.version, "security_counter": 1, "time": iso()}
        signed.update(over)
        return signed

    def session_signed(self, counter=None, **over):
        if counter is None:
            self.counter += 1
            counter = self.counter
        signed = {"_type": "session", "device": self.id, "counter": counter, "time": iso()}
        signed.update(over)
        return signed

    def checkin_body(self, seq=None, nonce=None, version=None, counter=1, state="confirmed"):
        if seq is None:
            self.seq += 1
            seq = self.seq
        version = version or self.version
        return {"nonce": nonce or os.urandom(16).hex(), "seq": seq,
                "running": {"version": version, "security_counter": counter, "slot": 0},
                "slots": [{"slot": 0, "version": version, "state": state},
                          {"slot": 1, "version": None, "state": "empty"}]}

    def next_seq(self):
        self.seq += 1
        return self.seq


# ---- the server -------------------------------------------------------------

REPO = {}


def setUpModule():
    """One published TUF repository (made with `fota repo`) that every test's
    server starts from: the device endpoints need no targets, only a server
    that runs."""
    tmp = tempfile.mkdtemp(prefix="fota-dev-repo-")
    REPO["tmp"] = tmp
    REPO.update(make_repo(tmp))


def tearDownModule():
    shutil.rmtree(REPO.get("tmp", "/nonexistent"), ignore_errors=True)


class Server(devclient.Server):
    """devclient's server on the module's repository, plus a clean-exit check,
    device-table readers and a raw operator API (status, headers, payload)."""

    def __init__(self, tmp, extra=()):
        super().__init__(tmp, REPO, extra)

    def stop(self):
        proc = self.proc
        super().stop()
        # A clean shutdown: exit 0 (devclient already checks the log for
        # ASan/LSan/UBSan reports).
        if proc is not None and proc.returncode != 0:
            raise AssertionError("fota-server exit %s:\n%s" % (proc.returncode,
                                                               self.read_log()[-4000:]))

    def device_row(self, device_id):
        with self.db() as c:
            c.row_factory = sqlite3.Row
            r = c.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
            return dict(r) if r is not None else None

    def history(self, device_id):
        with self.db() as c:
            return [tuple(r) for r in c.execute(
                "SELECT event, target, version, reason, detail FROM device_history"
                " WHERE device_id = ? ORDER BY id", (device_id,))]

    def token_secret(self):
        with self.db() as c:
            v = c.execute("SELECT value FROM meta WHERE key = 'token_secret'").fetchone()
            return bytes(v[0])

    # ---- the operator API --------------------------------------------------------

    def api(self, method, path, body=None):
        return self.request(method, path, body=body,
                            headers={"Authorization": "Bearer %s" % self.admin})

    def accept(self, device):
        st, _, payload = self.api("POST", "/api/v1/devices/%s/accept" % device.id, body={})
        if st != 200:
            raise AssertionError("accept: %d %s" % (st, payload))

    def set_status(self, device, op):
        st, _, payload = self.api("POST", "/api/v1/devices/%s/%s" % (device.id, op), body={})
        if st != 200:
            raise AssertionError("%s: %d %s" % (op, st, payload))


def error_code(payload):
    return json.loads(payload)["error"]


class DeviceTestCase(unittest.TestCase):
    maxDiff = None
    server_extra = ()

    def setUp(self):
        for prog in (SERVER, FOTA):
            if not os.access(prog, os.X_OK):
                self.fail("%s is not built" % prog)
        self.tmp = tempfile.mkdtemp(prefix="fota-dev-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.server = Server(self.tmp, self.server_extra_args())
        self.addCleanup(self.server.stop)
        self.server.start()

    def server_extra_args(self):
        return list(self.server_extra)

    # ---- device steps --------------------------------------------------------------

    def enrol(self, dev, expect=202, envelope=None):
        env = envelope if envelope is not None else dev.envelope(dev.enrol_signed())
        st, hdrs, payload = self.server.request("POST", "/device/v1/enrol", env)
        self.assertEqual(st, expect, payload)
        return payload

    def session(self, dev, expect=200, envelope=None):
        env = envelope if envelope is not None else dev.envelope(dev.session_signed())
        st, _, payload = self.server.request("POST", "/device/v1/session", env)
        self.assertEqual(st, expect, payload)
        if st == 200:
            dev.token = json.loads(payload)["token"]
        return payload

    def ready(self, kind="ed25519", **kw):
        """An enrolled, accepted device with a session token."""
        dev = Device(kind, **kw)
        self.enrol(dev)
        self.server.accept(dev)
        self.session(dev)
        return dev

    def checkin(self, dev, body=None, token=None, expect=200, raw=None,
                content_type="application/json"):
        body = body if body is not None or raw is not None else dev.checkin_body()
        headers = {}
        tok = token if token is not None else dev.token
        if tok is not False:
            headers["Authorization"] = "Bearer %s" % tok
        st, hdrs, payload = self.server.request("POST", "/device/v1/checkin", body, headers,
                                                raw=raw, content_type=content_type)
        self.assertEqual(st, expect, payload)
        return body, hdrs, payload

    def report(self, dev, body, token=None, expect=204, raw=None,
               content_type="application/json"):
        headers = {"Authorization": "Bearer %s" % (token if token is not None else dev.token)}
        st, _, payload = self.server.request("POST", "/device/v1/report", body, headers, raw=raw,
                                             content_type=content_type)
        self.assertEqual(st, expect, payload)
        return payload

    # ---- independent checks --------------------------------------------------------

    def director_key(self):
        st, _, payload = self.server.request("GET", "/device/v1/director-key")
        self.assertEqual(st, 200)
        doc = json.loads(payload)
        self.assertEqual(doc["threshold"], 1)
        ((keyid, keyobj),) = doc["keys"].items()
        return keyid, keyobj

    def check_director(self, dev, request, hdrs, payload):
        """The answer is canonical bytes, signed by the Director key over the
        canonical form of signed, names this device, echoes the nonce."""
        self.assertEqual(hdrs.get("content-type", "").split(";")[0], "application/json")
        doc = json.loads(payload)
        self.assertEqual(canonical(doc), payload)
        self.assertEqual(sorted(doc), ["signatures", "signed"])
        keyid, keyobj = self.director_key()
        self.assertEqual(keyid_of(keyobj), keyid)
        pub = self.server.director_pub.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.assertEqual(keyobj, {"keytype": "ed25519", "scheme": "ed25519",
                                  "keyval": {"public": pub.hex()}})
        (sig,) = doc["signatures"]
        self.assertEqual(sig["keyid"], keyid)
        ed25519.Ed25519PublicKey.from_public_bytes(pub).verify(
            bytes.fromhex(sig["sig"]), canonical(doc["signed"]))
        s = doc["signed"]
        self.assertEqual(s["_type"], "director")
        self.assertEqual(s["spec_version"], "1.0")
        self.assertEqual(s["device"], dev.id)
        self.assertEqual(s["nonce"], request["nonce"])
        issued, expires = parse_iso(s["issued"]), parse_iso(s["expires"])
        self.assertGreater(expires, issued)
        self.assertLess(abs(issued - time.time()), 120)
        self.assertIn(s["action"], ("stay", "install"))
        return s

    def snapshot(self, dev):
        """What must not change when a request is refused."""
        return (self.server.device_row(dev.id), self.server.history(dev.id),
                self.server.count("devices"))

    def assert_unchanged(self, dev, before):
        self.assertEqual(self.snapshot(dev), before)


# ---- enrolment ------------------------------------------------------------------

class EnrolTest(DeviceTestCase):

    def test_enrol_pending_then_repeat(self):
        dev = Device()
        payload = self.enrol(dev, 202)
        self.assertEqual(json.loads(payload), {"device": dev.id, "status": "pending"})
        row = self.server.device_row(dev.id)
        self.assertEqual((row["status"], row["hardware_id"], row["version"],
                          row["security_counter"], row["stored_counter"], row["seq"]),
                         ("pending", "board-a", "1.0.0", 1, 1, 0))
        self.assertEqual(json.loads(row["key_json"]), dev.keyobj)
        self.assertEqual([h[0] for h in self.server.history(dev.id)], ["enrol"])
        # A repeat changes nothing and answers the current status.
        before = self.snapshot(dev)
        dev.version = "9.9.9"
        payload = self.enrol(dev, 202)
        self.assertEqual(json.loads(payload)["status"], "pending")
        self.assert_unchanged(dev, before)
        # Accepted: a repeat says so with 200.
        self.server.accept(dev)
        self.assertEqual(json.loads(self.enrol(dev, 200))["status"], "accepted")

    def test_enrol_ecdsa_device_full_cycle(self):
        dev = self.ready("ecdsa")
        req, hdrs, payload = self.checkin(dev)
        self.check_director(dev, req, hdrs, payload)

    def test_enrol_rejected_and_decommissioned(self):
        for op in ("reject", "decommission"):
            dev = Device()
            self.enrol(dev)
            self.server.set_status(dev, op)
            before = self.snapshot(dev)
            payload = self.enrol(dev, 403)
            self.assertEqual(error_code(payload),
                             "device_rejected" if op == "reject" else "device_decommissioned")
            self.assert_unchanged(dev, before)

    def test_enrol_refusals_store_nothing(self):
        dev = Device()
        other = Device()
        cases = []
        # Key mismatch: signed by the key, but the signature names another id.
        cases.append(("key id mismatch", dev.envelope(dev.enrol_signed(), keyid=other.id),
                      400, "key_mismatch"))
        # Signed by another key under the enrolling key's id.
        cases.append(("wrong signer", dev.envelope(dev.enrol_signed(), signer=other),
                      401, "bad_signature"))
        env = dev.envelope(dev.enrol_signed())
        env["signatures"][0]["sig"] = "00" * 64
        cases.append(("zero signature", env, 401, "bad_signature"))
        # The body changed after signing.
        env = dev.envelope(dev.enrol_signed())
        env["signed"]["hardware_id"] = "board-b"
        cases.append(("tampered body", env, 401, "bad_signature"))
        env = dev.envelope(dev.enrol_signed())
        env["signatures"].append(dict(env["signatures"][0]))
        cases.append(("two signatures", env, 400, "bad_request"))
        cases.append(("no signatures", {"signed": dev.enrol_signed(), "signatures": []},
                      400, "bad_request"))
        env = dev.envelope(dev.enrol_signed())
        env["extra"] = 1
        cases.append(("extra envelope field", env, 400, "bad_request"))
        for field, value in (("_type", "session"), ("hardware_id", ""),
                             ("hardware_id", "has space"), ("hardware_id", "x" * 129),
                             ("version", "1.0"), ("version", "01.0.0"), ("version", 1),
                             ("security_counter", -1), ("security_counter", 1.5),
                             ("security_counter", "1"), ("time", "2026-11-24 05:00:00"),
                             ("time", None), ("unknown", 1)):
            cases.append(("%s=%r" % (field, value),
                          dev.envelope(dev.enrol_signed(**{field: value})), 400, "bad_request"))
        for field in ("key", "hardware_id", "version", "security_counter", "time"):
            signed = dev.enrol_signed()
            del signed[field]
            cases.append(("missing " + field, dev.envelope(signed), 400,
                          "bad_key" if field == "key" else "bad_request"))
        # Key objects: extra fields, wrong shapes, bad values, RSA.
        for keyobj, code in (
                (dict(dev.keyobj, keyid_hash_algorithms=["sha256"]), "bad_key"),
                ({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "zz"}},
                 "bad_key"),
                ({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "00" * 31}},
                 "bad_key"),
                ({"keytype": "ed25519", "scheme": "ed25519",
                  "keyval": {"public": dev.keyobj["keyval"]["public"], "private": "00"}},
                 "bad_key"),
                ({"keytype": "dsa", "scheme": "dsa", "keyval": {"public": "00"}},
                 "unsupported_key"),
                ("not an object", "bad_key")):
            fake = Device()
            fake.keyobj = keyobj
            signed = fake.enrol_signed()
            kid = keyid_of(keyobj) if isinstance(keyobj, dict) else dev.id
            cases.append(("key %r" % (keyobj,), fake.envelope(signed, keyid=kid, signer=dev),
                          400, code))
        rsa_dev = Device("rsa")
        cases.append(("rsa key", rsa_dev.envelope(rsa_dev.enrol_signed()), 400,
                      "unsupported_key"))

        for name, env, status, code in cases:
            with self.subTest(name):
                st, _, payload = self.server.request("POST", "/device/v1/enrol", env)
                self.assertEqual((st, error_code(payload)), (status, code), payload)
                self.assertEqual(self.server.count("devices"), 0)

    def test_enrol_http_level_refusals(self):
        dev = Device()
        good = json.dumps(dev.envelope(dev.enrol_signed())).encode()
        for name, raw, ctype, status, code in (
                ("malformed", b'{"signed":', "application/json", 400, "malformed_json"),
                ("trailing bytes", good + b"x", "application/json", 400, "malformed_json"),
                ("duplicate key", b'{"signed":{},"signed":{}}', "application/json", 400,
                 "malformed_json"),
                ("array", b"[]", "application/json", 400, "bad_request"),
                ("empty", b"", "application/json", 400, "malformed_json"),
                ("text/plain", good, "text/plain", 415, "unsupported_media_type"),
                ("no content type", good, None, 415, "unsupported_media_type"),
                ("oversized", b'{"a":"' + b"x" * (70 * 1024) + b'"}', "application/json", 413,
                 "too_large")):
            with self.subTest(name):
                st, _, payload = self.server.request("POST", "/device/v1/enrol", raw=raw,
                                                     content_type=ctype)
                self.assertEqual(st, status, payload)
                if payload:
                    self.assertEqual(error_code(payload), code)
                self.assertEqual(self.server.count("devices"), 0)
        st, hdrs, _ = self.server.request("GET", "/device/v1/enrol")
        self.assertEqual(st, 405)
        self.assertIn("POST", hdrs.get("allow", ""))


class PreauthTest(DeviceTestCase):
    """A key listed in the preauthorized_keys file is accepted at once."""

    def server_extra_args(self):
        self.listed_by_id = Device()
        self.listed_by_key = Device("ecdsa")
        self.listed_later = Device()
        self.preauth = os.path.join(self.tmp, "preauth.txt")
        with open(self.preauth, "w") as f:
            f.write("# pre-authorised devices\n\n  %s  \n" % self.listed_by_id.id)
            f.write(json.dumps(self.listed_by_key.keyobj) + "\n")
        return ["--preauthorized-keys", self.preauth]

    def test_listed_keys_accepted_at_once(self):
        for dev in (self.listed_by_id, self.listed_by_key):
            payload = self.enrol(dev, 200)
            self.assertEqual(json.loads(payload), {"device": dev.id, "status": "accepted"})
            self.assertEqual(self.server.device_row(dev.id)["status"], "accepted")
            self.session(dev)
            req, hdrs, payload = self.checkin(dev)
            self.check_director(dev, req, hdrs, payload)
        self.enrol(Device(), 202)

    def test_listed_after_enrolment(self):
        dev = self.listed_later
        self.enrol(dev, 202)
        with open(self.preauth, "a") as f:
            f.write(dev.id.upper() + "\n")
        self.enrol(dev, 200)
        self.assertEqual(self.server.device_row(dev.id)["status"], "accepted")

    def test_malformed_file_authorises_nothing(self):
        with open(self.preauth, "a") as f:
            f.write("not-a-key-id\n")
        self.enrol(self.listed_by_id, 202)
        self.assertIn("preauth", self.server.read_log())


# ---- sessions --------------------------------------------------------------------

class SessionTest(DeviceTestCase):

    def test_session_token_and_counter(self):
        dev = Device()
        self.enrol(dev)
        # Pending: refused after the signature check.
        payload = self.session(dev, 403)
        self.assertEqual(error_code(payload), "device_pending")
        self.server.accept(dev)
        payload = json.loads(self.session(dev))
        self.assertRegex(payload["token"], r"^[A-Za-z0-9_-]{96}$")
        self.assertGreater(parse_iso(payload["expires"]), time.time())
        # The token's format, independently: id || expiry || HMAC(secret, id || expiry).
        raw = base64.urlsafe_b64decode(payload["token"])
        self.assertEqual(raw[:32].hex(), dev.id)
        (exp,) = struct.unpack(">Q", raw[32:40])
        self.assertEqual(iso(exp), payload["expires"])
        mac = hmac.new(self.server.token_secret(), raw[:40], hashlib.sha256).digest()
        self.assertEqual(raw[40:], mac)
        self.assertEqual(self.server.device_row(dev.id)["session_counter"], dev.counter)

    def test_session_replay_and_refusals(self):
        dev = self.ready()
        stored = dev.counter
        other = Device()
        self.enrol(other)
        cases = [
            ("same counter", dev.envelope(dev.session_signed(counter=stored)), 409, "replayed"),
            ("lower counter", dev.envelope(dev.session_signed(counter=stored - 1 or 0)), None,
             None),
            ("wrong signer", dev.envelope(dev.session_signed(counter=stored + 5), signer=other),
             401, "bad_signature"),
            ("key mismatch", dev.envelope(dev.session_signed(counter=stored + 5),
                                          keyid=other.id), 400, "key_mismatch"),
            ("counter 0", dev.envelope(dev.session_signed(counter=0)), 400, "bad_request"),
            ("counter float", dev.envelope(dev.session_signed(counter=7.0)), 400,
             "bad_request"),
            ("device upper-case", dev.envelope(dev.session_signed(counter=stored + 5,
                                                                  device=dev.id.upper()),
                                               keyid=dev.id.upper()), 400, "bad_request"),
            ("unknown field", dev.envelope(dev.session_signed(counter=stored + 5, x=1)), 400,
             "bad_request"),
            ("bad time", dev.envelope(dev.session_signed(counter=stored + 5, time="now")), 400,
             "bad_request"),
        ]
        unknown = Device()
        cases.append(("unknown device", unknown.envelope(unknown.session_signed()), 404,
                      "unknown_device"))
        before = self.snapshot(dev)
        for name, env, status, code in cases:
            with self.subTest(name):
                st, _, payload = self.server.request("POST", "/device/v1/session", env)
                if status is None:      # counter 0 for "lower" is a 400, else 409
                    self.assertIn(st, (400, 409))
                else:
                    self.assertEqual((st, error_code(payload)), (status, code), payload)
                self.assert_unchanged(dev, before)
        # Higher counters keep working, and any gap is fine.
        self.session(dev, 200, dev.envelope(dev.session_signed(counter=stored + 100)))
        self.assertEqual(self.server.device_row(dev.id)["session_counter"], stored + 100)

    def test_session_after_reject(self):
        dev = self.ready()
        self.server.set_status(dev, "reject")
        self.assertEqual(error_code(self.session(dev, 403)), "device_rejected")


class ClockSkewTest(DeviceTestCase):
    """device_max_clock_skew on: a signed enrol/session "time" further than it
    from the server's clock is refused (nothing stored); within it, accepted."""
    server_extra = ("--device-max-clock-skew", "1h")

    def test_clock_skew(self):
        two_days = 2 * 86400
        dev = Device()
        st, _, payload = self.server.request(
            "POST", "/device/v1/enrol",
            dev.envelope(dev.enrol_signed(time=iso(time.time() - two_days))))
        self.assertEqual((st, error_code(payload)), (400, "clock_skew"), payload)
        self.enrol(dev, 202, dev.envelope(dev.enrol_signed(time=iso(time.time() - 1800))))
        self.server.accept(dev)
        before = self.snapshot(dev)
        for off in (two_days, -two_days):
            with self.subTest(off=off):
                env = dev.envelope(dev.session_signed(time=iso(time.time() + off)))
                st, _, payload = self.server.request("POST", "/device/v1/session", env)
                self.assertEqual((st, error_code(payload)), (400, "clock_skew"), payload)
                self.assert_unchanged(dev, before)
        for off in (1800, -1800):
            with self.subTest(off=off):
                self.session(dev, 200, dev.envelope(dev.session_signed(
                    time=iso(time.time() + off))))
        self.assertEqual(self.server.device_row(dev.id)["session_counter"], dev.counter)


# ---- check-ins --------------------------------------------------------------------

class CheckinTest(DeviceTestCase):

    def test_checkin_signed_answer(self):
        dev = self.ready()
        req, hdrs, payload = self.checkin(dev)
        s = self.check_director(dev, req, hdrs, payload)
        self.assertEqual(s["action"], "stay")
        self.assertEqual(sorted(s), ["_type", "action", "device", "expires", "issued", "nonce",
                                     "reports", "spec_version"])
        self.assertEqual(s["reports"], 0)       # no report stored yet
        row = self.server.device_row(dev.id)
        self.assertEqual(row["seq"], dev.seq)
        self.assertGreater(row["last_fresh"], 0)
        self.assertEqual(json.loads(row["slots_json"]), req["slots"])
        # A 64-character upper-case nonce is echoed exactly.
        req = dev.checkin_body(nonce=os.urandom(32).hex().upper())
        _, hdrs, payload = self.checkin(dev, req)
        self.check_director(dev, req, hdrs, payload)
        # The signed "reports" names the seq of the last stored report, so a
        # device knows its reports arrived (check-ins do not move it).
        seq = dev.next_seq()
        self.report(dev, {"seq": seq, "event": "failed", "reason": "hash-mismatch"})
        for _ in range(2):
            req = dev.checkin_body()
            _, hdrs, payload = self.checkin(dev, req)
            self.assertEqual(self.check_director(dev, req, hdrs, payload)["reports"], seq)

    def test_reported_version_is_the_truth(self):
        dev = self.ready()
        self.checkin(dev, dev.checkin_body(version="1.1.0", counter=2, state="trial"))
        row = self.server.device_row(dev.id)
        self.assertEqual((row["version"], row["security_counter"], row["stored_counter"]),
                         ("1.1.0", 2, 1))
        self.checkin(dev, dev.checkin_body(version="1.1.0", counter=2, state="confirmed"))
        row = self.server.device_row(dev.id)
        self.assertEqual(row["stored_counter"], 2)
        # Rolled back: the registry says so; the stored counter never falls.
        self.checkin(dev, dev.checkin_body(version="1.0.0", counter=1, state="confirmed"))
        row = self.server.device_row(dev.id)
        self.assertEqual((row["version"], row["security_counter"], row["stored_counter"]),
                         ("1.0.0", 1, 2))

    def test_checkin_replayed_seq(self):
        dev = self.ready()
        self.checkin(dev)
        self.checkin(dev)
        before = self.snapshot(dev)
        for seq in (dev.seq, dev.seq - 1):
            _, _, payload = self.checkin(dev, dev.checkin_body(seq=seq), expect=409)
            self.assertEqual(error_code(payload), "replayed")
            self.assert_unchanged(dev, before)

    def test_checkin_token_refusals(self):
        dev = self.ready()
        self.checkin(dev)
        secret = self.server.token_secret()

        def forge(device_id, expires, key=secret):
            msg = bytes.fromhex(device_id) + struct.pack(">Q", expires)
            return base64.urlsafe_b64encode(
                msg + hmac.new(key, msg, hashlib.sha256).digest()).decode()

        # A token made here with the server's secret is accepted: the format
        # is what docs/device-protocol.md says.
        self.checkin(dev, token=forge(dev.id, int(time.time()) + 60))
        before = self.snapshot(dev)
        garbled = dev.token[:10] + ("A" if dev.token[10] != "A" else "B") + dev.token[11:]
        unknown = Device()
        for name, tok, code in (
                ("missing", False, "missing_token"),
                ("empty", "", "missing_token"),
                ("garbled", garbled, "bad_token"),
                ("truncated", dev.token[:-1], "bad_token"),
                ("padded", dev.token + "=", "bad_token"),
                ("other secret", forge(dev.id, int(time.time()) + 60, b"\x01" * 32),
                 "bad_token"),
                ("expired", forge(dev.id, int(time.time()) - 1), "expired_token"),
                ("unknown device", forge(unknown.id, int(time.time()) + 60),
                 "device_not_accepted")):
            with self.subTest(name):
                _, hdrs, payload = self.checkin(dev, token=tok, expect=401)
                self.assertEqual(error_code(payload), code)
                self.assertTrue(hdrs.get("www-authenticate", "").startswith("Bearer"))
                self.assert_unchanged(dev, before)
        # Basic auth is not a bearer token.
        st, _, payload = self.server.request("POST", "/device/v1/checkin", dev.checkin_body(),
                                             {"Authorization": "Basic " + dev.token})
        self.assertEqual((st, error_code(payload)), (401, "missing_token"))

    def test_checkin_after_reject_or_decommission(self):
        for op in ("reject", "decommission"):
            dev = self.ready()
            self.checkin(dev)
            self.server.set_status(dev, op)
            before = self.snapshot(dev)
            _, _, payload = self.checkin(dev, expect=401)
            self.assertEqual(error_code(payload), "device_not_accepted")
            self.assert_unchanged(dev, before)

    def test_checkin_body_refusals(self):
        dev = self.ready()
        self.checkin(dev)
        before = self.snapshot(dev)
        seq = dev.seq + 1

        def body(**over):
            b = dev.checkin_body(seq=seq)
            for k, v in over.items():
                if v is KeyError:
                    del b[k]
                else:
                    b[k] = v
            return b

        def running(**over):
            r = {"version": "1.0.0", "security_counter": 1, "slot": 0}
            r.update(over)
            return r

        good_slots = dev.checkin_body()["slots"]
        cases = [
            ("nonce short", body(nonce="ab" * 15 + "a")),
            ("nonce long", body(nonce="ab" * 32 + "a")),
            ("nonce not hex", body(nonce="zz" * 16)),
            ("nonce number", body(nonce=1234567890123456)),
            ("nonce missing", body(nonce=KeyError)),
            ("seq string", body(seq="5")),
            ("seq float", body(seq=5.5)),
            ("seq negative", body(seq=-1)),
            ("seq zero", body(seq=0)),
            ("seq missing", body(seq=KeyError)),
            ("running missing", body(running=KeyError)),
            ("running not object", body(running=[1])),
            ("running.version not semver", body(running=running(version="1.0"))),
            ("running.version number", body(running=running(version=1))),
            ("running.security_counter negative", body(running=running(security_counter=-1))),
            ("running.slot 2", body(running=running(slot=2))),
            ("running extra", body(running=running(extra=1))),
            ("slots missing", body(slots=KeyError)),
            ("slots three", body(slots=good_slots + [good_slots[1]])),
            ("slots not array", body(slots={})),
            ("slot twice", body(slots=[good_slots[0], good_slots[0]])),
            ("slot state bad", body(slots=[dict(good_slots[0], state="happy")])),
            ("empty slot with version", body(slots=[good_slots[0],
                                                     dict(good_slots[1], version="1.0.0")])),
            ("running slot disagrees", body(slots=[dict(good_slots[0], version="2.0.0")])),
            ("slot extra field", body(slots=[dict(good_slots[0], x=1)])),
            ("unknown top-level field", body(extra=True)),
            ("top-level array", [body()]),
        ]
        for name, b in cases:
            with self.subTest(name):
                _, _, payload = self.checkin(dev, b, expect=400)
                self.assertEqual(error_code(payload), "bad_request")
                self.assert_unchanged(dev, before)
        for name, raw, ctype, status, code in (
                ("malformed", b'{"nonce":', "application/json", 400, "malformed_json"),
                ("duplicate key", b'{"seq":1,"seq":2}', "application/json", 400,
                 "malformed_json"),
                ("deep", b"[" * 40 + b"]" * 40, "application/json", 400, "malformed_json"),
                ("form", b"seq=1", "application/x-www-form-urlencoded", 415,
                 "unsupported_media_type"),
                ("oversized", b'{"nonce":"' + b"a" * (65 * 1024) + b'"}', "application/json",
                 413, "too_large")):
            with self.subTest(name):
                _, _, payload = self.checkin(dev, raw=raw, content_type=ctype, expect=status)
                if payload:
                    self.assertEqual(error_code(payload), code)
                self.assert_unchanged(dev, before)
        # And the device still works afterwards with the next seq.
        self.checkin(dev, dev.checkin_body(seq=seq))

    def test_concurrent_checkins(self):
        """Check-ins of many devices at once share transactions (group
        commit): each still gets its own answer, replays among them are
        refused, and every accepted seq is stored."""
        devs = [self.ready() for _ in range(8)]
        results = {d.id: [] for d in devs}

        def worker(dev):
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
            try:
                for i in range(1, 16):
                    # Each seq twice in a row: the second one is a replay.
                    for _ in range(2):
                        body = dev.checkin_body(seq=i)
                        conn.request("POST", "/device/v1/checkin", json.dumps(body).encode(),
                                     {"Content-Type": "application/json",
                                      "Authorization": "Bearer " + dev.token})
                        r = conn.getresponse()
                        results[dev.id].append((body, r.status, dict(
                            (k.lower(), v) for k, v in r.getheaders()), r.read()))
            finally:
                conn.close()

        import threading
        threads = [threading.Thread(target=worker, args=(d,)) for d in devs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for dev in devs:
            got = results[dev.id]
            self.assertEqual([st for _, st, _, _ in got], [200, 409] * 15)
            for body, st, hdrs, payload in got:
                if st == 200:
                    self.check_director(dev, body, hdrs, payload)
            self.assertEqual(self.server.device_row(dev.id)["seq"], 15)

    def test_checkin_logged(self):
        dev = self.ready()
        self.checkin(dev)
        want = r"info checkin .*status=200 .*device=%s action=stay target=-" % dev.id
        # The line is written once the answer is sent: give it a moment.
        deadline = time.time() + 5
        while time.time() < deadline and not re.search(want, self.server.read_log()):
            time.sleep(0.02)
        self.assertRegex(self.server.read_log(), want)


# ---- reports ------------------------------------------------------------------------

class ReportTest(DeviceTestCase):

    def test_reports_appended_to_history(self):
        dev = self.ready()
        events = [
            {"event": "downloading", "target": "fw/a-1.1.0.img", "version": "1.1.0"},
            {"event": "installed", "target": "fw/a-1.1.0.img"},
            {"event": "rebooted"},
            {"event": "confirmed", "version": "1.1.0", "detail": "slot B"},
            {"event": "failed", "target": "fw/a-1.2.0.img", "reason": "hash-mismatch",
             "detail": "download 2"},
            {"event": "rolled_back", "version": "1.2.0", "reason": "no-bootable-image"},
        ]
        for e in events:
            self.report(dev, dict(e, seq=dev.next_seq()))
        hist = self.server.history(dev.id)
        self.assertEqual(hist[0][0], "enrol")
        self.assertEqual(hist[1:], [(e["event"], e.get("target", ""), e.get("version", ""),
                                     e.get("reason", ""), e.get("detail")) for e in events])
        # Reports and check-ins share one seq.
        self.assertEqual(self.server.device_row(dev.id)["seq"], dev.seq)
        self.checkin(dev, dev.checkin_body(seq=dev.seq), expect=409)
        self.checkin(dev)
        self.report(dev, {"seq": dev.seq, "event": "rebooted"}, expect=409)

    def test_report_refusals(self):
        dev = self.ready()
        self.report(dev, {"seq": dev.next_seq(), "event": "downloading"})
        before = self.snapshot(dev)
        seq = dev.seq + 1
        cases = [
            ("replayed", {"seq": dev.seq, "event": "installed"}, 409, "replayed"),
            ("unknown event", {"seq": seq, "event": "exploded"}, 400, "bad_request"),
            ("event missing", {"seq": seq}, 400, "bad_request"),
            ("failed without reason", {"seq": seq, "event": "failed"}, 400, "bad_request"),
            ("rolled_back without reason", {"seq": seq, "event": "rolled_back"}, 400,
             "bad_request"),
            ("reason not a name", {"seq": seq, "event": "failed", "reason": "it broke"}, 400,
             "bad_request"),
            ("reason unknown name", {"seq": seq, "event": "failed", "reason": "unknown"}, 400,
             "bad_request"),
            ("reason null", {"seq": seq, "event": "failed", "reason": None}, 400,
             "bad_request"),
            ("version not semver", {"seq": seq, "event": "installed", "version": "v1"}, 400,
             "bad_request"),
            ("target too long", {"seq": seq, "event": "installed", "target": "t" * 256}, 400,
             "bad_request"),
            ("detail too long", {"seq": seq, "event": "installed", "detail": "d" * 1025}, 400,
             "bad_request"),
            ("unknown field", {"seq": seq, "event": "installed", "x": 1}, 400, "bad_request"),
            ("seq missing", {"event": "installed"}, 400, "bad_request"),
        ]
        for name, body, status, code in cases:
            with self.subTest(name):
                payload = self.report(dev, body, expect=status)
                self.assertEqual(error_code(payload), code)
                self.assert_unchanged(dev, before)
        for name, tok, code in (("garbled", dev.token[:-2] + "AA", "bad_token"),
                                ("missing", "", "missing_token")):
            with self.subTest(name):
                st, _, payload = self.server.request(
                    "POST", "/device/v1/report", {"seq": seq, "event": "rebooted"},
                    {"Authorization": "Bearer " + tok} if tok else {})
                self.assertEqual((st, error_code(payload)), (401, code))
                self.assert_unchanged(dev, before)
        payload = self.report(dev, None, raw=b"{", expect=400)
        self.assertEqual(error_code(payload), "malformed_json")
        payload = self.report(dev, None, raw=b"{}", content_type="text/plain", expect=415)
        self.assert_unchanged(dev, before)


class DirectorKeyTest(DeviceTestCase):

    def test_director_key_shape(self):
        keyid, keyobj = self.director_key()
        self.assertEqual(keyid, keyid_of(keyobj))
        st, _, _ = self.server.request("POST", "/device/v1/director-key", {})
        self.assertEqual(st, 405)


if __name__ == "__main__":
    unittest.main()
