# SPDX-License-Identifier: Apache-2.0
"""fota-sim fleet end to end (ctest sim/fleet): a real fota-server, a TUF
repository made with `fota repo`, firmware 1.0.0 (factory) and 1.1.0 signed
with `fota image sign`, and 20 simulated devices (fota-sim fleet: each its
own flash file, boot state, identity and agent) with faults injected: 10%
fail the health check of 1.1.0, 20% have a download connection dropped, 20%
have power cut at a random flash operation.

The test plays the operator through the API: it accepts devices as they
enrol, then rolls 1.1.0 out in waves of 10%, 50% and 100%. The fleet must end
settled: the unhealthy devices rolled back to 1.0.0 by themselves, everyone
else confirmed on 1.1.0, every device on an image that verifies, faults and
resumes actually happened, and the server's rollout counts the rollbacks as
failures.

Bench mode (not run by ctest) measures a larger fleet, as docs/fleet.md
reports it:

    /usr/bin/python3 tests/sim/test_fleet.py --bench --devices 1000 \
        --payload 1048576 [--threads 16] [--poll 2] [--waves 100]

The server, repository, images and releases come from tests/agent/agentlib.py
(AgentEnv). Environment: FOTA_BIN_DIR (default build/bin).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "agent"))

from agentlib import BIN_DIR, AgentEnv  # noqa: E402

SIM_BIN = os.path.join(BIN_DIR, "fota-sim")
HW = "sim-board"


def proc_cpu_s(pid):
    """User + system CPU time of a process so far, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_kib(pid):
    """Peak resident memory of a process (VmHWM), KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Operator(threading.Thread):
    """The operator, through the API, while the fleet runs: accept every
    device that enrols; once `expected` devices are accepted, roll 1.1.0 out
    in waves. If the rollout pauses itself, resume it when it can still
    advance. If it cannot (every canary failed: with 2 unhealthy devices of
    20 and 2 canaries, 1 run in 190), the scenario is void: stop the fleet
    (`stuck`) and let the test run it again. (Rolling out again to the same
    devices would put them in two rollouts of one release, which the server
    does not handle yet.)"""

    def __init__(self, env, expected, waves=(10, 50, 100)):
        super().__init__(daemon=True)
        self.env = env
        self.srv = env.srv
        self.expected = expected
        self.waves = list(waves)
        self.accepted = set()
        self.rollouts = []
        self.errors = []
        self.done = threading.Event()
        self.rollout_at = None
        self.stuck = False
        self.proc = None

    def pending(self):
        ids, after = [], None
        while True:
            path = "/api/v1/devices?status=pending&limit=1000"
            if after:
                path += "&after=" + after
            st, v, _ = self.srv.api("GET", path)
            if st != 200:
                raise AssertionError("list pending: %d %s" % (st, v))
            ids += [d["id"] for d in v["devices"]]
            after = v.get("next")
            if not after:
                return ids

    def tend_rollout(self):
        rid = self.rollouts[-1]
        st, r, _ = self.srv.api("GET", "/api/v1/rollouts/" + rid)
        if st != 200 or r["state"] != "paused":
            return
        if r["success_share"] >= r["success_threshold"]:
            self.srv.api("POST", "/api/v1/rollouts/%s/resume" % rid)
            return
        open_counts = [w["counts"] for w in r["progress"] if w["open"]]
        undecided = sum(c["assigned"] + c["downloading"] + c["installed"] + c["rebooted"]
                        for c in open_counts)
        if undecided == 0 and not self.stuck:
            self.stuck = True
            if self.proc is not None:
                self.proc.terminate()

    def run(self):
        try:
            while not self.done.is_set():
                for dev in self.pending():
                    st, v, _ = self.srv.api("POST", "/api/v1/devices/%s/accept" % dev)
                    if st != 200:
                        raise AssertionError("accept: %d %s" % (st, v))
                    self.accepted.add(dev)
                if not self.rollouts and len(self.accepted) >= self.expected:
                    self.rollouts.append(self.env.rollout(
                        "1.1.0", hardware_id=HW, waves=self.waves, success_threshold=0.5,
                        failure_limit=0.5))
                    self.rollout_at = time.time()
                elif self.rollouts:
                    self.tend_rollout()
                self.done.wait(0.2)
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))


class Scenario:
    """A server with a repository, the Director key target, firmware 1.0.0
    and 1.1.0 published (agentlib.AgentEnv), and a fleet directory."""

    def __init__(self, tmp, payload_len, server_extra=()):
        self.tmp = tmp
        self.env = AgentEnv(tmp, hardware_ids=(HW,), versions=(("1.0.0", 1), ("1.1.0", 2)),
                            image_size=payload_len, server_extra=server_extra).start()
        self.srv = self.env.srv
        self.factory = self.env.images[(HW, "1.0.0")]

    def stop(self):
        self.env.stop()

    def fleet_args(self, devices, fleet_dir, *extra):
        return [SIM_BIN, "fleet", "--devices", str(devices), "--server", self.env.url,
                "--dir", fleet_dir, "--hardware-id", HW, "--image-key",
                self.env.fw_key + ".pub", "--tuf-root", self.env.tuf_root,
                "--factory-image", self.factory, "--until-version", "1.1.0", "--json",
                "--quiet"] + list(extra)

    def run_fleet(self, devices, extra, timeout, waves=(10, 50, 100)):
        """Run the fleet with an operator alongside; returns (exit status,
        summary, stderr, operator)."""
        fleet_dir = os.path.join(self.tmp, "fleet")
        op = Operator(self.env, devices, waves)
        proc = subprocess.Popen(self.fleet_args(devices, fleet_dir, *extra),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        op.proc = proc
        op.start()
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        finally:
            op.done.set()
            op.join(10)
        summary = None
        if out.strip():
            summary = json.loads(out.strip().splitlines()[-1])
        return proc.returncode, summary, err, op


class FleetTest(unittest.TestCase):
    N = 20

    def setUp(self):
        self.tmp = None
        self.sc = None

    def tearDown(self):
        if self.sc is not None:
            self.sc.stop()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def scenario(self):
        if self.sc is not None:
            self.sc.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.sc = None
        self.tmp = tempfile.mkdtemp(prefix="fota-fleet-")
        self.sc = Scenario(self.tmp, 256 * 1024)
        return self.sc

    def test_rollout_in_waves_with_faults(self):
        for attempt in range(3):
            sc = self.scenario()
            code, s, err, op = sc.run_fleet(
                self.N, ["--fail-health", "10", "--drop-connections", "20", "--power-cuts",
                         "20", "--seed", "7", "--poll-interval", "0.5", "--threads", "8",
                         "--duration", "75"], timeout=120)
            if not op.stuck:
                break
            sys.stderr.write("both canaries were the unhealthy devices: running again\n")
        self.assertFalse(op.stuck, "both canaries unhealthy three times in a row")
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(marker, err)
        self.assertEqual(op.errors, [])
        self.assertIsNotNone(s, "no summary; stderr:\n" + err[-4000:])
        detail = json.dumps(s, indent=1)[:6000] + "\nstderr:\n" + err[-3000:]
        self.assertEqual(code, 0, detail)

        # Settled: the unhealthy devices back on 1.0.0, everyone else on 1.1.0.
        self.assertTrue(s["settled"], detail)
        bad = [d for d in s["device_list"] if d["fail_health"]]
        good = [d for d in s["device_list"] if not d["fail_health"]]
        self.assertEqual(len(bad), 2)
        for d in bad:
            self.assertEqual((d["version"], d["outcome"]), ("1.0.0", "rolled_back"), d)
        for d in good:
            self.assertEqual((d["version"], d["outcome"]), ("1.1.0", "confirmed"), d)
        self.assertEqual(s["outcomes"], {"confirmed": 18, "rolled_back": 2, "unsettled": 0})
        self.assertEqual(s["versions"], {"1.0.0": 2, "1.1.0": 18})

        # Nobody on an image that does not verify.
        self.assertEqual(s["unverified"], [])
        self.assertEqual(s["verified"], self.N)
        self.assertTrue(all(d["verified"] for d in s["device_list"]))

        # The faults happened, and downloads resumed after them.
        self.assertGreater(s["faults"]["drops"], 0, detail)
        self.assertGreater(s["faults"]["power_cuts"], 0, detail)
        self.assertGreaterEqual(s["faults"]["health_failures"], 2, detail)
        self.assertGreater(s["resumes"], 0, detail)
        self.assertGreaterEqual(s["bytes_downloaded"], 18 * 256 * 1024)
        self.assertIsNotNone(s["settled_s"])
        self.assertIsNotNone(s["last_confirmed_s"])

        # The server saw the rollbacks as failures, not as successes.
        self.assertEqual(len(op.rollouts), 1)
        rid = op.rollouts[0]
        st, r, _ = sc.srv.api("GET", "/api/v1/rollouts/" + rid)
        self.assertEqual(st, 200)
        self.assertEqual(r["state"], "completed", r)
        self.assertEqual(r["totals"]["confirmed"], 18, r)
        self.assertEqual(r["totals"]["rolled_back"], 2, r)
        self.assertEqual(r["totals"]["failed"], 0, r)
        self.assertAlmostEqual(r["failure_share"], 0.1, r)
        st, members, _ = sc.srv.api("GET", "/api/v1/rollouts/%s/devices?status=rolled_back"
                                    % rid)
        self.assertEqual(sorted(m["device"] for m in members["devices"]),
                         sorted(d["id"] for d in bad))
        for m in members["devices"]:
            self.assertEqual(m["reason"], "health-check", m)
        # The registry agrees with the devices.
        for d in s["device_list"]:
            st, v, _ = sc.srv.api("GET", "/api/v1/devices/" + d["id"])
            self.assertEqual(st, 200)
            self.assertEqual(v["version"], d["version"], v)


class FleetReuseTest(unittest.TestCase):
    """A second run on the same DIR reuses every device; a fleet that cannot
    settle exits 1 at --duration; a device whose image was damaged in
    between is listed as unverified (and the rest of the fleet still runs)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fota-fleet-")
        self.sc = Scenario(self.tmp, 16 * 1024)
        self.dir = os.path.join(self.tmp, "fleet")

    def tearDown(self):
        self.sc.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fleet(self, *extra):
        p = subprocess.run(self.sc.fleet_args(3, self.dir, "--poll-interval", "0.2",
                                              "--duration", "1.5", *extra),
                           capture_output=True, text=True, timeout=60)
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(marker, p.stderr)
        return p.returncode, json.loads(p.stdout.strip().splitlines()[-1]), p.stderr

    def ids(self):
        with open(os.path.join(self.dir, "device-ids.txt")) as f:
            return [l.strip() for l in f if l.strip() and not l.startswith("#")]

    def test_rerun_reuses_devices_and_reports_damage(self):
        # Nobody accepts the devices: they stay pending, the run times out.
        code, s, _ = self.fleet()
        self.assertEqual(code, 1)
        self.assertFalse(s["settled"])
        self.assertEqual(s["states"]["pending"], 3, s["states"])
        self.assertEqual(s["outcomes"]["unsettled"], 3)
        self.assertEqual(s["unverified"], [])
        first = self.ids()
        self.assertEqual(len(first), 3)
        self.assertEqual(sorted(first), sorted(d["id"] for d in s["device_list"]))
        flash = os.path.join(self.dir, "dev-00001", "flash")
        inode = os.stat(flash).st_ino

        # Damage the payload of dev-00001's running image. The layout: two
        # 4 KiB boot-state sectors, then slots A and B of equal size.
        running = [d["slot"] for d in s["device_list"] if d["name"] == "dev-00001"][0]
        slot_size = (os.path.getsize(flash) - 2 * 4096) // 2
        at = 2 * 4096 + (slot_size if running == "B" else 0) + 1000
        with open(flash, "r+b") as f:
            f.seek(at)
            byte = f.read(1)
            f.seek(at)
            f.write(bytes([byte[0] ^ 0x5a]))
        code, s, err = self.fleet()
        self.assertEqual(code, 1)
        self.assertEqual(self.ids(), [i for i in first if i != first[1]])
        self.assertEqual(os.stat(flash).st_ino, inode)       # not provisioned again
        self.assertIn("dev-00001: no bootable image", err)
        bad = s["unverified"]
        self.assertEqual([u["name"] for u in bad], ["dev-00001"], bad)
        self.assertEqual(bad[0]["reason"], "hash-mismatch")
        dev1 = [d for d in s["device_list"] if d["name"] == "dev-00001"][0]
        self.assertTrue(dev1["bricked"])
        others = [d for d in s["device_list"] if d["name"] != "dev-00001"]
        self.assertEqual(sorted(d["id"] for d in others), sorted(first[0:1] + first[2:]))
        self.assertTrue(all(d["verified"] and d["state"] == "pending" for d in others))


