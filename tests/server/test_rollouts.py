# SPDX-License-Identifier: Apache-2.0
"""Rollouts end to end (docs/rollouts.md): a real fota-server, releases
published through the release endpoints from targets signed offline with
`fota repo`, 20 simulated board-a devices and 2 board-b devices driven
through the device protocol (devclient.py), and the operator API.

Each test reads as: a rollout is created; devices check in and report; the
Director's answers (signature checked here), the rollout's progress, the
registry and the audit log must then be exactly as the rules say.

Run: FOTA_SERVER_BIN=build/bin/fota-server FOTA_BIN=build/bin/fota \
     /usr/bin/python3 -m unittest -v test_rollouts
"""

import hashlib
import shutil
import tempfile
import unittest

from devclient import Device, Server, make_repo, release_id, stage_release

IMG_A11 = b"\x01" * 3000
IMG_A10 = b"\x02" * 2500
IMG_B11 = b"\x03" * 2000
A11 = release_id("fw-a-1.1.0.img", IMG_A11)
A10 = release_id("fw-a-1.0.0.img", IMG_A10)
B11 = release_id("fw-b-1.1.0.img", IMG_B11)

MOD = {}


def setUpModule():
    tmp = tempfile.mkdtemp(prefix="fota-rollout-repo-")
    MOD["tmp"] = tmp
    MOD["repo"] = make_repo(tmp)
    MOD["env"], MOD["images"] = stage_release(MOD["repo"], [
        ("fw-a-1.1.0.img", IMG_A11,
         {"hardware_ids": ["board-a"], "version": "1.1.0", "security_counter": 2}),
        ("fw-a-1.0.0.img", IMG_A10,
         {"hardware_ids": ["board-a"], "version": "1.0.0", "security_counter": 1}),
        ("fw-b-1.1.0.img", IMG_B11,
         {"hardware_ids": ["board-b"], "version": "1.1.0", "security_counter": 2}),
    ])


def tearDownModule():
    shutil.rmtree(MOD.get("tmp", "/nonexistent"), ignore_errors=True)


def wave_order(rollout_id, devices):
    """The rule, computed independently: SHA-256(rollout id || device id)."""
    return sorted(devices,
                  key=lambda d: hashlib.sha256((rollout_id + d.id).encode()).digest())


class RolloutCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fota-rollout-")
        self.srv = Server(self.tmp, MOD["repo"]).start()
        self.srv.publish(MOD["env"], MOD["images"])
        self.a = [Device("board-a") for _ in range(20)]
        self.b = [Device("board-b") for _ in range(2)]
        for d in self.a + self.b:
            self.assertEqual(d.enrol(self.srv), "pending")
            self.srv.accept(d)
            d.session(self.srv)

    def tearDown(self):
        self.srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers ---------------------------------------------------------------

    def create(self, body, expect=201):
        st, v, hdrs = self.srv.api("POST", "/api/v1/rollouts", body=body)
        self.assertEqual(st, expect, v)
        if expect == 201:
            self.assertEqual(hdrs["location"], "/api/v1/rollouts/" + v["id"])
        return v

    def rollout(self, rid):
        st, v, _ = self.srv.api("GET", "/api/v1/rollouts/" + rid)
        self.assertEqual(st, 200, v)
        return v

    def action(self, dev, version=None, counter=None, state="confirmed"):
        st, doc = dev.checkin(self.srv, version=version, counter=counter, state=state)
        self.assertEqual(st, 200, doc)
        return doc

    def assert_install(self, doc, name, data, version, counter, rid):
        self.assertEqual(doc["action"], "install", doc)
        self.assertEqual(doc["rollout"], rid)
        self.assertEqual(doc["target"], {
            "name": name, "length": len(data),
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            "version": version, "security_counter": counter})

    def good_install(self, dev, name="fw-a-1.1.0.img"):
        """Download, install, reboot on trial, confirm, check in on the new
        version: what a healthy device does after an install answer."""
        dev.report(self.srv, "downloading", target=name)
        dev.report(self.srv, "installed", target=name)
        dev.report(self.srv, "rebooted", target=name)
        self.assertEqual(self.action(dev, "1.1.0", 2, state="trial")["action"], "stay")
        dev.report(self.srv, "confirmed", target=name, version="1.1.0")
        self.assertEqual(self.action(dev, "1.1.0", 2)["action"], "stay")

    def audit(self):
        st, v, _ = self.srv.api("GET", "/api/v1/audit?limit=1000")
        self.assertEqual(st, 200, v)
        return v["entries"]

    def device(self, dev):
        st, v, _ = self.srv.api("GET", "/api/v1/devices/" + dev.id)
        self.assertEqual(st, 200, v)
        return v

    # ---- the tests -------------------------------------------------------------

    def test_waves_open_on_confirmation_only(self):
        r = self.create({"release": A11, "group": {"hardware_id": "board-a"},
                         "waves": [10, 50, 100], "success_threshold": 1.0,
                         "failure_limit": 0.5})
        rid = r["id"]
        self.assertEqual(r["state"], "active")
        self.assertEqual(r["device_count"], 20)
        self.assertEqual([w["devices"] for w in r["progress"]], [2, 8, 10])
        self.assertEqual([w["covered"] for w in r["progress"]], [2, 10, 20])
        order = wave_order(rid, self.a)

        # the stored waves follow the rule
        st, v, _ = self.srv.api("GET", "/api/v1/rollouts/%s/devices?limit=1000" % rid)
        self.assertEqual(st, 200, v)
        waves = {m["device"]: m["wave"] for m in v["devices"]}
        self.assertEqual(waves, {d.id: (0 if k < 2 else 1 if k < 10 else 2)
                                 for k, d in enumerate(order)})

        # wave 0 gets install, everyone else stays (board-b: not its hardware)
        for k, d in enumerate(order):
            doc = self.action(d)
            if k < 2:
                self.assert_install(doc, "fw-a-1.1.0.img", IMG_A11, "1.1.0", 2, rid)
            else:
                self.assertEqual(doc["action"], "stay", k)
        for d in self.b:
            self.assertEqual(self.action(d)["action"], "stay")

        # one device succeeds; the other is installed but not confirmed
        self.good_install(order[0])
        order[1].report(self.srv, "downloading", target="fw-a-1.1.0.img")
        order[1].report(self.srv, "installed", target="fw-a-1.1.0.img")
        r = self.rollout(rid)
        self.assertEqual(r["current_wave"], 0)
        self.assertEqual(r["progress"][0]["counts"]["confirmed"], 1)
        self.assertEqual(r["progress"][0]["counts"]["installed"], 1)
        self.assertEqual(self.action(order[2])["action"], "stay")
        # confirmed reported but not yet seen running: still not success
        order[1].report(self.srv, "rebooted", target="fw-a-1.1.0.img")
        order[1].report(self.srv, "confirmed", target="fw-a-1.1.0.img")
        self.assertEqual(self.rollout(rid)["current_wave"], 0)
        self.assertEqual(self.action(order[2])["action"], "stay")
        # the check-in on 1.1.0 proves it: wave 1 opens
        self.assertEqual(self.action(order[1], "1.1.0", 2)["action"], "stay")
        r = self.rollout(rid)
        self.assertEqual(r["current_wave"], 1)
        self.assertEqual(r["totals"]["confirmed"], 2)
        for k, d in enumerate(order[2:], start=2):
            self.assertEqual(self.action(d)["action"], "install" if k < 10 else "stay", k)

        # the registry holds what devices run
        v = self.device(order[0])
        self.assertEqual(v["version"], "1.1.0")
        self.assertEqual(v["stored_counter"], 2)
        self.assertEqual([h["event"] for h in v["history"]][:5],
                         ["confirmed", "rebooted", "installed", "downloading", "enrol"])
        self.assertEqual(v["rollout"]["status"], "confirmed")

        # the server's decision is in the audit log
        wave = [e for e in self.audit() if e["action"] == "rollout.wave"]
        self.assertEqual(len(wave), 1)
        self.assertEqual(wave[0]["actor"], "")
        self.assertEqual(wave[0]["object"], "rollout/" + rid)

        # every member of wave 1 confirms: the last wave opens; then all: done
        for d in order[2:10]:
            self.good_install(d)
        self.assertEqual(self.rollout(rid)["current_wave"], 2)
        for d in order[10:]:
            self.assert_install(self.action(d), "fw-a-1.1.0.img", IMG_A11, "1.1.0", 2, rid)
            self.good_install(d)
        r = self.rollout(rid)
        self.assertEqual(r["state"], "completed")
        self.assertEqual(r["totals"]["confirmed"], 20)
        st, v, _ = self.srv.api("GET", "/api/v1/devices?hardware_id=board-a&version=1.1.0")
        self.assertEqual(len(v["devices"]), 20)

    def test_rolled_back_pauses_then_resume_and_abort(self):
        r = self.create({"release": A11, "group": {"hardware_id": "board-a"},
                         "waves": [10, 50, 100], "success_threshold": 1.0,
                         "failure_limit": 0.4})
        rid = r["id"]
        order = wave_order(rid, self.a)
        d0, d1 = order[0], order[1]
        self.assertEqual(self.action(d0)["action"], "install")
        d0.report(self.srv, "downloading", target="fw-a-1.1.0.img")
        d0.report(self.srv, "installed", target="fw-a-1.1.0.img")
        d0.report(self.srv, "rebooted", target="fw-a-1.1.0.img")
        self.assertEqual(self.action(d0, "1.1.0", 2, state="trial")["action"], "stay")
        # the health check failed; the bootloader went back to 1.0.0
        d0.report(self.srv, "rolled_back", target="fw-a-1.1.0.img", reason="state")
        self.assertEqual(self.action(d0, "1.0.0", 1)["action"], "stay")
        v = self.device(d0)
        self.assertEqual(v["version"], "1.0.0")
        self.assertEqual(v["stored_counter"], 1)
        self.assertEqual(v["rollout"]["status"], "rolled_back")

        # 1 failure of 2 assigned = 0.5 > 0.4: paused by the server itself
        r = self.rollout(rid)
        self.assertEqual(r["state"], "paused")
        self.assertEqual(r["totals"]["rolled_back"], 1)
        pause = [e for e in self.audit() if e["action"] == "rollout.pause"]
        self.assertEqual(len(pause), 1)
        self.assertEqual(pause[0]["actor"], "")
        self.assertEqual(pause[0]["detail"]["reason"], "failure_limit")
        st, v, _ = self.srv.api("GET", "/api/v1/rollouts/%s/devices?status=rolled_back" % rid)
        self.assertEqual([(m["device"], m["reason"]) for m in v["devices"]], [(d0.id, "state")])
        # paused: the member that had not started stays
        self.assertEqual(self.action(d1)["action"], "stay")

        # the operator resumes: the old failure does not pause it again
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts/%s/resume" % rid)
        self.assertEqual((st, v["state"]), (200, "active"))
        self.assertEqual(self.action(d1)["action"], "install")
        self.assertEqual(self.action(d0)["action"], "stay")   # failed members are not retried
        d1.report(self.srv, "downloading", target="fw-a-1.1.0.img")
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts/%s/pause" % rid)
        self.assertEqual((st, v["state"]), (200, "paused"))
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts/%s/pause" % rid)
        self.assertEqual((st, v["error"]), (409, "conflict"))
        # a download under way may finish while paused
        self.assertEqual(self.action(d1)["action"], "install")

        # abort: stay for all, whatever their progress
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts/%s/abort" % rid,
                                body={"reason": "bad build"})
        self.assertEqual((st, v["state"]), (200, "aborted"))
        for d in self.a + self.b:
            self.assertEqual(self.action(d)["action"], "stay")
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts/%s/resume" % rid)
        self.assertEqual((st, v["error"]), (409, "conflict"))
        actions = [(e["actor"], e["action"]) for e in self.audit()
                   if e["object"] == "rollout/" + rid]
        self.assertEqual(actions, [("test-admin", "rollout.create"), ("", "rollout.pause"),
                                   ("test-admin", "rollout.resume"),
                                   ("test-admin", "rollout.pause"),
                                   ("test-admin", "rollout.abort")])
        self.assertEqual([e["detail"] for e in self.audit()
                          if e["action"] == "rollout.abort"], [{"reason": "bad build"}])

    def test_rollback_refused_below_stored_counter(self):
        # a0 already runs 1.1.0, confirmed: its stored counter is 2
        a0, a1, a2 = self.a[0], self.a[1], self.a[2]
        self.action(a0, "1.1.0", 2)
        self.assertEqual(self.device(a0)["stored_counter"], 2)
        before = self.srv.snapshot()
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts",
                                body={"release": A10, "group": {"hardware_id": "board-a"},
                                      "rollback": True})
        self.assertEqual((st, v["error"]), (409, "rollback_refused"))
        self.assertIn(a0.id, v["message"])
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts",
                                body={"release": A10, "group": {"devices": [a0.id, a1.id]},
                                      "rollback": True})
        self.assertEqual((st, v["error"]), (409, "rollback_refused"))
        self.assertEqual(self.srv.snapshot(), before)

        # a2 runs 1.1.0 on trial (never confirmed: stored counter 1): allowed
        self.action(a2, "1.1.0", 2, state="trial")
        self.assertEqual(self.device(a2)["stored_counter"], 1)
        r = self.create({"release": A10, "group": {"devices": [a2.id]}, "rollback": True})
        self.assertTrue(r["rollback"])
        self.assertEqual(r["device_count"], 1)
        self.assert_install(self.action(a2, "1.1.0", 2, state="trial"), "fw-a-1.0.0.img",
                            IMG_A10, "1.0.0", 1, r["id"])
        # a1 already runs 1.0.0: nothing to do, so nothing is created
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts",
                                body={"release": A10, "group": {"devices": [a1.id]}})
        self.assertEqual((st, v["error"]), (409, "conflict"))

    def test_hardware_mismatch_never_gets_the_release(self):
        before = self.srv.snapshot()
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts",
                                body={"release": A11,
                                      "group": {"devices": [self.a[0].id, self.b[0].id]}})
        self.assertEqual((st, v["error"]), (409, "hardware_mismatch"))
        self.assertEqual(self.srv.snapshot(), before)

        # a filter over every device: only board-a joins
        ra = self.create({"release": A11, "group": {}})
        self.assertEqual(ra["device_count"], 20)
        for d in self.b:
            self.assertEqual(self.action(d)["action"], "stay")
        # board-b's own release, over every device: only board-b joins
        rb = self.create({"release": B11, "group": {}})
        self.assertEqual(rb["device_count"], 2)
        for d in self.b:
            self.assert_install(self.action(d), "fw-b-1.1.0.img", IMG_B11, "1.1.0", 2, rb["id"])
        for d in self.a:
            self.assert_install(self.action(d), "fw-a-1.1.0.img", IMG_A11, "1.1.0", 2, ra["id"])

    def test_tag_and_version_groups(self):
        for d in self.a[:5]:
            st, v, _ = self.srv.api("POST", "/api/v1/devices/%s/tags" % d.id,
                                    body={"add": ["canary"]})
            self.assertEqual(st, 200, v)
        # one canary already moved on to 1.1.0 (unconfirmed): version filter leaves it out
        self.action(self.a[0], "1.1.0", 2, state="trial")
        r = self.create({"release": A11, "group": {"tags": ["canary"], "version": "1.0.0"}})
        self.assertEqual(r["device_count"], 4)
        self.assertEqual(r["group"], {"tags": ["canary"], "version": "1.0.0"})
        for d in self.a[1:5]:
            self.assertEqual(self.action(d)["action"], "install")
        for d in self.a[5:]:
            self.assertEqual(self.action(d)["action"], "stay")


if __name__ == "__main__":
    unittest.main()
