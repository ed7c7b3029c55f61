# SPDX-License-Identifier: Apache-2.0
"""Key compromise: what an attacker can do with some of the repository's keys.

The repository first goes through a genuine rotation, as an operator does
it (`fota repo rotate`, `fota repo sign root` with the old and the new root
keys, `fota root push` with targets signed by the new targets keys): root
keys {root2, root3} with threshold 2 (root1 rotated out), targets keys
{targets2, targets3} with threshold 2 (targets1 rotated out). Every device
here starts from root v1 and walks to v2 at its first refresh.

Defences: thresholds (spec 5.3.4, 5.4.2, 5.5.3, 5.6.3), root rotation
(a rotated-out key counts for nothing), and the split between online keys
(snapshot, timestamp, Director: on the server) and offline ones (root,
targets): whatever the online keys sign, a device installs only a target
the offline targets keys listed.

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_keys
"""

import json
import os
import unittest

from attacklib import EXIT, FOTA_BIN, META, AttackCase, Key, run, sha256, sign

EVIL = "fw/board-a/fw-1.2.0.img"


class KeysTest(AttackCase):

    @classmethod
    def prepare(cls):
        env = cls.env
        repo = env.repo["repo"]
        cls.k = dict((n, Key(os.path.join(env.tmp, n + ".key")))
                     for n in ("root2", "root3", "targets2", "targets3"))
        k = cls.k

        def fota(*args):
            return run([FOTA_BIN] + list(args))
        fota("repo", "rotate", "root", "--repo", repo, "--add-key", k["root2"].pub,
             "--add-key", k["root3"].pub, "--remove-key", env.keys["root"].keyid,
             "--threshold", "2")
        fota("repo", "rotate", "targets", "--repo", repo, "--add-key", k["targets2"].pub,
             "--add-key", k["targets3"].pub, "--remove-key", env.keys["targets"].keyid,
             "--threshold", "2")
        fota("repo", "sign", "root", "--repo", repo, "--key", env.keys["root"].path,
             "--key", k["root2"].path, "--key", k["root3"].path)
        fota("repo", "bump", "targets", "--repo", repo)
        fota("repo", "sign", "targets", "--repo", repo, "--key", k["targets2"].path,
             "--key", k["targets3"].path)
        fota("root", "push", "--repo", repo, "--targets",
             os.path.join(repo, "staged", "targets.json"), "--server", env.url,
             "--token-file", env.token_file())
        env.targets_signers = [k["targets2"].path, k["targets3"].path]
        assert env.version("root") == 2
        cls.root2 = json.loads(env.fetch(META + "2.root.json"))["signed"]
        # the attacker's image, never signed by the targets keys
        cls.evil = os.path.join(env.tmp, "evil-1.2.0.img")
        run([FOTA_BIN, "image", "sign", os.path.join(env.tmp, "payload-board-a-1.1.0"),
             cls.evil, "--key", env.evil.path, "--version", "1.2.0", "--security-counter", "2",
             "--hardware", "board-a"])
        with open(cls.evil, "rb") as f:
            data = f.read()
        cls.evil_target = {"name": EVIL, "length": len(data), "sha256": sha256(data),
                           "version": "1.2.0", "security_counter": 2}

    def device(self, name):
        dev = self.ready(name)
        with open(os.path.join(dev.data, "tuf", "root.json"), "rb") as f:
            self.assertEqual(json.loads(f.read())["signed"]["version"], 2)
        return dev, self.mark(dev)

    def add_evil(self, signed):
        t = self.evil_target
        signed["targets"][EVIL] = {
            "length": t["length"], "hashes": {"sha256": t["sha256"]},
            "custom": {"hardware_ids": ["board-a"], "version": "1.2.0", "security_counter": 2}}

    def root3(self, signers, own_keys=None):
        """Root v3, the attacker's: its targets role is the attacker's key
        (own_keys: its root role too), signed by signers."""
        s = json.loads(json.dumps(self.root2))
        s["version"] = 3
        evil = self.env.evil
        s["keys"][evil.keyid] = evil.obj
        s["roles"]["targets"] = {"keyids": [evil.keyid], "threshold": 1}
        if own_keys is not None:
            for key in own_keys:
                s["keys"][key.keyid] = key.obj
            s["roles"]["root"] = {"keyids": [key.keyid for key in own_keys], "threshold": 1}
        return sign(s, signers)

    def refused_with_forged_chain(self, dev, since, files, ts_version, reason, where):
        self.proxy.set_mode("rogue", files=files,
                            director={"action": "install", "target": self.evil_target})
        out = self.attack(dev, reason, where=where)
        self.assertEqual(out["bytes_downloaded"], 0)
        self.assertVerified(dev, "1.0.0", 1)
        # the stolen timestamp key fast-forwarded the device's timestamp:
        # it takes the server's again once that is newer
        self.env.advance(ts_version)
        self.assertServerLearns(dev, reason, since)

    # ---- thresholds -----------------------------------------------------------------------

    def test_root_below_threshold(self):
        """One of the two root keys stolen (root2): root v3, naming the
        attacker's key for targets, signed by root2 alone. Root v2 needs 2
        signatures of its root keys."""
        dev, since = self.device("root-threshold")
        self.proxy.set_mode("rogue", files={META + "3.root.json": self.root3([self.k["root2"]])})
        self.attack(dev, "threshold", where="3.root.json: only 1 of 2 keys")
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "threshold", since)

    def test_targets_below_threshold(self):
        """One of the two targets keys stolen (targets2), with the online
        keys (a compromised server): targets listing the attacker's image,
        signed by targets2 alone, in a snapshot and timestamp signed with
        the real online keys, and a Director document naming the image.
        The targets role needs 2 signatures."""
        dev, since = self.device("targets-threshold")
        files, ts = self.env.forge(edit_targets=self.add_evil, targets_keys=[self.k["targets2"]])
        self.refused_with_forged_chain(dev, since, files, ts, "threshold",
                                       "targets.json: only 1 of 2 keys")

    # ---- rotated-out keys ---------------------------------------------------------------

    def test_rotated_out_root_key(self):
        """The old root key (root1, rotated out in root v2) signs a root v3
        whose own root role is that key alone: it satisfies itself, not the
        trusted root v2 (0 of its 2 keys)."""
        dev, since = self.device("root-rotated")
        old = self.env.keys["root"]
        self.proxy.set_mode("rogue", files={META + "3.root.json": self.root3([old], [old])})
        self.attack(dev, "threshold", where="3.root.json: only 0 of 2 keys")
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "threshold", since)

    def test_rotated_out_targets_key(self):
        """The old targets key (targets1, rotated out in root v2), with the
        online keys: targets listing the attacker's image signed by
        targets1. None of the current targets keys signed it."""
        dev, since = self.device("targets-rotated")
        files, ts = self.env.forge(edit_targets=self.add_evil,
                                   targets_keys=[self.env.keys["targets"]])
        self.refused_with_forged_chain(dev, since, files, ts, "threshold",
                                       "targets.json: only 0 of 2 keys")

    # ---- the online keys alone ----------------------------------------------------------

    def test_online_keys_alone_name_an_unsigned_image(self):
        """All three online keys (snapshot, timestamp, Director: the whole
        server): a new snapshot and timestamp, validly signed, over the
        genuine targets, and a Director document naming the attacker's
        image. No offline-signed targets role lists it: no-target, before a
        byte is downloaded."""
        dev, since = self.device("online-no-target")
        files, ts = self.env.forge(new_snapshot=True)
        self.refused_with_forged_chain(dev, since, files, ts, "no-target",
                                       "no trusted role lists it")

    def test_online_keys_alone_sign_targets(self):
        """The same attacker signs targets metadata listing its image with
        the keys it has (snapshot and timestamp): neither is a targets key
        (0 of 2)."""
        dev, since = self.device("online-targets")
        files, ts = self.env.forge(edit_targets=self.add_evil,
                                   targets_keys=[self.env.keys["snapshot"],
                                                 self.env.keys["timestamp"]])
        self.refused_with_forged_chain(dev, since, files, ts, "threshold",
                                       "targets.json: only 0 of 2 keys")


