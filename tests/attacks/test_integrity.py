# SPDX-License-Identifier: Apache-2.0
"""Integrity: the genuine image, damaged or stretched on the way (a mirror or
a man in the middle, tests/support/mitm.py, in front of a real fota-server).

The defence is the exact length and SHA-256 from the offline-signed TUF
targets metadata, checked while the image streams into the inactive slot
(the signed length is a hard cap on the transfer), then the image signature
before the slot is marked pending; and a minimum transfer speed against a
server that trickles bytes.

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_integrity
"""

import time
import unittest

from attacklib import EXIT, AttackCase

IMAGE = 256 * 1024      # payload bytes: several resume points (64 KiB each)


class IntegrityTest(AttackCase):
    env_args = {"image_size": IMAGE}

    @classmethod
    def prepare(cls):
        with open(cls.env.images[("board-a", "1.1.0")], "rb") as f:
            cls.real = f.read()
        cls.name = "fw/board-a/fw-1.1.0.img"

    def device(self, name, **config):
        dev = self.ready(name, **config)
        self.rollout = self.env.rollout("1.1.0", devices=[dev])
        return dev, self.mark(dev)

    def image_gets(self):
        return [r for r in self.proxy.records("/repo/targets/")
                if r["path"].endswith("fw-1.1.0.img")]

    def test_one_bit_flipped(self):
        """One bit of the payload flipped (same length): the SHA-256 of
        what streamed into the slot is not the signed one; the slot is not
        marked pending."""
        dev, since = self.device("bitflip")
        bad = bytearray(self.real)
        bad[len(bad) // 2] ^= 0x10
        self.proxy.set_mode("rogue", files={self.env.target_path(self.name): bytes(bad)})
        out = self.attack(dev, "hash-mismatch", where="image refused")
        self.assertEqual(out["bytes_downloaded"], len(self.real))
        self.assertAttacked("/repo/targets/", "served")
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "hash-mismatch", since, after=("idle", "updated"))

    def test_truncated_image(self):
        """The mirror holds the first half of the image as if it were all
        of it: 200 with Content-Length half, 416 for a range past its end.
        A body shorter than the signed length is a download that ended
        early, not an image: the device retries (3 times in the cycle),
        then gives up with a transient error (exit 14, server-error after
        the last 416), keeps the resume point, and installs nothing. No
        "failed" report, by design: a transfer cut short says nothing about
        the update (an outage looks the same), and the server sees the
        device still "downloading". Back on an honest path it resumes and
        installs the genuine image, whose SHA-256 covers the bytes it
        kept."""
        dev, since = self.device("truncated")
        self.proxy.set_mode("rogue", files={
            self.env.target_path(self.name): self.real[:len(self.real) // 2]})
        self.attack(dev, "server-error", result="error", where="HTTP 416")
        self.assertIn("ended after %d of %d bytes" % (len(self.real) // 2, len(self.real)),
                      dev.log())
        st = self.assertVerifiedDownloading(dev)
        self.assertGreater(st["download_offset"], 0)
        self.proxy.set_mode("pass")
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        self.assertIn("download resume", dev.log())
        self.assertEqual(dev.status()["running_version"], "1.1.0")
        events = [e for e, _ in self.env.history(dev)]
        self.assertNotIn("failed", events)
        self.assertIn("confirmed", events)

    def assertVerifiedDownloading(self, dev):
        """assertVerified, except that a download may wait to be resumed."""
        st = dev.status()
        self.assertTrue(st["download_in_progress"], st)
        self.assertEqual((st["running_version"], st["slots"][st["running_slot"]]["state"],
                          st["pending"], st["security_counter"]), ("1.0.0", "confirmed", False, 1))
        boot = dev.boot_status()
        self.assertEqual((boot["state"]["pending"], boot["state"]["trial"]), (False, False))
        return st

    def test_extra_bytes_after_the_signed_length(self):
        """The genuine image and 64 KiB more, announced in Content-Length:
        more than the signed length, so the transfer is refused before a
        byte of it is taken (the cap holds for close-delimited bodies too:
        test_endless_data)."""
        dev, since = self.device("extra")
        self.proxy.set_mode("rogue", files={
            self.env.target_path(self.name): self.real + b"\0" * 65536})
        out = self.attack(dev, "length", where="download")
        self.assertEqual(out["bytes_downloaded"], 0)
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "length", since, after=("idle", "updated"))

    def test_endless_data(self):
        """The genuine image, then zeros without end (no Content-Length,
        close-delimited): the device stops soon after the signed length,
        far from the proxy's 256 MiB cap, and refuses."""
        dev, since = self.device("endless")
        cap = 256 * 1024 * 1024
        self.proxy.set_mode("endless", match="fw-1.1.0.img", cap=cap)
        t0 = time.time()
        self.attack(dev, "length", where="download")
        self.assertLess(time.time() - t0, 30)
        gets = self.image_gets()
        self.assertTrue(gets)
        for g in [g for g in gets if g["mode"] == "endless"]:
            self.assertTrue(g["client_gone"], g)
            self.assertLess(g["sent"], len(self.real) + 8 * 1024 * 1024, g)
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "length", since, after=("idle", "updated"))

    def test_slow_retrieval(self):
        """A server that trickles the image (200 bytes/s) is dropped by the
        minimum speed (here 1024 bytes/s over 2 s): a transient error (exit
        14), the resume point kept, nothing installed, and no "failed"
        report (slowness says nothing about the update; the server sees
        "downloading"). When the path is honest again the download resumes
        and the device updates."""
        dev, since = self.device("slow", low_speed_time="2")
        self.proxy.set_mode("slow", rate=200, chunk=100, match="fw-1.1.0.img")
        t0 = time.time()
        self.attack(dev, "network", result="error", where="download")
        self.assertLess(time.time() - t0, 40)
        self.assertVerifiedDownloading(dev)
        self.proxy.set_mode("pass")
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        self.assertEqual(dev.status()["running_version"], "1.1.0")
        events = [e for e, _ in self.env.history(dev)]
        self.assertNotIn("failed", events)
        self.assertIn("confirmed", events)


if __name__ == "__main__":
    unittest.main()
