# SPDX-License-Identifier: Apache-2.0
"""Publishing delegated roles and new roots through fota-server
(server/releases.c, server/tuf_online.c) and the CLI commands that carry them
(`fota release push --role`, `fota root push`, tools/fota/api_cmd.c).

Each test reads as test_releases.py does: a repository made offline with
`fota repo`, a server initialised from it, an operator action, and then
either what a TUF client (fota-tuf-client, through the server's /repo/) sees,
or, for a refusal, the exact status and error code with every file under
data/repo and every state row in the database exactly as before.

Run: FOTA_SERVER_BIN=build/bin/fota-server FOTA_BIN=build/bin/fota \
     FOTA_TUF_CLIENT_BIN=build/bin/fota-tuf-client /usr/bin/python3 -m unittest -v test_metadata
"""

import hashlib
import json
import os
import subprocess
import time

from cryptography.hazmat.primitives import serialization

from devclient import SERVER_BIN, FOTA_BIN, canonical, iso, run
from test_releases import ReleaseTestCase, load


def keyid_of_file(pub_path):
    return hashlib.sha256(canonical(load(pub_path))).hexdigest()


class MetadataTestCase(ReleaseTestCase):
    """Helpers for delegations and roots on top of ReleaseTestCase."""

    def new_key(self, name):
        path = os.path.join(self.tmp, name + ".key")
        run([FOTA_BIN, "key", "new", "--type", "ed25519", "--out", path])
        return path

    def sign(self, signed, *key_paths):
        """An envelope of signed, signed here (python-cryptography) by each key."""
        sigs = []
        for key_path in key_paths:
            with open(key_path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
            sigs.append({"keyid": keyid_of_file(key_path + ".pub"),
                         "sig": key.sign(canonical(signed)).hex()})
        return {"signed": signed, "signatures": sigs}

    def role_signed(self, version, targets=None, delegations=None, expires=None):
        s = self.targets_signed(version, targets, expires)
        if delegations is not None:
            s["delegations"] = delegations
        return s

    @staticmethod
    def delegations(*roles):
        """roles: (name, key path, paths) -> a delegations object."""
        out = {"keys": {}, "roles": []}
        for name, key_path, paths in roles:
            kid = keyid_of_file(key_path + ".pub")
            out["keys"][kid] = load(key_path + ".pub")
            out["roles"].append({"name": name, "keyids": [kid], "threshold": 1,
                                 "terminating": False, "paths": paths})
        return out

    def post(self, body, token=None, path="/api/v1/releases"):
        return self.srv.api("POST", path, body=body, token=token or self.deploy)

    def served(self, name):
        with open(os.path.join(self.meta, name), "rb") as f:
            return f.read()

    def staged(self, role):
        return load(os.path.join(self.repo["repo"], "staged", role + ".json"))

    def repo_cmd(self, *args):
        return run([FOTA_BIN, "repo"] + [str(a) for a in args] + ["--repo", self.repo["repo"]])

    def admin_args(self):
        path = os.path.join(self.tmp, "admin.token")
        with open(path, "w") as f:
            f.write(self.srv.admin + "\n")
        return ["--server", "http://127.0.0.1:%d" % self.srv.port, "--token-file", path]

    def restart(self, keys=None):
        """Stop the server and serve the same data dir again (maybe with
        other online keys); returns once it answers."""
        self.srv.stop()
        if keys is not None:
            self.srv.keys = keys
        self.srv.log = open(self.srv.log_path, "ab")
        self.srv.proc = subprocess.Popen(
            [SERVER_BIN, "serve", "--data-dir", self.srv.data, "--listen",
             "127.0.0.1:%d" % self.srv.port, "--threads", "2"] + self.srv.keys,
            stdout=self.srv.log, stderr=self.srv.log)
        deadline = time.time() + 20
        while True:
            self.assertIsNone(self.srv.proc.poll(), self.srv.read_log()[-3000:])
            try:
                if self.srv.request("GET", "/repo/metadata/root.json")[0] == 200:
                    return
            except OSError:
                pass
            self.assertLess(time.time(), deadline, self.srv.read_log())
            time.sleep(0.05)


# ---- delegated roles --------------------------------------------------------------------

class TestDelegatedRoles(MetadataTestCase):

    def setUp(self):
        super().setUp()
        self.team = self.new_key("team-y")

    def stage_delegation(self, data, name="board-y/fw-2.0.0.bin", custom=None):
        """delegate board-y (paths board-y/*), a target in it, both signed."""
        self.repo_cmd("delegate", "--name", "board-y", "--key", self.team + ".pub",
                      "--path", "board-y/*")
        img = self.image(name, data)
        args = ["add-target", img, "--role", "board-y", "--name", name]
        if custom is not None:
            args += ["--custom", json.dumps(custom)]
        self.repo_cmd(*args)
        self.repo_cmd("sign", "board-y", "--key", self.team)
        self.repo_cmd("sign", "targets", "--key", self.repo["keys"]["targets"])
        return img

    def test_delegation_and_role_in_one_request(self):
        data = os.urandom(3000)
        custom = {"hardware_ids": ["board-y"], "version": "2.0.0", "security_counter": 4}
        self.stage_delegation(data, custom=custom)
        st, v, _ = self.upload("board-y/fw-2.0.0.bin", data)
        self.assertEqual(st, 201, v)
        targets, role = self.staged("targets"), self.staged("board-y")
        st, v, _ = self.post({"targets": targets, "roles": {"board-y": role}})
        self.assertEqual(st, 201, v)
        self.assertEqual((v["targets_version"], v["roles"], v["snapshot_version"],
                          v["timestamp_version"]), (2, {"board-y": 1}, 2, 2))
        self.assertEqual([(r["target"], r["version"], r["security_counter"])
                          for r in v["releases"]], [("board-y/fw-2.0.0.bin", "2.0.0", 4)])

        # Served exactly as signed; ONE snapshot lists both roles.
        self.assertEqual(self.served("1.board-y.json"), canonical(role))
        self.assertEqual(self.served("board-y.json"), canonical(role))
        self.assertEqual(self.served("targets.json"), canonical(targets))
        snap = load(os.path.join(self.meta, "snapshot.json"))
        role_bytes = canonical(role)
        self.assertEqual(snap["signed"]["meta"]["board-y.json"],
                         {"version": 1, "length": len(role_bytes),
                          "hashes": {"sha256": hashlib.sha256(role_bytes).hexdigest()}})
        self.assertEqual(snap["signed"]["meta"]["targets.json"]["version"], 2)
        self.assertTrue(os.path.exists(os.path.join(self.meta, "2.snapshot.json")))

        # A device finds the target through the delegation, via the server.
        self.assertEqual(self.download("board-y/fw-2.0.0.bin"), data)
        st, v, _ = self.srv.api("GET", "/api/v1/audit?limit=1000")
        entry = [e for e in v["entries"] if e["action"] == "release.publish"][-1]
        self.assertEqual((entry["actor"], entry["detail"]["roles"]), ("ci", {"board-y": 1}))
        # the release of a delegated target lists like any other (and the
        # paging options every list command shares reach the server)
        p = self.fota("release", "list", *self.api_args(), "--limit", "1", "--json")
        listed = json.loads(p.stdout)
        self.assertEqual(([r["target"] for r in listed["releases"]], listed["next"]),
                         (["board-y/fw-2.0.0.bin"], None))
        p = self.fota("release", "list", *self.api_args(), "--limit", "0", expect=1)
        self.assertIn("HTTP 400 bad_request", p.stderr)
        p = self.fota("rollout", "list", *self.api_args(), "--after", "r-0", "--json")
        self.assertEqual(json.loads(p.stdout)["rollouts"], [])

    def test_role_alone_then_cli(self):
        """The delegation first (CLI: targets and role together, recorded in
        the repository), then the role alone through the API, then the role
        alone through the CLI; the client follows each."""
        one, two, three = os.urandom(1000), os.urandom(1100), os.urandom(1200)
        img = self.stage_delegation(one)
        p = self.fota("release", "push", *self.api_args(), "--repo", self.repo["repo"],
                      "--role", "board-y", img)
        self.assertIn("published targets v2, board-y v1 (snapshot v2, timestamp v2)", p.stdout)
        state = load(os.path.join(self.repo["repo"], "fota-repo.json"))
        self.assertEqual(state["published"]["board-y"]["version"], 1)
        self.assertEqual(state["published"]["board-y"]["sha256"],
                         hashlib.sha256(self.served("board-y.json")).hexdigest())
        self.assertEqual(self.download("board-y/fw-2.0.0.bin"), one)

        # v2 of the role alone, through the API: targets stays v2.
        img2 = self.image("board-y/fw-2.1.0.bin", two)
        self.repo_cmd("add-target", img2, "--role", "board-y", "--name", "board-y/fw-2.1.0.bin")
        self.repo_cmd("sign", "board-y", "--key", self.team)
        role = self.staged("board-y")
        self.assertEqual(role["signed"]["version"], 2)
        self.upload("board-y/fw-2.1.0.bin", two)
        targets_before = self.served("targets.json")
        st, v, _ = self.post({"roles": {"board-y": role}})
        self.assertEqual(st, 201, v)
        self.assertEqual((v["targets_version"], v["roles"], v["snapshot_version"]),
                         (2, {"board-y": 2}, 3))
        self.assertEqual(self.served("targets.json"), targets_before)
        meta = load(os.path.join(self.meta, "snapshot.json"))["signed"]["meta"]
        self.assertEqual((meta["targets.json"]["version"], meta["board-y.json"]["version"]),
                         (2, 2))
        self.assertEqual(self.download("board-y/fw-2.1.0.bin"), two)

        # v3 through the CLI with only --role NAME=FILE (no targets at all).
        img3 = self.image("board-y/fw-2.2.0.bin", three)
        state = load(os.path.join(self.repo["repo"], "fota-repo.json"))
        state["published"]["board-y"] = {"version": 2, "length": len(self.served("board-y.json")),
                                         "sha256": hashlib.sha256(
                                             self.served("board-y.json")).hexdigest()}
        with open(os.path.join(self.repo["repo"], "fota-repo.json"), "w") as f:
            json.dump(state, f)
        self.repo_cmd("add-target", img3, "--role", "board-y", "--name", "board-y/fw-2.2.0.bin")
        self.repo_cmd("sign", "board-y", "--key", self.team)
        role_file = os.path.join(self.repo["repo"], "staged", "board-y.json")
        p = self.fota("release", "push", *self.api_args(), "--role", "board-y=" + role_file,
                      img3, "--json")
        out = json.loads(p.stdout)
        self.assertEqual(out["published"]["roles"], {"board-y": 3})
        self.assertEqual(out["uploaded"][0]["name"], "board-y/fw-2.2.0.bin")
        self.assertEqual(self.download("board-y/fw-2.2.0.bin"), three)
        self.client("refresh")

    def test_nested_delegation_in_one_request(self):
        """targets -> board-y (board-y/*) -> beta (board-y/beta-*), all new."""
        beta = self.new_key("beta")
        data = os.urandom(700)
        name = "board-y/beta-fw.bin"
        self.upload(name, data)
        targets = self.sign(self.role_signed(
            2, delegations=self.delegations(("board-y", self.team, ["board-y/*"]))),
            self.repo["keys"]["targets"])
        board_y = self.sign(self.role_signed(
            1, delegations=self.delegations(("beta", beta, ["board-y/beta-*"]))), self.team)
        beta_role = self.sign(self.role_signed(1, {name: self.entry(data)}), beta)
        st, v, _ = self.post({"targets": targets,
                              "roles": {"beta": beta_role, "board-y": board_y}})
        self.assertEqual(st, 201, v)
        self.assertEqual(v["roles"], {"beta": 1, "board-y": 1})
        self.assertEqual(self.download(name), data)
        # The sub-role alone later: its delegator is a published role now.
        data2 = os.urandom(800)
        self.upload("board-y/beta-fw2.bin", data2)
        beta2 = self.sign(self.role_signed(2, {name: self.entry(data),
                                               "board-y/beta-fw2.bin": self.entry(data2)}), beta)
        st, v, _ = self.post({"roles": {"beta": beta2}})
        self.assertEqual(st, 201, v)
        self.assertEqual(self.download("board-y/beta-fw2.bin"), data2)

    def test_role_names_encoded_in_file_names(self):
        name = "team y/ä"
        data = os.urandom(300)
        self.upload("y/fw.bin", data)
        targets = self.sign(self.role_signed(
            2, delegations=self.delegations((name, self.team, ["y/*"]))),
            self.repo["keys"]["targets"])
        role = self.sign(self.role_signed(1, {"y/fw.bin": self.entry(data)}), self.team)
        st, v, _ = self.post({"targets": targets, "roles": {name: role}})
        self.assertEqual(st, 201, v)
        self.assertEqual(self.served("1.team%20y%2F%C3%A4.json"), canonical(role))
        self.assertIn(name + ".json",
                      load(os.path.join(self.meta, "snapshot.json"))["signed"]["meta"])
        self.assertEqual(self.download("y/fw.bin"), data)


class TestDelegationRefusals(MetadataTestCase):
    """Every refusal: the status and code, and nothing stored or written."""

    def setUp(self):
        super().setUp()
        self.team = self.new_key("team-y")
        self.data = os.urandom(900)
        self.upload("board-y/fw.bin", self.data)
        self.targets2 = self.sign(self.role_signed(
            2, delegations=self.delegations(("board-y", self.team, ["board-y/*"]))),
            self.repo["keys"]["targets"])
        role = self.sign(self.role_signed(1, {"board-y/fw.bin": self.entry(self.data)}),
                         self.team)
        st, v, _ = self.post({"targets": self.targets2, "roles": {"board-y": role}})
        self.assertEqual(st, 201, v)
        self.before = self.state()

    def refused(self, body, status, code, token=None, path="/api/v1/releases"):
        res = self.post(body, token=token, path=path)
        self.assertRefused(res, status, code, self.before)
        return res[1]

    def role(self, version=2, targets=None, key=None, **kw):
        if targets is None:
            targets = {"board-y/fw.bin": self.entry(self.data)}
        return self.sign(self.role_signed(version, targets, **kw), key or self.team)

    def test_signature_expiry_version(self):
        other = self.new_key("other")
        msg = self.refused({"roles": {"board-y": self.role(key=other)}}, 400, "bad_signature")
        self.assertIn("0 of 1 signatures by the keys targets delegates it to", msg["message"])
        # signed by the targets key: a key of root, but not the delegated one
        self.refused({"roles": {"board-y": self.role(key=self.repo["keys"]["targets"])}},
                     400, "bad_signature")
        self.refused({"roles": {"board-y": dict(self.role(), signatures=[])}}, 400,
                     "bad_signature")
        self.refused({"roles": {"board-y": self.role(expires=iso(time.time() - 60))}}, 400,
                     "expired")
        self.refused({"roles": {"board-y": self.role(version=1)}}, 409, "version")

    def test_paths_and_images(self):
        self.upload("board-x/fw.bin", self.data)
        self.before = self.state()
        msg = self.refused({"roles": {"board-y": self.role(
            targets={"board-x/fw.bin": self.entry(self.data)})}}, 400, "bad_target")
        self.assertIn("outside the paths delegated to 'board-y'", msg["message"])
        # "*" does not cross a "/"
        self.upload("board-y/sub/fw.bin", self.data)
        self.before = self.state()
        self.refused({"roles": {"board-y": self.role(
            targets={"board-y/sub/fw.bin": self.entry(self.data)})}}, 400, "bad_target")
        self.refused({"roles": {"board-y": self.role(
            targets={"board-y/missing.bin": self.entry(os.urandom(10))})}}, 409,
            "target_missing")
        self.refused({"roles": {"board-y": self.role(
            targets={"board-y/fw.bin": self.entry(self.data, length=5)})}}, 409,
            "target_length")

    def test_unknown_roles(self):
        # a role nobody delegates to
        msg = self.refused({"roles": {"orphan": self.role(version=1)}}, 409, "unknown_role")
        self.assertIn("no role delegates to it", msg["message"])
        # targets delegating to a role neither published nor sent
        ghost = self.new_key("ghost")
        t3 = self.sign(self.role_signed(3, delegations=self.delegations(
            ("board-y", self.team, ["board-y/*"]), ("ghost", ghost, ["g/*"]))),
            self.repo["keys"]["targets"])
        msg = self.refused({"targets": t3}, 409, "unknown_role")
        self.assertIn("'ghost'", msg["message"])
        # the same from a delegated role
        self.refused({"roles": {"board-y": self.role(
            delegations=self.delegations(("sub", ghost, ["board-y/sub/*"])))}}, 409,
            "unknown_role")
        # new targets dropping the delegation of a role sent with it
        t3 = self.sign(self.role_signed(3), self.repo["keys"]["targets"])
        self.refused({"targets": t3, "roles": {"board-y": self.role()}}, 409, "unknown_role")
        # two new roles delegating to each other, reached from nowhere
        a_key, b_key = self.new_key("a"), self.new_key("b")
        a = self.sign(self.role_signed(1, delegations=self.delegations(("b", b_key, ["*"]))),
                      a_key)
        b = self.sign(self.role_signed(1, delegations=self.delegations(("a", a_key, ["*"]))),
                      b_key)
        self.refused({"roles": {"a": a, "b": b}}, 409, "unknown_role")

    def test_rotated_delegation_keys_need_the_role(self):
        """New targets that delegate board-y to another key, without board-y
        re-signed by it: the served board-y would no longer verify."""
        team2 = self.new_key("team-y2")
        t3 = self.sign(self.role_signed(3, delegations=self.delegations(
            ("board-y", team2, ["board-y/*"]))), self.repo["keys"]["targets"])
        msg = self.refused({"targets": t3}, 400, "bad_signature")
        self.assertIn("send it in the same request", msg["message"])
        # ... and with it re-signed by the new key, accepted
        st, v, _ = self.post({"targets": t3, "roles": {"board-y": self.role(key=team2)}})
        self.assertEqual(st, 201, v)
        self.client("refresh")
        self.assertEqual(self.download("board-y/fw.bin"), self.data)

    def test_bad_bodies_and_names(self):
        env = self.role()
        for body in ({}, {"roles": {}}, {"roles": []}, {"roles": {"board-y": env}, "x": 1},
                     {"root": env}, {"targets": []}):
            with self.subTest(body=str(body)[:60]):
                self.refused(body, 400, "bad_request")
        for name in ("snapshot", "targets", "root", "1.board", "", "a\x01b", "x" * 256,
                     "\u00e9" * 70):
            with self.subTest(name=name[:20]):
                self.refused({"roles": {name: env}}, 400, "bad_request")
        snap = dict(env, signed=dict(env["signed"], _type="snapshot"))
        self.refused({"roles": {"board-y": snap}}, 400, "bad_metadata")
        # a delegation without paths, or delegating the same role twice
        bad = self.role_signed(2, delegations=self.delegations(("sub", self.team, ["x/*"])))
        del bad["delegations"]["roles"][0]["paths"]
        self.refused({"roles": {"board-y": self.sign(bad, self.team)}}, 400, "bad_metadata")
        twice = self.role_signed(2, delegations=self.delegations(
            ("sub", self.team, ["x/*"]), ("sub", self.team, ["y/*"])))
        self.refused({"roles": {"board-y": self.sign(twice, self.team)}}, 400, "bad_metadata")
        # a read token
        self.refused({"roles": {"board-y": env}}, 403, "forbidden", token=self.reader)

    def test_cli_refusals(self):
        # unsigned role; bad --role forms; a server refusal is exit 1
        unsigned = os.path.join(self.tmp, "unsigned.json")
        with open(unsigned, "w") as f:
            json.dump(dict(self.role(), signatures=[]), f)
        p = self.fota("release", "push", *self.api_args(), "--role", "board-y=" + unsigned,
                      expect=1)
        self.assertIn("not signed; sign it with 'fota repo sign board-y'", p.stderr)
        self.fota("release", "push", *self.api_args(), "--role", "=" + unsigned, expect=2)
        self.fota("release", "push", *self.api_args(), "--role", "board-y", expect=2)
        self.fota("release", "push", *self.api_args(), "--role", "board-y=", expect=2)
        old = os.path.join(self.tmp, "old.json")
        with open(old, "w") as f:
            json.dump(self.role(version=1), f)
        p = self.fota("release", "push", *self.api_args(), "--role", "board-y=" + old, expect=1)
        self.assertIn("HTTP 409 version", p.stderr)
        self.assertEqual(self.state(), self.before)


# ---- new roots ------------------------------------------------------------------------------

class TestRootPublish(MetadataTestCase):

    def rotate_root(self, add, remove, sign_with):
        self.repo_cmd("rotate", "root", "--add-key", add + ".pub", "--remove-key",
                      remove + ".pub")
        for k in sign_with:
            self.repo_cmd("sign", "root", "--key", k)
        return self.staged("root")

    def test_rotation_through_the_server(self):
        """root v2 (root key replaced) signed by the old and the new key,
        pushed with `fota root push --repo`; a device holding v1 moves to v2
        and keeps updating; the server restarts on it."""
        self.client("refresh")
        root1 = self.repo["keys"]["root"]
        root2 = self.new_key("root2")
        self.rotate_root(root2, root1, [root1, root2])
        p = self.fota("root", "push", *self.admin_args(), "--repo", self.repo["repo"])
        self.assertIn("published root v2 (snapshot v2, timestamp v2)", p.stdout)
        served = self.served("2.root.json")
        self.assertEqual(served, self.served("root.json"))
        self.assertEqual(served, canonical(self.staged("root")))
        # the operator's repository records it as `fota repo publish` would
        with open(os.path.join(self.repo["repo"], "metadata", "2.root.json"), "rb") as f:
            self.assertEqual(f.read(), served)
        state = load(os.path.join(self.repo["repo"], "fota-repo.json"))
        self.assertEqual(state["published"]["root"]["version"], 2)
        # snapshot and timestamp re-signed at once
        self.assertEqual((self.version("snapshot"), self.version("timestamp")), (2, 2))
        p = self.client("-v", "refresh")
        self.assertIn("root v2", p.stderr)
        st, v, _ = self.srv.api("GET", "/api/v1/audit?limit=1000")
        entry = [e for e in v["entries"] if e["action"] == "root.publish"][-1]
        self.assertEqual((entry["actor"], entry["object"], entry["detail"]["previous"]),
                         ("test-admin", "root/2", 1))

        # releases keep working under the new root, and after a restart
        data = os.urandom(1500)
        path, _ = self.stage("fw-after.bin", data)
        self.fota("release", "push", *self.api_args(), "--repo", self.repo["repo"], path)
        self.assertEqual(self.download("fw-after.bin"), data)
        self.restart()
        self.client("refresh")

        # v3 signed only by a new key (its own threshold), not by v2's key
        root3 = self.new_key("root3")
        self.before = self.state()
        self.rotate_root(root3, root2, [root3])
        p = self.fota("root", "push", *self.admin_args(), "--repo", self.repo["repo"],
                      expect=1)
        self.assertIn("HTTP 400 bad_signature", p.stderr)
        self.assertIn("root keys of the published root v2", p.stderr)
        self.assertEqual(self.state(), self.before)
        # signed by v2's key only: not by its own threshold
        st, v, _ = self.post({"root": self.sign(self.staged("root")["signed"], root2)},
                             token=self.srv.admin, path="/api/v1/root")
        self.assertEqual((st, v["error"]), (400, "bad_signature"), v)
        self.assertIn("by the root keys of the new root v3", v["message"])
        self.assertEqual(self.state(), self.before)
        # both: accepted
        self.repo_cmd("sign", "root", "--key", root2)
        self.fota("root", "push", *self.admin_args(), "--repo", self.repo["repo"])
        p = self.client("-v", "refresh")
        self.assertIn("root v3", p.stderr)

    def test_refusals(self):
        root1 = self.repo["keys"]["root"]
        root2 = self.new_key("root2")
        signed = self.rotate_root(root2, root1, [root1, root2])["signed"]
        before = self.state()

        def refused(env, status, code, token=None):
            res = self.post({"root": env}, token=token or self.srv.admin, path="/api/v1/root")
            self.assertRefused(res, status, code, before)
            return res[1]

        # a version skipped, or the published one again
        refused(self.sign(dict(signed, version=3), root1, root2), 409, "version")
        refused(load(os.path.join(self.meta, "1.root.json")), 409, "version")
        refused(self.sign(dict(signed, expires=iso(time.time() - 60)), root1, root2), 400,
                "expired")
        # a root without the server's timestamp key: the server could not sign
        ts2 = self.new_key("timestamp2")
        self.repo_cmd("rotate", "timestamp", "--add-key", ts2 + ".pub", "--remove-key",
                      self.repo["keys"]["timestamp"] + ".pub")
        no_ts = self.staged("root")["signed"]
        msg = refused(self.sign(no_ts, root1, root2), 409, "online_keys")
        self.assertIn("timestamp key", msg["message"])
        # scope, shape, body
        good = self.sign(signed, root1, root2)
        refused(good, 403, "forbidden", token=self.deploy)
        refused(self.sign(self.targets_signed(2), root1), 400, "bad_metadata")
        no_roles = dict(signed, roles={k: v for k, v in signed["roles"].items()
                                       if k != "timestamp"})
        refused(self.sign(no_roles, root1, root2), 400, "bad_metadata")
        for body in ({}, {"targets": good}, {"root": good, "x": 1}, {"root": []}):
            res = self.post(body, token=self.srv.admin, path="/api/v1/root")
            self.assertRefused(res, 400, res[1].get("error"), before)
            self.assertIn(res[1]["error"], ("bad_request", "bad_metadata"))
        st, _, hdrs = self.srv.api("GET", "/api/v1/root")
        self.assertEqual((st, hdrs.get("allow")), (405, "POST"))
        # the CLI: usage errors exit 2
        self.fota("root", "push", *self.admin_args(), expect=2)
        self.fota("root", "push", *self.admin_args(), "--repo", self.repo["repo"], "--root",
                  "x.json", expect=2)
        p = self.fota("root", "push", "--help")
        self.assertTrue(p.stdout.startswith("Usage: fota root push"), p.stdout)
        self.assertEqual(self.state(), before)
        # ... and the good one, by file, with --json
        path = os.path.join(self.tmp, "root2.json")
        with open(path, "w") as f:
            json.dump(good, f)
        p = self.fota("root", "push", *self.admin_args(), "--root", path, "--json")
        self.assertEqual(json.loads(p.stdout)["root_version"], 2)

    def test_targets_key_rotation_needs_targets(self):
        root1 = self.repo["keys"]["root"]
        targets2 = self.new_key("targets2")
        self.repo_cmd("rotate", "targets", "--add-key", targets2 + ".pub", "--remove-key",
                      self.repo["keys"]["targets"] + ".pub")
        self.repo_cmd("sign", "root", "--key", root1)
        before = self.state()
        p = self.fota("root", "push", *self.admin_args(), "--repo", self.repo["repo"],
                      expect=1)
        self.assertIn("HTTP 409 targets_keys", p.stderr)
        self.assertEqual(self.state(), before)
        # targets signed with the new key, in the same request
        data = os.urandom(600)
        img = self.image("fw-t2.bin", data)
        self.repo_cmd("add-target", img, "--name", "fw-t2.bin")
        self.repo_cmd("sign", "targets", "--key", targets2)
        self.upload("fw-t2.bin", data)
        p = self.fota("root", "push", *self.admin_args(), "--repo", self.repo["repo"],
                      "--targets", self.staged_targets)
        self.assertIn("published root v2, targets v2 (snapshot v2, timestamp v2)", p.stdout)
        self.assertEqual(self.download("fw-t2.bin"), data)
        state = load(os.path.join(self.repo["repo"], "fota-repo.json"))
        self.assertEqual((state["published"]["root"]["version"],
                          state["published"]["targets"]["version"]), (2, 2))

    def test_online_key_rotation_in_two_roots(self):
        """The documented way to rotate the timestamp key: a root listing the
        old and the new key, the server restarted with the new one, then a
        root without the old key."""
        root1 = self.repo["keys"]["root"]
        ts1, ts2 = self.repo["keys"]["timestamp"], self.new_key("timestamp2")
        self.client("refresh")
        self.repo_cmd("rotate", "timestamp", "--add-key", ts2 + ".pub")
        self.repo_cmd("sign", "root", "--key", root1)
        self.fota("root", "push", *self.admin_args(), "--repo", self.repo["repo"])
        keys = list(self.srv.keys)
        keys[keys.index("--timestamp-key") + 1] = ts2
        self.restart(keys)
        self.repo_cmd("rotate", "timestamp", "--remove-key", ts1 + ".pub")
        self.repo_cmd("sign", "root", "--key", root1)
        self.fota("root", "push", *self.admin_args(), "--repo", self.repo["repo"])
        ts = load(os.path.join(self.meta, "timestamp.json"))
        self.assertEqual([s["keyid"] for s in ts["signatures"]], [keyid_of_file(ts2 + ".pub")])
        p = self.client("-v", "refresh")
        self.assertIn("root v3", p.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
