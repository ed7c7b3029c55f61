# SPDX-License-Identifier: Apache-2.0
"""Downgrade: back to an older image (a known hole) or to older metadata.

Defences: the security counter in the signed image header, stored on the
device and raised only when an image is confirmed, checked before download
(TUF custom.security_counter and the Director's), at install and at every
boot; TUF versions that never go back (spec 5.3.5, 5.4.3, 5.5.5), and the
hashes each role pins of the next (timestamp -> snapshot -> targets).

The repository here: 1.0.0 (counter 1) and 1.1.0 (counter 2) published, then
1.0.1 (counter 1), so the files of the first publish are "old metadata" a
mirror kept.

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_downgrade
"""

import json
import subprocess
import unittest

from attacklib import EXIT, META, AttackCase, RawFlash, meta_of


class DowngradeTest(AttackCase):

    @classmethod
    def prepare(cls):
        env = cls.env
        # What a mirror kept from before the next publish: the whole chain.
        cls.old = env.served()
        cls.root1 = env.fetch(META + "1.root.json")
        env.publish([env.make_image("board-a", "1.0.1", 1)])

    # ---- images -------------------------------------------------------------------------

    def test_older_image_at_install(self):
        """A compromised Director (the online Director key) tells a device
        running 1.1.0 (counter 2) to install the genuine, TUF-listed 1.0.0
        (counter 1): refused before a byte is downloaded, because the
        target's security counter is below the device's stored one."""
        dev = self.updated("image-install", "1.1.0")
        since = self.mark(dev)
        self.proxy.set_mode("rogue", director={"action": "install",
                                               "target": "fw/board-a/fw-1.0.0.img"})
        out = self.attack(dev, "rollback", where="security counter below the device's")
        self.assertEqual(out["bytes_downloaded"], 0)
        self.assertAttacked("/device/v1/checkin", "install fw/board-a/fw-1.0.0.img")
        self.assertVerified(dev, "1.1.0", 2)
        self.assertServerLearns(dev, "rollback", since, version="1.1.0")

    def test_older_image_at_boot(self):
        """An attacker with access to the flash writes the genuine, signed
        1.0.0 image (counter 1) into the inactive slot of a device running
        1.1.0 (stored counter 2) and marks it pending, by hand. At the next
        power-on the bootloader verifies the pending image with the stored
        counter as the floor, refuses it (rollback), clears the pending
        mark and boots 1.1.0 (decision "reverted-invalid").

        No report, by design: the refusal happens in the bootloader, which
        has no network, and what it leaves (pending cleared, no trial)
        is what a device that never had an update shows; the agent did not
        install this image, so it has nothing to report. The server's view
        stays true: the device checks in running 1.1.0 confirmed."""
        dev = self.updated("image-boot", "1.1.0")
        since = self.mark(dev)
        running = dev.status()["running_slot"]
        flash = RawFlash(dev.flash)
        with open(self.env.images[("board-a", "1.0.0")], "rb") as f:
            flash.write_slot(1 - running, f.read())
        st = flash.store_state(pending=1, attempts_left=3, trial=0)
        self.assertEqual((st["active"], st["security_counter"]), (running, 2))
        before = dev.boot_status()
        self.assertTrue(before["state"]["pending"], before)
        other = "slot_a" if running == 1 else "slot_b"
        self.assertEqual((before[other]["image"]["version"].split("+")[0],
                          before[other]["verify"]), ("1.0.0", "rollback"), before)
        # 1. power-on: the bootloader refuses it
        p = subprocess.run(dev.boot_cmd("--json"), capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        decision = json.loads(p.stdout)
        self.assertEqual((decision["result"], decision["slot"], decision["reason"],
                          decision["rejected"], decision["image"]["version"].split("+")[0]),
                         ("boot", "AB"[running], "reverted-invalid", "rollback", "1.1.0"),
                         decision)
        # 2. it runs the verified image; the agent carries on as before
        self.assertVerified(dev, "1.1.0", 2)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        self.assertVerified(dev, "1.1.0", 2)
        # 3. the registry's view is the truth: 1.1.0, nothing new in the history
        info = self.env.device_info(dev)
        self.assertEqual((info["version"], info["security_counter"]), ("1.1.0", 2), info)
        self.assertEqual([e for e in info["history"] if e["id"] > since], [])

    # ---- metadata ------------------------------------------------------------------------

    def test_older_timestamp(self):
        """A mirror replays the timestamp.json it kept from before the last
        publish (validly signed, not expired): its version is below the
        trusted one (spec 5.4.3)."""
        dev = self.ready("old-timestamp")
        since = self.mark(dev)
        name, data = self.old["timestamp"]
        self.proxy.set_mode("rogue", files={META + "timestamp.json": data})
        self.attack(dev, "rollback", where="timestamp.json: version")
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "rollback", since)

    def test_older_snapshot_under_the_new_name(self):
        """After a new publish, a mirror (no keys) serves the old snapshot
        under the name the genuine timestamp now names: the timestamp pins
        the snapshot's length and sha256."""
        dev = self.ready("old-snapshot")
        since = self.mark(dev)
        self.env.advance(self.env.version("timestamp"))
        name, new = self.env.served()["snapshot"]
        old = self.old["snapshot"][1]
        reason = "length" if len(old) != len(new) else "hash-mismatch"
        self.proxy.set_mode("rogue", files={META + name: old})
        self.attack(dev, reason, where=name)
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, reason, since)

    def test_older_snapshot_named_by_a_forged_timestamp(self):
        """With the stolen timestamp key, the attacker signs a new timestamp
        that names the old snapshot (its version, length and hash): the
        snapshot version it names is below the trusted timestamp's (spec
        5.4.3.2); the old snapshot is not even fetched."""
        dev = self.ready("old-snapshot-ts")
        since = self.mark(dev)
        old_name, old = self.old["snapshot"]

        def name_old(ts):
            ts["meta"]["snapshot.json"] = meta_of(old)
        files, ts_version = self.env.forge(edit_timestamp=name_old)
        files[META + old_name] = old
        self.proxy.set_mode("rogue", files=files)
        self.attack(dev, "rollback", where="snapshot version")
        self.assertVerified(dev, "1.0.0", 1)
        self.env.advance(ts_version)
        self.assertServerLearns(dev, "rollback", since)

    def test_older_targets_under_the_new_name(self):
        """After a new publish, a mirror (no keys) serves the old targets
        metadata under the name the genuine snapshot now names: the
        snapshot pins its length and sha256."""
        dev = self.ready("old-targets")
        since = self.mark(dev)
        self.env.advance(self.env.version("timestamp"))
        name, new = self.env.served()["targets"]
        old = self.old["targets"][1]
        reason = "length" if len(old) != len(new) else "hash-mismatch"
        self.proxy.set_mode("rogue", files={META + name: old})
        self.attack(dev, reason, where=name)
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, reason, since)

    def test_older_targets_named_by_a_forged_snapshot(self):
        """With both online keys, the attacker signs a new snapshot (and
        timestamp) that names the old, genuinely signed targets metadata
        (where 1.0.1 was not yet listed): a role's version in the new
        snapshot is below the trusted snapshot's (spec 5.5.5)."""
        dev = self.ready("old-targets-snap")
        since = self.mark(dev)
        old_name, old = self.old["targets"]

        def name_old(snap):
            snap["meta"]["targets.json"] = meta_of(old)
        files, ts_version = self.env.forge(edit_snapshot=name_old)
        files[META + old_name] = old
        self.proxy.set_mode("rogue", files=files)
        self.attack(dev, "rollback", where="for targets.json")
        self.assertVerified(dev, "1.0.0", 1)
        self.env.advance(ts_version)
        self.assertServerLearns(dev, "rollback", since)

    def test_older_root(self):
        """A mirror answers the device's request for the next root version
        (2.root.json) with root version 1 (genuinely signed): a root must be
        exactly the trusted version + 1 (spec 5.3.5)."""
        dev = self.ready("old-root")
        since = self.mark(dev)
        self.assertEqual(self.env.version("root"), 1)
        self.proxy.set_mode("rogue", files={META + "2.root.json": self.root1})
        self.attack(dev, "rollback", where="2.root.json: ")
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "rollback", since)


if __name__ == "__main__":
    unittest.main()
