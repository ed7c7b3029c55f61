# SPDX-License-Identifier: Apache-2.0
"""fota-agent end to end (docs/agent.md): a real fota-server on loopback,
devices simulated by a flash file that fota-boot boots, and `fota-agent
--once` driving each step. Each test reads as: what the server holds, what
the device does, where it must end (exit status, --status, the server's
registry, history and rollout counts).

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_agent
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from agentlib import AGENT_BIN, EXIT, AgentEnv, clean_env


class AgentTest(unittest.TestCase):
    """One server for the whole file; every test has its own devices and
    rollouts."""

    @classmethod
    def setUpClass(cls):
        cls.env = AgentEnv(hardware_ids=("board-a", "board-b"))
        try:
            cls.env.start()
            # A release whose TUF entry lists board-b but whose image is
            # signed for board-a: only the image header can tell.
            cls.multi = cls.env.make_image("board-a", "1.2.0", 2,
                                           name="fw/multi/fw-1.2.0.img")
            name, path, custom = cls.multi
            custom["hardware_ids"] = ["board-a", "board-b"]
            cls.env.publish([cls.multi])
            cls.env.releases[("board-b", "1.2.0")] = cls.env.releases[("board-a", "1.2.0")]
        except Exception:
            cls.env.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.env.stop()

    def ready(self, name, **config):
        """A device enrolled, accepted and checked in on 1.0.0."""
        dev = self.env.device(name, **config)
        self.assertEqual(dev.once(), EXIT["pending"], dev.log())
        self.env.accept(dev)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        return dev

    def assertLogHas(self, dev, text):
        self.assertIn(text, dev.log())

    # ---- enrolment -----------------------------------------------------------------

    def test_first_start_enrols_and_waits_for_acceptance(self):
        dev = self.env.device("enrol")
        self.assertFalse(os.path.exists(dev.data))
        self.assertEqual(dev.once(), EXIT["pending"], dev.log())
        self.assertLogHas(dev, "enrol status=pending")
        st = dev.status()
        self.assertEqual(st["enrolment"], "pending")
        self.assertEqual(len(st["device_id"]), 64)
        # the identity key is private to the device
        self.assertEqual(os.stat(os.path.join(dev.data, "identity.pem")).st_mode & 0o077, 0)
        # still pending until an operator accepts it, with the same identity
        self.assertEqual(dev.once(), EXIT["pending"], dev.log())
        self.assertEqual(dev.status()["device_id"], st["device_id"])
        self.env.accept(dev)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        self.assertLogHas(dev, "checkin action=stay")
        info = self.env.device_info(dev)
        self.assertEqual((info["status"], info["version"], info["security_counter"]),
                         ("accepted", "1.0.0", 1))
        self.assertTrue(info["fresh"])
        st = dev.status()
        self.assertEqual(st["enrolment"], "accepted")
        self.assertGreater(st["last_fresh"], 0)

    def test_rejected_device(self):
        dev = self.env.device("reject")
        self.assertEqual(dev.once(), EXIT["pending"], dev.log())
        st, v, _ = self.env.srv.api("POST", "/api/v1/devices/%s/reject" % dev.id)
        self.assertEqual(st, 200, v)
        self.assertEqual(dev.once(), EXIT["rejected"], dev.log())
        self.assertEqual(dev.status()["enrolment"], "rejected")

    def test_lost_state_recovers(self):
        # state.json damaged: the device starts its counters over, the server
        # refuses them as replayed once, and the agent jumps past them.
        dev = self.ready("state")
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        with open(os.path.join(dev.data, "state.json"), "w") as f:
            f.write("{damaged")
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        self.assertIn("session error=replayed", dev.log())
        self.assertIn("replayed path=/device/v1/checkin", dev.log())
        st = dev.status()
        self.assertEqual(st["enrolment"], "accepted")
        self.assertGreater(st["seq"], 1 << 20)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())

    # ---- updates ----------------------------------------------------------------------

    def test_update_installs_confirms_and_reports(self):
        dev = self.ready("update")
        before = dev.status()
        rollout = self.env.rollout("1.1.0", devices=[dev])
        code, out = dev.once_json()
        self.assertEqual(code, EXIT["updated"], dev.log())
        self.assertEqual((out["result"], out["version"]), ("updated", "1.1.0"))
        self.assertEqual(out["target"], "fw/board-a/fw-1.1.0.img")
        self.assertGreater(out["bytes_downloaded"], self.env.image_size)
        st = dev.status()
        self.assertEqual(st["running_version"], "1.1.0")
        self.assertNotEqual(st["running_slot"], before["running_slot"])
        run = st["slots"][st["running_slot"]]
        self.assertEqual((run["state"], run["version"], run["security_counter"]),
                         ("confirmed", "1.1.0", 2))
        self.assertEqual((st["pending"], st["security_counter"]), (False, 2))
        self.assertFalse(st["download_in_progress"])
        self.assertFalse(os.path.exists(os.path.join(dev.data, "install.json")))
        events = [e for e, _ in self.env.history(dev)]
        self.assertEqual(events, ["enrol", "downloading", "installed", "rebooted", "confirmed"])
        info = self.env.device_info(dev)
        self.assertEqual((info["version"], info["stored_counter"]), ("1.1.0", 2))
        totals = self.env.rollout_show(rollout)["totals"]
        self.assertEqual((totals["confirmed"], totals["failed"], totals["rolled_back"]),
                         (1, 0, 0), totals)
        # nothing more to do
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())

    def test_failed_health_check_rolls_back(self):
        dev = self.ready("health", health_cmd="false")
        before = dev.status()
        rollout = self.env.rollout("1.1.0", devices=[dev])
        code, out = dev.once_json()
        self.assertEqual(code, EXIT["rolled-back"], dev.log())
        self.assertEqual((out["reason"], out["version"]), ("health-check", "1.0.0"))
        st = dev.status()
        self.assertEqual((st["running_version"], st["running_slot"]),
                         ("1.0.0", before["running_slot"]))
        self.assertEqual((st["pending"], st["security_counter"]), (False, 1))
        hist = self.env.history(dev)
        self.assertIn(("rolled_back", "health-check"), hist)
        self.assertNotIn("confirmed", [e for e, _ in hist])
        totals = self.env.rollout_show(rollout)["totals"]
        self.assertEqual((totals["confirmed"], totals["rolled_back"]), (0, 1), totals)
        self.assertEqual(self.env.device_info(dev)["version"], "1.0.0")
        # the server does not retry a failed device; the device stays on 1.0.0
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        self.assertEqual(dev.status()["running_version"], "1.0.0")

    def test_image_for_other_hardware_is_refused(self):
        # TUF lists board-b for the target, but the image itself is signed
        # for board-a: refused as soon as the header arrives, reported.
        dev = self.ready("hw", hardware_id="board-b")
        rollout = self.env.rollout("1.2.0", devices=[dev], hardware_id="board-b")
        code, out = dev.once_json()
        self.assertEqual(code, EXIT["refused"], dev.log())
        self.assertEqual(out["reason"], "wrong-hardware")
        st = dev.status()
        self.assertEqual((st["running_version"], st["pending"]), ("1.0.0", False))
        self.assertFalse(st["download_in_progress"])
        self.assertIn(("failed", "wrong-hardware"), self.env.history(dev))
        self.assertNotIn("installed", [e for e, _ in self.env.history(dev)])
        self.assertEqual(self.env.rollout_show(rollout)["totals"]["failed"], 1)

    # ---- the program -------------------------------------------------------------------

    def test_daemon_polls_until_sigterm(self):
        dev = self.ready("daemon", poll_interval="1")
        p = subprocess.Popen([AGENT_BIN, "--config", dev.conf], stderr=subprocess.PIPE,
                             text=True, env=clean_env())
        try:
            time.sleep(2.5)
            # one agent per data dir
            self.assertEqual(dev.once(), EXIT["local"], dev.log())
            self.assertIn("another fota-agent is running", dev.log())
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=30), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err = p.stderr.read()
        p.stderr.close()
        self.assertGreaterEqual(err.count("cycle result=idle"), 2, err)
        self.assertIn("sleep seconds=1", err)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())

    def test_status_fields(self):
        dev = self.env.device("status")
        st = dev.status()
        self.assertEqual(set(st), {
            "device_id", "enrolment", "running_slot", "running_version", "slots", "pending",
            "security_counter", "last_fresh", "last_fresh_time", "seq", "session_counter",
            "download_in_progress", "download_offset"})
        self.assertEqual((st["enrolment"], st["running_version"], st["last_fresh"]),
                         ("none", "1.0.0", 0))
        self.assertEqual([s["slot"] for s in st["slots"]], [0, 1])
        self.assertEqual(st["slots"][st["running_slot"]]["state"], "confirmed")
        self.assertEqual(st["slots"][1 - st["running_slot"]],
                         {"slot": 1 - st["running_slot"], "state": "empty", "version": None,
                          "security_counter": 0})
        text = dev.agent("--status")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("running:          slot", text.stdout)

    def test_usage(self):
        tmp = tempfile.mkdtemp(prefix="fota-agent-usage-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)

        def agent(*args):
            return subprocess.run([AGENT_BIN] + list(args), capture_output=True, text=True,
                                  timeout=30, env=clean_env())

        p = agent("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--once", p.stdout)
        self.assertEqual(agent("--version").returncode, 0)
        self.assertEqual(agent("--no-such-option").returncode, EXIT["usage"])
        self.assertEqual(agent("--once", "--status").returncode, EXIT["usage"])
        self.assertEqual(agent("--config", os.path.join(tmp, "absent.conf")).returncode,
                         EXIT["usage"])
        bad = os.path.join(tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("no_such_key = 1\n")
        p = agent("--config", bad, "--once")
        self.assertEqual(p.returncode, EXIT["usage"])
        self.assertIn("bad.conf:1", p.stderr)
        # a device whose trusted TUF root was never provisioned
        dev = self.env.device("noroot")
        p = dev.agent("--once", "--tuf-root", os.path.join(tmp, "absent-root.json"))
        self.assertEqual(p.returncode, EXIT["local"], p.stderr)
        dev.write_config(tuf_root=None)
        p = dev.agent("--once")
        self.assertEqual(p.returncode, EXIT["local"], p.stderr)
        self.assertIn("--tuf-root", p.stderr)


if __name__ == "__main__":
    unittest.main()
