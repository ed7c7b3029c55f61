# SPDX-License-Identifier: Apache-2.0
"""The three attacks of `make demo` against fota-agent, performed by a man in
the middle (tests/support/mitm.py) that stands between the device and a real
fota-server, and that also holds the server's online Director key (a
compromised server):

  substitution  the image served for 1.1.0 is another image of the same
                length, the same payload signed with another key
                -> refused, hash-mismatch (the TUF hashes do not match);
  downgrade     a correctly signed Director document, for the right device
                and the right nonce, tells a device on 1.1.0 (security
                counter 2) to install the real, TUF-listed 1.0.0 (counter 1)
                -> refused, rollback;
  freeze        an old Director document of the same device is replayed
                -> refused, nonce-mismatch; an old timestamp.json is served
                -> refused by TUF (rollback, or expired).

Each refusal: `fota-agent --once` exits 13 with the reason in its log, the
device still runs and confirms the image it had, and the server's history
for the device holds a "failed" report with that reason (the agent reports
through the proxy, which forwards reports unchanged).

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_agent_attacks
"""

import hashlib
import os
import subprocess
import sys
import unittest

from agentlib import EXIT, FOTA_BIN, AgentEnv, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from mitm import Mitm  # noqa: E402


class AttackTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.env = AgentEnv()
        cls.proxy = None
        try:
            cls.env.start()
            cls.proxy = Mitm(cls.env.url,
                             director_key=os.path.join(cls.env.tmp, "director.key")).start()
            # Freeze needs a timestamp.json from before the latest publish:
            # the proxy keeps today's, then one more release is published.
            cls.old_ts = cls.proxy.record_timestamp_now()
            cls.env.publish([cls.env.make_image("board-a", "1.0.1", 1)])
            # The attacker's image: the real 1.1.0 payload, signed with a key
            # of its own (same length, other bytes).
            evil_key = os.path.join(cls.env.tmp, "attacker.key")
            run([FOTA_BIN, "key", "new", "--type", "ed25519", "--out", evil_key])
            cls.evil = os.path.join(cls.env.tmp, "evil-1.1.0.img")
            run([FOTA_BIN, "image", "sign", os.path.join(cls.env.tmp, "payload-board-a-1.1.0"),
                 cls.evil, "--key", evil_key, "--version", "1.1.0", "--security-counter", "2",
                 "--hardware", "board-a"])
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.proxy is not None:
            cls.proxy.stop()
        cls.env.stop()

    def setUp(self):
        self.proxy.set_mode("pass")

    def tearDown(self):
        self.proxy.set_mode("pass")

    # ---- helpers -------------------------------------------------------------------

    def ready(self, name):
        """A device behind the proxy, enrolled, accepted, idle on 1.0.0."""
        dev = self.env.device(name, server=self.proxy.url)
        self.assertEqual(dev.once(), EXIT["pending"], dev.log())
        self.env.accept(dev)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        return dev

    def assertRefused(self, dev, reasons):
        """One cycle, refused with one of reasons (in the log and, as a
        "failed" report, in the server's history); returns the reason."""
        before = len(self.env.history(dev))
        self.assertEqual(dev.once(), EXIT["refused"], dev.log())
        found = [r for r in reasons if "reason=%s" % r in dev.log()]
        self.assertTrue(found, "none of %s in:\n%s" % (reasons, dev.log()))
        new = self.env.history(dev)[before:]
        self.assertIn(("failed", found[0]), new, new)
        return found[0]

    def assertRunning(self, dev, version, counter):
        """The device runs and confirms `version`, nothing pending or half
        downloaded, and its bootloader agrees."""
        st = dev.status()
        slot = st["slots"][st["running_slot"]]
        self.assertEqual((st["running_version"], slot["state"], st["pending"],
                          st["security_counter"], st["download_in_progress"]),
                         (version, "confirmed", False, counter, False), st)
        boot = subprocess.run(dev.boot_cmd(), capture_output=True, text=True, timeout=60)
        self.assertEqual(boot.returncode, 0, boot.stderr)
        self.assertIn(version, boot.stdout)
        self.assertEqual(self.env.device_info(dev)["version"], version)

    # ---- the attacks ---------------------------------------------------------------

    def test_substituted_image_is_refused(self):
        dev = self.ready("substitute")
        with open(self.evil, "rb") as f:
            evil = f.read()
        with open(self.env.images[("board-a", "1.1.0")], "rb") as f:
            real = f.read()
        self.assertEqual(len(evil), len(real))
        self.assertNotEqual(hashlib.sha256(evil).digest(), hashlib.sha256(real).digest())
        rollout = self.env.rollout("1.1.0", devices=[dev])
        self.proxy.set_mode("substitute", match="fw-1.1.0.img", file=self.evil)
        self.assertRefused(dev, ["hash-mismatch"])
        served = [r for r in self.proxy.records("/repo/targets/") if r["mode"] == "substitute"]
        self.assertTrue(served)
        self.assertRunning(dev, "1.0.0", 1)
        self.assertEqual(self.env.rollout_show(rollout)["totals"]["failed"], 1)

    def test_downgrade_by_a_compromised_director_is_refused(self):
        dev = self.ready("downgrade")
        self.env.rollout("1.1.0", devices=[dev])
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        self.assertRunning(dev, "1.1.0", 2)
        self.proxy.set_mode("downgrade", target=self.env.targets[("board-a", "1.0.0")])
        self.assertRefused(dev, ["rollback"])
        forged = [r for r in self.proxy.records("/device/v1/checkin")
                  if r["mode"] == "downgrade"]
        self.assertTrue(forged and "forged install" in forged[-1]["note"], forged)
        self.assertRunning(dev, "1.1.0", 2)

    def test_freeze_replayed_director_document_is_refused(self):
        dev = self.ready("freeze-director")
        self.proxy.set_mode("freeze", director=True, timestamp=False)
        self.assertRefused(dev, ["nonce-mismatch"])
        replayed = [r for r in self.proxy.records("/device/v1/checkin") if r["mode"] == "freeze"]
        self.assertTrue(replayed and "replayed" in replayed[-1]["note"], replayed)
        self.assertRunning(dev, "1.0.0", 1)

    def test_freeze_old_timestamp_is_refused(self):
        dev = self.ready("freeze-timestamp")
        self.proxy.set_mode("freeze", director=False, timestamp=True,
                            timestamp_version=self.old_ts)
        self.assertRefused(dev, ["rollback", "expired"])
        self.assertRunning(dev, "1.0.0", 1)
        # with the path clean again the device carries on
        self.proxy.set_mode("pass")
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())


if __name__ == "__main__":
    unittest.main()