def bench(args):
    """A larger fleet, no faults, measured: docs/fleet.md."""
    tmp = tempfile.mkdtemp(prefix="fota-fleet-bench-", dir=args.tmp)
    sc = Scenario(tmp, args.payload, server_extra=("--log-level", "warn"))
    try:
        t0 = time.time()
        code, s, err, op = sc.run_fleet(
            args.devices, ["--threads", str(args.threads), "--poll-interval", str(args.poll),
                           "--duration", str(args.duration)], timeout=args.duration + 600,
            waves=[int(w) for w in args.waves.split(",")])
        hwm = proc_hwm_kib(sc.srv.proc.pid)
        server_cpu = proc_cpu_s(sc.srv.proc.pid)
        wall = time.time() - t0
        print(" ".join(sc.fleet_args(args.devices, os.path.join(tmp, "fleet"),
                                     "--threads", str(args.threads), "--poll-interval",
                                     str(args.poll))))
        if s is None:
            print("no summary; exit %d\n%s" % (code, err[-4000:]))
            return 1
        # The sim's times count from its start (after setup); the rollout
        # was created by the operator once every device was accepted.
        rollout_s = op.rollout_at - s["started_unix"] if op.rollout_at else None
        to_confirmed = (s["last_confirmed_s"] - rollout_s
                        if rollout_s is not None and s["last_confirmed_s"] is not None else None)
        out = {
            "devices": args.devices, "image_bytes": os.path.getsize(sc.factory),
            "waves": args.waves, "exit": code, "settled": s["settled"],
            "setup_s": s["setup_s"], "fleet_elapsed_s": s["elapsed_s"],
            "rollout_created_s": round(rollout_s, 2) if rollout_s is not None else None,
            "last_confirmed_s": s["last_confirmed_s"],
            "rollout_to_all_confirmed_s": round(to_confirmed, 2) if to_confirmed else None,
            "settled_s": s["settled_s"], "wall_s": round(wall, 1),
            "outcomes": s["outcomes"], "unverified": len(s["unverified"]),
            "bytes_downloaded": s["bytes_downloaded"],
            "server_vm_hwm_kib": hwm, "server_cpu_s": round(server_cpu, 1),
            "sim_cpu_s": s["cpu_s"], "sim_memory": s["memory"],
            "events": s["events"], "cycles": s["cycles"],
        }
        print(json.dumps(out, indent=1))
        return 0 if code == 0 else 1
    finally:
        sc.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if "--bench" in sys.argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--bench", action="store_true")
        ap.add_argument("--devices", type=int, default=1000)
        ap.add_argument("--payload", type=int, default=1024 * 1024)
        ap.add_argument("--threads", type=int, default=16)
        ap.add_argument("--poll", type=float, default=2.0)
        ap.add_argument("--duration", type=float, default=600)
        ap.add_argument("--waves", default="100")
        ap.add_argument("--tmp", default=None)
        ap.add_argument("--keep", action="store_true")
        sys.exit(bench(ap.parse_args()))
    unittest.main()
