# SPDX-License-Identifier: Apache-2.0
"""The server side of fuzz/make_corpus.sh: a real fota-server, a device with
the fixture's device key and an operator, and what they say to each other,
written as seeds for the server and agent harnesses and as the server
harnesses' setup (fuzz/fixture/server-setup/).

Run by make_corpus.sh; it relies on tests/server/devclient.py for the
server runner and release staging. Formats (docs/fuzzing.md):

  server_api, server-setup:  "METHOD TARGET\\n" + "Name: value\\n"... + "\\n" + body
                             (no Authorization header: the harness adds its token)
  server_device:             a request body alone (the harness posts it to
                             every device endpoint)
  agent_response:            answers in order, each "STATUS LENGTH\\n" + LENGTH bytes
  director:                  Director documents and Director key sets
"""

import argparse
import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "server"))

import devclient  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

# The nonce the agent harness's getrandom() gives: bytes 0..15.
NONCE = bytes(range(16)).hex()
EXPIRES = "2099-01-01T00:00:00Z"


def load_priv(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


class FixtureDevice(devclient.Device):
    """devclient's device with the fixture's key (so the harnesses know its id)."""

    def __init__(self, key_path):
        super().__init__(hardware_id="board-a", version="1.0.0", counter=1)
        self.priv = load_priv(key_path)
        raw = self.priv.public_key().public_bytes(serialization.Encoding.Raw,
                                                  serialization.PublicFormat.Raw)
        self.keyobj = {"keytype": "ed25519", "scheme": "ed25519",
                       "keyval": {"public": raw.hex()}}
        self.id = devclient.keyid_of(self.keyobj)


def http_text(method, target, body=b"", headers=None):
    lines = ["%s %s" % (method, target)]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    return ("\n".join(lines) + "\n\n").encode() + body


class Recorder:
    def __init__(self, args, srv):
        self.args = args
        self.srv = srv
        self.answers = {}          # name -> (status, body)
        self.rollout = None        # written as "{rollout}": the harness has its own

    def write(self, harness, name, data):
        d = os.path.join(self.args.corpus, harness)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    def setup(self, name, data):
        d = os.path.join(self.args.fixture, "server-setup")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    def api(self, name, method, path, body=None, raw=None, ctype="application/json",
            expect=None, setup=None):
        """An operator request, kept as a server_api seed (and as a setup step)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else b"")
        headers = {"Authorization": "Bearer %s" % self.srv.admin}
        if data:
            headers["Content-Type"] = ctype
        st, hdrs, payload = self.srv.request(method, path, raw=data if data else None,
                                             headers=headers,
                                             content_type=ctype if data else None)
        if expect is not None and st != expect:
            raise AssertionError("%s %s: %d %s" % (method, path, st, payload[:300]))
        seed_headers = {"Content-Type": ctype} if data and ctype != "application/json" else {}
        seed_path = path.replace(self.rollout, "{rollout}") if self.rollout else path
        text = http_text(method, seed_path, data, seed_headers)
        self.write("server_api", name, text)
        if setup is not None:
            self.setup(setup, text)
        return st, payload

    def device(self, name, path, body, token=None, expect=None, setup=None):
        """A device request: its body is a server_device seed; the answer is kept."""
        data = json.dumps(body, sort_keys=True).encode()
        headers = {"Authorization": "Bearer %s" % token} if token else {}
        st, _, payload = self.srv.request("POST", path, raw=data, headers=headers)
        if expect is not None and st != expect:
            raise AssertionError("%s: %d %s" % (path, st, payload[:300]))
        self.write("server_device", name, data)
        if setup is not None:
            self.setup(setup, http_text("POST", path, data))
        self.answers[name] = (st, payload)
        return st, payload


def answers_seq(*items):
    out = b""
    for st, body in items:
        out += b"%d %d\n" % (st, len(body)) + body
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    devclient.SERVER_BIN = os.path.join(args.bin, "fota-server")
    devclient.FOTA_BIN = os.path.join(args.bin, "fota")
    keys = os.path.join(args.fixture, "keys")
    shutil.rmtree(os.path.join(args.fixture, "server-setup"), ignore_errors=True)

    # The offline repository: a copy of the fixture's, for staging a release.
    tmp = os.path.join(args.work, "server")
    os.makedirs(tmp)
    repo_dir = os.path.join(tmp, "repo")
    shutil.copytree(os.path.join(args.fixture, "repo"), repo_dir)
    repo = {"repo": repo_dir, "tmp": tmp,
            "keys": {r: os.path.join(keys, r + ".pem")
                     for r in ("root", "targets", "snapshot", "timestamp")}}

    srv = devclient.Server(tmp, repo, extra=("--director-expiry", "5000w",
                                              "--log-level", "warn"))
    # The fixture's Director key instead of the one Server made.
    shutil.copyfile(os.path.join(keys, "director.pem"), os.path.join(tmp, "director.key"))
    srv.director_pub = load_priv(os.path.join(keys, "director.pem")).public_key()
    raw = srv.director_pub.public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    srv.director_keyid = devclient.keyid_of({"keytype": "ed25519", "scheme": "ed25519",
                                             "keyval": {"public": raw.hex()}})
    srv.start()
    rec = Recorder(args, srv)
    dev = FixtureDevice(os.path.join(keys, "device.pem"))
    try:
        run(rec, srv, dev, repo, args)
    finally:
        srv.stop()


def run(rec, srv, dev, repo, args):
    # -- enrolment and acceptance
    enrol = {"_type": "enrol", "key": dev.keyobj, "hardware_id": "board-a",
             "version": "1.0.0", "security_counter": 1, "time": devclient.iso()}
    rec.device("enrol.json", "/device/v1/enrol", dev.envelope(enrol), expect=202,
               setup="01-enrol.req")
    pending = rec.answers["enrol.json"]
    rec.api("devices-pending.req", "GET", "/api/v1/devices?status=pending&hardware_id=board-a")
    rec.api("accept.req", "POST", "/api/v1/devices/%s/accept" % dev.id,
            body={"reason": "on the shipping list"}, expect=200, setup="02-accept.req")
    rec.api("tags.req", "POST", "/api/v1/devices/%s/tags" % dev.id,
            body={"add": ["eu", "beta"], "remove": ["old"]}, expect=200)
    st, accepted = srv.request("POST", "/device/v1/enrol",
                               body=dev.envelope(dict(enrol, time=devclient.iso())))[0::2]
    assert st == 200, accepted

    # -- a session and a check-in with nothing to do
    dev.session_counter = 1
    session = {"_type": "session", "device": dev.id, "counter": 1, "time": devclient.iso()}
    st, body = rec.device("session.json", "/device/v1/session", dev.envelope(session),
                          expect=200)
    token = json.loads(body)["token"]
    checkin = {"nonce": NONCE, "seq": 1,
               "running": {"version": "1.0.0", "security_counter": 1, "slot": 0},
               "slots": [{"slot": 0, "version": "1.0.0", "state": "confirmed"},
                         {"slot": 1, "version": None, "state": "empty"}]}
    rec.device("checkin-stay.json", "/device/v1/checkin", checkin, token=token, expect=200)
    stay = rec.answers["checkin-stay.json"][1]

    # -- a release: image upload, signed targets, a rollout
    with open(os.path.join(args.fixture, "images", "b.img"), "rb") as f:
        image = f.read()
    name = "fw/board-a-2.0.0.img"
    env, _ = devclient.stage_release(repo, [(name, image, {
        "hardware_ids": ["board-a"], "version": "2.0.0", "security_counter": 2})])
    devclient.run([devclient.FOTA_BIN, "repo", "bump", "targets", "--repo", repo["repo"],
                   "--expires", EXPIRES])
    devclient.run([devclient.FOTA_BIN, "repo", "sign", "targets", "--repo", repo["repo"],
                   "--key", repo["keys"]["targets"]])
    with open(os.path.join(repo["repo"], "staged", "targets.json"), "rb") as f:
        env = json.loads(f.read())
    rec.api("image-put.req", "PUT", "/api/v1/images/" + name, raw=image,
            ctype="application/octet-stream", expect=201, setup="03-image.req")
    rec.api("release.req", "POST", "/api/v1/releases", body={"targets": env}, expect=201,
            setup="04-release.req")
    rid = devclient.release_id(name, image)
    rec.api("releases.req", "GET", "/api/v1/releases?limit=10")
    rec.api("release-get.req", "GET", "/api/v1/releases/" + rid)
    st, body = rec.api("rollout-create.req", "POST", "/api/v1/rollouts",
                       body={"release": rid, "group": {"hardware_id": "board-a"},
                             "waves": [100], "success_threshold": 1.0, "failure_limit": 1.0},
                       expect=201, setup="05-rollout.req")
    rollout = json.loads(body)["id"]
    rec.rollout = rollout
    rec.api("rollout-create-filter.req", "POST", "/api/v1/rollouts",
            body={"release": rid, "group": {"devices": [dev.id]}, "waves": [10, 50, 100],
                  "success_threshold": 0.9, "failure_limit": 0.1, "rollback": False})

    # -- the check-in that installs, and every report
    checkin["seq"] = 2
    rec.device("checkin-install.json", "/device/v1/checkin", checkin, token=token, expect=200)
    install = rec.answers["checkin-install.json"][1]
    seq = 3
    reports = [("downloading", {}), ("installed", {"version": "2.0.0"}),
               ("rebooted", {"version": "2.0.0"}), ("confirmed", {"version": "2.0.0"}),
               ("failed", {"reason": "hash-mismatch", "detail": "sha256 differs"}),
               ("rolled_back", {"reason": "health-check", "version": "1.0.0"})]
    for event, extra in reports:
        body = dict({"seq": seq, "event": event, "target": name}, **extra)
        rec.device("report-%s.json" % event, "/device/v1/report", body, token=token,
                   expect=204)
        seq += 1
    after = dict(checkin, seq=seq,
                 running={"version": "2.0.0", "security_counter": 2, "slot": 1},
                 slots=[{"slot": 0, "version": "1.0.0", "state": "confirmed"},
                        {"slot": 1, "version": "2.0.0", "state": "trial"}])
    rec.device("checkin-trial.json", "/device/v1/checkin", after, token=token, expect=200)
    replayed = rec.device("checkin-replayed.json", "/device/v1/checkin", checkin, token=token,
                          expect=409)
    bad_token = srv.request("POST", "/device/v1/checkin", body=checkin,
                            headers={"Authorization": "Bearer " + "A" * 96})
    assert bad_token[0] == 401, bad_token

    # -- the operator reads and acts
    for fname, method, path in [
            ("devices.req", "GET", "/api/v1/devices?limit=5&fresh=true&tag=eu"),
            ("device.req", "GET", "/api/v1/devices/%s?history_limit=3" % dev.id),
            ("rollouts.req", "GET", "/api/v1/rollouts?state=active&limit=2"),
            ("rollout.req", "GET", "/api/v1/rollouts/%s" % rollout),
            ("rollout-devices.req", "GET", "/api/v1/rollouts/%s/devices?status=confirmed"
             % rollout),
            ("audit.req", "GET", "/api/v1/audit?limit=3"),
            ("metrics.req", "GET", "/metrics"),
            ("repo-timestamp.req", "GET", "/repo/metadata/timestamp.json"),
            ("repo-traversal.req", "GET", "/repo/metadata/..%2F..%2Ffota.db"),
            ("director-key.req", "GET", "/device/v1/director-key"),
            ("dashboard.req", "GET", "/")]:
        rec.api(fname, method, path)
    rec.api("rollout-pause.req", "POST", "/api/v1/rollouts/%s/pause" % rollout,
            body={"reason": "looking"}, expect=200)
    rec.api("rollout-resume.req", "POST", "/api/v1/rollouts/%s/resume" % rollout, expect=200)
    rec.api("rollout-abort.req", "POST", "/api/v1/rollouts/%s/abort" % rollout, expect=200)
    rec.api("reject.req", "POST", "/api/v1/devices/%s/reject" % dev.id, expect=200)
    rec.api("decommission.req", "POST", "/api/v1/devices/%s/decommission" % dev.id,
            body={"reason": "scrapped"}, expect=200)
    rejected = srv.request("POST", "/device/v1/session",
                           body=dev.envelope(dict(session, counter=2)))
    # A root rotation (admin): root v2 signed by the old and the new root key.
    keys = os.path.join(args.fixture, "keys")
    devclient.run([devclient.FOTA_BIN, "repo", "rotate", "root", "--repo", repo["repo"],
                   "--add-key", os.path.join(keys, "root2.pem.pub"), "--expires", EXPIRES])
    devclient.run([devclient.FOTA_BIN, "repo", "sign", "root", "--repo", repo["repo"],
                   "--key", os.path.join(keys, "root.pem"), "--key",
                   os.path.join(keys, "root2.pem")])
    with open(os.path.join(repo["repo"], "staged", "root.json"), "rb") as f:
        root2 = json.loads(f.read())
    rec.api("root.req", "POST", "/api/v1/root", body={"root": root2}, expect=201)

    # -- the Director documents and key sets
    rec.write("director", "stay.json", stay)
    rec.write("director", "install.json", install)
    with open(os.path.join(args.fixture, "director-doc.json"), "wb") as f:
        f.write(install)
    with open(os.path.join(args.fixture, "director.json"), "rb") as f:
        rec.write("director", "keys.json", f.read())
    st, _, keyset = srv.request("GET", "/device/v1/director-key")
    rec.write("director", "keys-server.json", keyset)

    # -- what the agent hears, in the order it asks (enrol, session,
    # check-in, report; a 401 renews the session, a 409 jumps the counter)
    a = rec.answers
    ok_session = a["session.json"]
    seqs = {
        "accepted-stay": [(200, accepted), ok_session, (200, stay), (204, b"")],
        "accepted-install": [(200, accepted), ok_session, (200, install), (204, b"")],
        "pending": [pending],
        "rejected": [(rejected[0], rejected[2])],
        "session-replayed": [(200, accepted), (409, b'{"error":"replayed","message":"x"}'),
                             ok_session, (200, stay), (204, b"")],
        "checkin-401": [(200, accepted), ok_session, bad_token[0::2], ok_session, (200, stay),
                        (204, b"")],
        "checkin-409": [(200, accepted), ok_session, a["checkin-replayed.json"], (200, install),
                        (204, b"")],
        "server-error": [(200, accepted), ok_session, (500, b'{"error":"internal"}')],
        "network": [(200, accepted), (0, b"")],
    }
    for n, items in seqs.items():
        rec.write("agent_response", n + ".txt", answers_seq(*items))


if __name__ == "__main__":
    main()
