# SPDX-License-Identifier: Apache-2.0
"""Substitution: the device is offered something other than what the
manufacturer signed for it, by a mirror, a hijacked server or a compromised
Director (tests/support/mitm.py in front of a real fota-server).

Each test: one attack, a device running 1.0.0 (security counter 1) with a
rollout of 1.1.0 (counter 2) waiting for it, and the three assertions of
attacklib.AttackCase (refused with the reason, still running a verified
image, the server holds a "failed" report with the reason).

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_substitution
"""

import os
import unittest

from attacklib import FOTA_BIN, AttackCase, run, sha256


class SubstitutionTest(AttackCase):
    env_args = {"hardware_ids": ("board-a", "board-b")}

    @classmethod
    def prepare(cls):
        env = cls.env
        # The attacker's image: the real 1.1.0 payload signed with a key of
        # its own (same length, other bytes).
        cls.evil = os.path.join(env.tmp, "evil-1.1.0.img")
        run([FOTA_BIN, "image", "sign", os.path.join(env.tmp, "payload-board-a-1.1.0"),
             cls.evil, "--key", env.evil.path, "--version", "1.1.0", "--security-counter",
             "2", "--hardware", "board-a"])
        with open(cls.evil, "rb") as f:
            cls.evil_bytes = f.read()
        cls.real = cls.read(env.images[("board-a", "1.1.0")])
        assert len(cls.evil_bytes) == len(cls.real)

    @staticmethod
    def read(path):
        with open(path, "rb") as f:
            return f.read()

    def device(self, name):
        """A device on 1.0.0 with a rollout of 1.1.0 waiting; the history mark."""
        dev = self.ready(name)
        self.rollout = self.env.rollout("1.1.0", devices=[dev])
        return dev, self.mark(dev)

    def refused(self, dev, since, reason, where, downloaded=None):
        """The three assertions for a device on 1.0.0; downloaded: the
        image bytes the refused cycle may have taken, at most."""
        out = self.attack(dev, reason, where=where)
        if downloaded is not None:
            self.assertLessEqual(out["bytes_downloaded"], downloaded, out)
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, reason, since, after=("idle", "updated"))
        return out

    # ---- images -------------------------------------------------------------------------

    def test_image_signed_by_unknown_key(self):
        """The mirror serves the attacker's image under the genuine name:
        same length, other bytes. Refused by the SHA-256 from the offline
        signed targets metadata, checked while streaming (nothing marked
        pending)."""
        dev, since = self.device("unknown-key")
        self.proxy.set_mode("substitute", match="fw-1.1.0.img", file=self.evil)
        self.refused(dev, since, "hash-mismatch", "image refused")
        self.assertTrue([r for r in self.proxy.records("/repo/targets/")
                         if r["mode"] == "substitute"])
        self.assertEqual(self.env.rollout_show(self.rollout)["totals"]["failed"], 1)

    def test_image_signed_by_unknown_key_listed_by_tuf(self):
        """Even when the TUF targets metadata lists the attacker's image
        (the targets key stolen, or the operator tricked into signing it)
        and the Director names it, the image signature by a trusted
        firmware key is missing: fota_install_finish refuses it, and the
        slot is never marked pending. (The image verifier counts valid
        signatures by trusted firmware keys against its threshold: none,
        so "threshold".)"""
        dev, since = self.device("unknown-key-tuf")
        name = "fw/board-a/fw-1.2.0-evil.img"
        evil = os.path.join(self.env.tmp, "evil-1.2.0.img")
        run([FOTA_BIN, "image", "sign", os.path.join(self.env.tmp, "payload-board-a-1.1.0"),
             evil, "--key", self.env.evil.path, "--version", "1.2.0", "--security-counter", "2",
             "--hardware", "board-a"])
        self.env.publish([(name, evil, {"hardware_ids": ["board-a"], "version": "1.2.0",
                                        "security_counter": 2})])
        self.proxy.set_mode("rogue", director={"action": "install", "target": name})
        out = self.refused(dev, since, "threshold", "image refused")
        self.assertEqual(out["bytes_downloaded"], len(self.read(evil)))

    def test_image_for_other_hardware_served_in_place(self):
        """The mirror serves board-b's genuine 1.1.0 image (signed by the
        real firmware key) as board-a's. The header names board-b: refused
        as soon as its 64 bytes are in, before the rest is fetched (the
        SHA-256 from TUF would refuse it at the end anyway)."""
        dev, since = self.device("other-hw")
        other = self.env.images[("board-b", "1.1.0")]
        self.assertEqual(len(self.read(other)), len(self.real))
        self.proxy.set_mode("substitute", match="board-a/", file=other)
        self.refused(dev, since, "wrong-hardware", "image header", downloaded=0)

    def test_image_for_other_hardware_listed_by_tuf_for_this_one(self):
        """The operator's mistake: board-b's genuine image published with
        custom.hardware_ids ["board-a"] and rolled out to board-a. TUF and
        the Director agree, the hashes match: the image's own header
        (signed) names board-b, and the device refuses it."""
        dev, since = self.device("other-hw-tuf")
        name = "fw/board-a/fw-1.2.0-mistake.img"
        other = os.path.join(self.env.tmp, "board-b-1.2.0.img")
        run([FOTA_BIN, "image", "sign", os.path.join(self.env.tmp, "payload-board-b-1.1.0"),
             other, "--key", self.env.fw_key, "--version", "1.2.0", "--security-counter", "2",
             "--hardware", "board-b"])
        self.env.publish([(name, other, {"hardware_ids": ["board-a"], "version": "1.2.0",
                                         "security_counter": 2})])
        self.proxy.set_mode("rogue", director={"action": "install", "target": name})
        self.refused(dev, since, "wrong-hardware", "image header", downloaded=0)

    def test_mix_and_match_image_of_another_version(self):
        """The mirror serves the genuine, correctly signed 1.0.0 image in
        place of 1.1.0 (same length). Its header's security counter and
        version are not those the Director and TUF named: refused after 64
        bytes (version-mismatch)."""
        dev, since = self.device("mix")
        older = self.env.images[("board-a", "1.0.0")]
        self.assertEqual(len(self.read(older)), len(self.real))
        self.proxy.set_mode("substitute", match="fw-1.1.0.img", file=older)
        self.refused(dev, since, "version-mismatch", "image header", downloaded=0)

    def test_refusal_report_dropped_by_the_attacker(self):
        """A man in the middle that substitutes the image AND swallows the
        device's reports (answers them 204 itself). The device refuses the
        image (1) and keeps running 1.0.0 (2). Its "failed" report stays in
        refusal.json until a Director document signed by the server shows
        the report stored (the document's "reports" seq): once the path is
        honest, the next check-in's document does not cover it, the agent
        sends it again and the server learns of the attack (3)."""
        dev, since = self.device("report-dropped")
        self.proxy.set_mode("rogue", reports="drop", files={
            self.env.target_path("fw/board-a/fw-1.1.0.img"): self.evil_bytes})
        self.attack(dev, "hash-mismatch", where="image refused")
        self.assertAttacked("/device/v1/report", "report dropped")
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "hash-mismatch", since, after=("idle", "updated"))

    # ---- the Director -------------------------------------------------------------------

    def test_director_names_other_hashes(self):
        """A compromised Director names the genuine target 1.1.0 with the
        attacker's image's length and sha256 (validly signed with the
        Director key). TUF's targets metadata lists other hashes: refused
        before anything is downloaded."""
        dev, since = self.device("director-hashes")
        t = self.env.target_info("fw/board-a/fw-1.1.0.img")
        self.assertNotEqual(t["hashes"]["sha256"], sha256(self.evil_bytes))
        forged = {"name": "fw/board-a/fw-1.1.0.img", "length": len(self.evil_bytes),
                  "sha256": sha256(self.evil_bytes), "version": "1.1.0", "security_counter": 2}
        self.proxy.set_mode("rogue", director={"action": "install", "target": forged})
        self.refused(dev, since, "hash-mismatch", "disagree on the sha256", downloaded=0)

    def test_director_signed_by_unknown_key(self):
        """A server without the Director key signs its own Director
        document (install 1.1.0 with the attacker's image's hashes) with a
        key of its own: the device trusts Director keys only from the TUF
        target fota/director.json, signed offline (fota_director_verify:
        bad-signature)."""
        dev, since = self.device("director-key")
        forged = {"name": "fw/board-a/fw-1.1.0.img", "length": len(self.evil_bytes),
                  "sha256": sha256(self.evil_bytes), "version": "1.1.0", "security_counter": 2}
        self.proxy.set_mode("rogue", director={"action": "install", "target": forged},
                            director_key=self.env.evil.path)
        self.refused(dev, since, "bad-signature", "Director document refused", downloaded=0)

    # ---- metadata signed by unknown keys ----------------------------------------------

    def test_timestamp_signed_by_unknown_key(self):
        """timestamp.json re-signed by the attacker's key (a mirror with no
        key): the timestamp role's threshold of trusted keys is not met."""
        dev, since = self.device("ts-key")
        files, _ = self.env.forge(timestamp_keys=[self.env.evil])
        self.proxy.set_mode("rogue", files=files)
        self.refused(dev, since, "threshold", "timestamp.json: only 0 of 1", downloaded=0)

    def test_snapshot_signed_by_unknown_key(self):
        """A new snapshot signed by the attacker's key, named by a timestamp
        signed with the stolen timestamp key: the snapshot role's keys did
        not sign it. The stolen key fast-forwarded the device's timestamp;
        it takes the server's again once that is newer (advance())."""
        dev, since = self.device("snap-key")
        files, ts_version = self.env.forge(snapshot_keys=[self.env.evil])
        self.proxy.set_mode("rogue", files=files)
        self.attack(dev, "threshold", where="snapshot.json: only 0 of 1")
        self.assertVerified(dev, "1.0.0", 1)
        self.env.advance(ts_version)
        self.assertServerLearns(dev, "threshold", since, after=("idle", "updated"))

    def test_targets_signed_by_unknown_key(self):
        """With both online keys (snapshot, timestamp: a compromised
        server), the attacker publishes targets metadata of its own, signed
        by its own key, listing its image as board-a 1.2.0, and has the
        Director name it: the offline targets key did not sign it."""
        dev, since = self.device("targets-key")
        evil_name = "fw/board-a/fw-1.2.0.img"

        def add(signed):
            signed["targets"][evil_name] = {
                "length": len(self.evil_bytes), "hashes": {"sha256": sha256(self.evil_bytes)},
                "custom": {"hardware_ids": ["board-a"], "version": "1.2.0",
                           "security_counter": 2}}
        files, ts_version = self.env.forge(edit_targets=add, targets_keys=[self.env.evil])
        target = {"name": evil_name, "length": len(self.evil_bytes),
                  "sha256": sha256(self.evil_bytes), "version": "1.2.0", "security_counter": 2}
        self.proxy.set_mode("rogue", files=files,
                            director={"action": "install", "target": target})
        self.attack(dev, "threshold", where="targets.json: only 0 of 1")
        self.assertVerified(dev, "1.0.0", 1)
        self.env.advance(ts_version)
        self.assertServerLearns(dev, "threshold", since, after=("idle", "updated"))


if __name__ == "__main__":
    unittest.main()