class FastForwardTest(AttackCase):
    """A stolen timestamp key, and the operator's way out: rotating it."""

    def test_fast_forward_then_timestamp_key_rotation(self):
        """With the stolen timestamp key the attacker signs a timestamp of
        version N + 1,000,000 naming the genuine snapshot: validly signed,
        so the device cannot tell and stores it (exit 0). From then on the
        genuine timestamp is a rollback to it: every cycle is refused and
        reported ("failed", rollback), so the server learns at once that
        the device is frozen. The operator rotates the timestamp key (root
        v2 adds the new key, the server restarts with it, root v3 removes
        the stolen one, `fota root push` each time): a device that sees the
        timestamp role's keys change drops its stored timestamp (TUF 5.3.11)
        and trusts the server's again, and it updates. The stolen key then
        signs nothing the device accepts."""
        env = self.env
        repo = env.repo["repo"]
        dev = self.ready("fast-forward")
        since = self.mark(dev)

        def far(ts):
            ts["version"] += 1000000
        files, far_version = env.forge(edit_timestamp=far)
        self.proxy.set_mode("rogue", files=files)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        with open(os.path.join(dev.data, "tuf", "timestamp.json"), "rb") as f:
            self.assertEqual(json.loads(f.read())["signed"]["version"], far_version)
        # 1. the genuine timestamp is refused from now on; 2. the device runs
        # its verified image; 3. the server hears of it (through the path)
        self.proxy.set_mode("pass")
        self.attack(dev, "rollback", where="timestamp.json: version")
        self.assertVerified(dev, "1.0.0", 1)
        new = [(e["event"], e.get("reason")) for e in env.device_info(dev)["history"]
               if e["id"] > since]
        self.assertIn(("failed", "rollback"), new)
        # the way out: rotate the timestamp key
        ts2 = Key(os.path.join(env.tmp, "timestamp2.key"))

        def push_root(*rotate):
            run([FOTA_BIN, "repo", "rotate", "timestamp", "--repo", repo] + list(rotate))
            run([FOTA_BIN, "repo", "sign", "root", "--repo", repo, "--key",
                 env.keys["root"].path])
            run([FOTA_BIN, "root", "push", "--repo", repo, "--server", env.url,
                 "--token-file", env.token_file()])
        push_root("--add-key", ts2.pub)
        env.restart_server(timestamp_key=ts2.path)
        push_root("--remove-key", env.keys["timestamp"].keyid)
        self.assertEqual(env.version("root"), 3)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        with open(os.path.join(dev.data, "tuf", "timestamp.json"), "rb") as f:
            self.assertLess(json.loads(f.read())["signed"]["version"], far_version)
        env.rollout("1.1.0", devices=[dev])
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        self.assertVerified(dev, "1.1.0", 2)
        # the stolen key is worth nothing now
        since = self.mark(dev)
        files, _ = env.forge(edit_timestamp=far, timestamp_keys=[env.keys["timestamp"]])
        self.proxy.set_mode("rogue", files=files)
        self.attack(dev, "threshold", where="timestamp.json: only 0 of 1")
        self.assertVerified(dev, "1.1.0", 2)
        self.assertServerLearns(dev, "threshold", since, version="1.1.0")


if __name__ == "__main__":
    unittest.main()
