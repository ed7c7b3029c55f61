# SPDX-License-Identifier: Apache-2.0
"""fota-agent against a faulty network: a real fota-server on loopback, a
man in the middle (tests/support/mitm.py) between it and the device, and
`fota-agent --once` (a real process) driving each step.

Each test reads as: what the path does to the device's traffic, what the
device does, where it must end. Covered: a full update through the proxy; a
connection cut at ~40% of the image (resumed with a Range request from a
sector boundary); a power cut (kill -9) in the middle of a download (resumed
from the offset in download.json); a device offline longer than the
timestamp expiry (it updates when back, nothing stuck on expired metadata);
endless data (cut at the signed length, refused); slow retrieval (stopped by
the minimum-speed timeout, a transient error, then completed).

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_agent_faults
"""

import calendar
import json
import os
import signal
import subprocess
import sys
import time
import unittest

from agentlib import AGENT_BIN, EXIT, SECTOR, AgentEnv, clean_env

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from mitm import Mitm  # noqa: E402

IMAGE = 512 * 1024           # payload bytes: big enough for several resume points
TARGETS = "/repo/targets/"


class FaultTest(unittest.TestCase):
    """One server and one proxy for the file; each test has its own device,
    its own rollout, and sets the proxy's mode itself (pass afterwards)."""

    @classmethod
    def setUpClass(cls):
        # Short-lived timestamps (renewed every 3 s) and a short freshness
        # window, so that "offline longer than the expiry" takes seconds.
        cls.env = AgentEnv(image_size=IMAGE, timestamp_expiry="6s",
                           timestamp_renew_before="3s",
                           server_extra=["--freshness-max-age", "4s"])
        cls.proxy = None
        try:
            cls.env.start()
            cls.proxy = Mitm(cls.env.url).start()
        except Exception:
            cls.tearDownClass()
            raise
        with open(cls.env.images[("board-a", "1.1.0")], "rb") as f:
            cls.length = len(f.read())

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

    def ready(self, name, **config):
        """A device behind the proxy, enrolled, accepted, idle on 1.0.0, with
        a rollout of 1.1.0 waiting for it."""
        dev = self.env.device(name, server=self.proxy.url, **config)
        self.assertEqual(dev.once(), EXIT["pending"], dev.log())
        self.env.accept(dev)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        return dev

    def image_gets(self, since=0):
        """The proxy's records of GETs of the 1.1.0 image, from record n=since."""
        return [r for r in self.proxy.records(TARGETS)
                if r["n"] >= since and r["path"].endswith("fw-1.1.0.img")]

    def mark(self):
        recs = self.proxy.records()
        return recs[-1]["n"] + 1 if recs else 0

    def assertRunning(self, dev, version, downloading=False):
        st = dev.status()
        slot = st["slots"][st["running_slot"]]
        self.assertEqual((st["running_version"], slot["state"], st["pending"],
                          st["download_in_progress"]),
                         (version, "confirmed", False, downloading), st)
        return st

    def assertUpdated(self, dev, rollout):
        self.assertRunning(dev, "1.1.0")
        self.assertEqual(self.env.device_info(dev)["version"], "1.1.0")
        self.assertEqual(self.env.rollout_show(rollout)["totals"]["confirmed"], 1)
        events = [e for e, _ in self.env.history(dev)]
        for e in ("downloading", "installed", "rebooted", "confirmed"):
            self.assertIn(e, events)

    @staticmethod
    def range_start(rec):
        """The offset of a "bytes=N-" Range header, None when there is none."""
        rng = rec["range"]
        if not rng:
            return None
        assert rng.startswith("bytes=") and rng.endswith("-"), rng
        return int(rng[len("bytes="):-1])

    # ---- the tests -----------------------------------------------------------------

    def test_a_full_update_through_the_proxy(self):
        dev = self.ready("pass")
        rollout = self.env.rollout("1.1.0", devices=[dev])
        since = self.mark()
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        self.assertUpdated(dev, rollout)
        gets = self.image_gets(since)
        self.assertEqual([(g["status"], g["range"], g["sent"]) for g in gets],
                         [(200, None, self.length)])
        # everything went through the proxy, the check-ins included
        paths = set(r["path"] for r in self.proxy.records() if r["n"] >= since)
        self.assertIn("/device/v1/checkin", paths)
        self.assertIn("/device/v1/report", paths)

    def test_b_resume_after_a_cut_connection(self):
        dev = self.ready("cut")
        rollout = self.env.rollout("1.1.0", devices=[dev])
        cut = int(self.length * 0.4)
        since = self.mark()
        self.proxy.set_mode("cut", bytes=cut, match="fw-1.1.0.img", times=1)
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        gets = self.image_gets(since)
        self.assertGreaterEqual(len(gets), 2, gets)
        self.assertEqual((gets[0]["mode"], gets[0]["sent"], gets[0]["range"]),
                         ("cut", cut, None))
        # The next request resumed at or just below the cut: within one
        # cycle the agent goes on from the last byte it wrote (the flash is
        # intact); after a restart it goes back to a sector boundary (test c).
        off = self.range_start(gets[1])
        self.assertIsNotNone(off, gets[1])
        self.assertGreater(off, 0)
        self.assertLessEqual(off, cut)
        self.assertLess(cut - off, SECTOR)
        self.assertEqual(gets[1]["status"], 206)
        self.assertEqual(gets[1]["sent"], self.length - off)
        total = sum(g["sent"] for g in gets)
        self.assertLess(total, self.length * 1.5, gets)
        self.assertUpdated(dev, rollout)

    def test_c_resume_after_a_power_cut_mid_download(self):
        dev = self.ready("powercut")
        rollout = self.env.rollout("1.1.0", devices=[dev])
        since = self.mark()
        # 64 KiB/s: the whole image would take 8 s
        self.proxy.set_mode("slow", rate=64 * 1024, chunk=4096, match="fw-1.1.0.img")
        download = os.path.join(dev.data, "download.json")
        log = open(os.path.join(dev.root, "killed.log"), "w+")
        p = subprocess.Popen([AGENT_BIN, "--config", dev.conf, "--once"],
                             stdout=subprocess.DEVNULL, stderr=log, env=clean_env())
        try:
            deadline = time.time() + 30
            offset = 0
            while time.time() < deadline and p.poll() is None:
                try:
                    with open(download) as f:
                        offset = json.load(f)["offset"]
                except (OSError, ValueError, KeyError):
                    offset = 0
                if offset > 0:
                    break
                time.sleep(0.05)
            if p.poll() is not None:
                log.seek(0)
                self.fail("fota-agent ended before the power cut:\n" + log.read())
            self.assertGreater(offset, 0, "download.json never showed progress")
            os.kill(p.pid, signal.SIGKILL)    # the power goes
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
            log.close()
        self.assertEqual(p.returncode, -signal.SIGKILL)
        with open(download) as f:
            saved = json.load(f)
        self.assertGreater(saved["offset"], 0)
        self.assertLess(saved["offset"], self.length)
        self.assertEqual(dev.status()["download_offset"], saved["offset"])
        # power back, network fine: the next cycle resumes from the saved offset
        self.proxy.set_mode("pass")
        mark2 = self.mark()
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        self.assertIn("offset=%d" % saved["offset"], dev.log())
        first = self.image_gets(mark2)[0]
        self.assertEqual(first["range"], "bytes=%d-" % saved["offset"], first)
        self.assertEqual((first["status"], first["sent"]),
                         (206, self.length - saved["offset"]))
        self.assertLess(sum(g["sent"] for g in self.image_gets(since)), self.length * 2)
        self.assertFalse(os.path.exists(download))
        self.assertUpdated(dev, rollout)

    def test_d_offline_longer_than_the_timestamp_expiry(self):
        dev = self.ready("offline")
        with open(os.path.join(dev.data, "tuf", "timestamp.json")) as f:
            expires = json.load(f)["signed"]["expires"]
        t = calendar.timegm(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ"))
        self.assertLess(t - time.time(), 10, expires)
        seen = calendar.timegm(time.strptime(self.env.device_info(dev)["last_fresh"],
                                             "%Y-%m-%dT%H:%M:%SZ"))
        # the device is away until its trusted timestamp has expired and the
        # server lists it as possibly frozen (--freshness-max-age 4s) ...
        while time.time() < max(t, seen + 4) + 1.5:
            time.sleep(0.2)
        self.assertFalse(self.env.device_info(dev)["fresh"])
        rollout = self.env.rollout("1.1.0", devices=[dev])
        # ... and when it is back, it takes a fresh timestamp and updates
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        self.assertUpdated(dev, rollout)
        self.assertTrue(self.env.device_info(dev)["fresh"])
        with open(os.path.join(dev.data, "tuf", "timestamp.json")) as f:
            self.assertNotEqual(json.load(f)["signed"]["expires"], expires)

    def test_e_endless_data_is_cut_at_the_signed_length(self):
        dev = self.ready("endless")
        self.env.rollout("1.1.0", devices=[dev])
        since = self.mark()
        cap = 256 * 1024 * 1024
        self.proxy.set_mode("endless", match="fw-1.1.0.img", cap=cap)
        t0 = time.time()
        self.assertEqual(dev.once(), EXIT["refused"], dev.log())
        self.assertLess(time.time() - t0, 30)
        self.assertIn("reason=length", dev.log())
        gets = self.image_gets(since)
        self.assertTrue(gets)
        for g in gets:
            # the device hung up soon after the signed length (what the
            # proxy counts includes the socket buffers), far from the cap
            self.assertTrue(g["client_gone"], g)
            self.assertGreaterEqual(g["sent"], self.length)
            self.assertLess(g["sent"], self.length + 8 * 1024 * 1024)
        self.assertRunning(dev, "1.0.0")
        self.assertIn(("failed", "length"), self.env.history(dev))

    def test_f_slow_retrieval_times_out_then_completes(self):
        dev = self.ready("slow", low_speed_time="2")
        rollout = self.env.rollout("1.1.0", devices=[dev])
        self.proxy.set_mode("slow", rate=200, chunk=100, match="fw-1.1.0.img")
        t0 = time.time()
        self.assertEqual(dev.once(), EXIT["error"], dev.log())
        self.assertLess(time.time() - t0, 40)
        self.assertIn("network", dev.log())
        self.assertRunning(dev, "1.0.0", downloading=True)
        # a transient error, not a refusal: nothing "failed" on the server
        self.assertNotIn("failed", [e for e, _ in self.env.history(dev)])
        self.proxy.set_mode("pass")
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        self.assertUpdated(dev, rollout)


if __name__ == "__main__":
    unittest.main()
