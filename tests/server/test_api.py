# SPDX-License-Identifier: Apache-2.0
"""The operator API of fota-server (/api/v1/, docs/api.md) except the
release endpoints: tokens and scopes, devices, rollouts, the audit log.

Every refusal is checked twice: the exact status and error code, and the
database (read-only sqlite3) unchanged, i.e. nothing stored. Every change
is checked for its audit entry.

Run: FOTA_SERVER_BIN=build/bin/fota-server FOTA_BIN=build/bin/fota \
     /usr/bin/python3 -m unittest -v test_api
"""

import json
import shutil
import tempfile
import time
import unittest

from devclient import Device, Server, make_repo, release_id, stage_release

IMG = b"\x07" * 1500
REL = release_id("fw-1.1.0.img", IMG)

MOD = {}


def setUpModule():
    tmp = tempfile.mkdtemp(prefix="fota-api-repo-")
    MOD["tmp"] = tmp
    MOD["repo"] = make_repo(tmp)
    MOD["env"], MOD["images"] = stage_release(MOD["repo"], [
        ("fw-1.1.0.img", IMG,
         {"hardware_ids": ["board-a"], "version": "1.1.0", "security_counter": 2})])


def tearDownModule():
    shutil.rmtree(MOD.get("tmp", "/nonexistent"), ignore_errors=True)


class ApiCase(unittest.TestCase):
    """One server for the class; each test makes its own devices."""
    maxDiff = None
    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fota-api-")
        cls.srv = Server(cls.tmp, MOD["repo"], extra=cls.extra).start()
        cls.read = cls.srv.token_new("read", "reader")
        cls.deploy = cls.srv.token_new("deploy", "deployer")
        cls.srv.publish(MOD["env"], MOD["images"])

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def api(self, method, path, body=None, token=None, **kw):
        return self.srv.api(method, path, body=body, token=token, **kw)

    def enrol(self, n=1, accept=False, hardware_id="board-a", version="1.0.0"):
        out = []
        for _ in range(n):
            d = Device(hardware_id=hardware_id, version=version)
            d.enrol(self.srv)
            if accept:
                self.srv.accept(d)
                d.session(self.srv)
            out.append(d)
        return out

    def audit_tail(self, after=0):
        entries, cursor = [], after
        while True:
            st, v, _ = self.api("GET", "/api/v1/audit?limit=1000&after=%d" % cursor)
            self.assertEqual(st, 200, v)
            entries += v["entries"]
            if v["next"] is None:
                return entries
            cursor = v["next"]

    def last_audit_id(self):
        e = self.audit_tail()
        return e[-1]["id"] if e else 0

    def assert_refused(self, status, code, method, path, body=None, token=None, **kw):
        """The call is refused with status/code and the database is unchanged."""
        before = self.srv.snapshot()
        st, v, hdrs = self.api(method, path, body=body, token=token, **kw)
        self.assertEqual(st, status, v)
        if code is not None:
            self.assertEqual(v["error"], code, v)
            self.assertIsInstance(v["message"], str)
        self.assertEqual(self.srv.snapshot(), before, "%s %s stored something" % (method, path))
        return v, hdrs


class AuthTest(ApiCase):

    def test_missing_token(self):
        for method, path in (("GET", "/api/v1/devices"), ("GET", "/api/v1/rollouts"),
                             ("GET", "/api/v1/audit"), ("POST", "/api/v1/rollouts")):
            before = self.srv.snapshot()
            st, hdrs, payload = self.srv.request(method, path, body={} if method == "POST"
                                                 else None)
            self.assertEqual(st, 401, payload)
            self.assertEqual(json.loads(payload)["error"], "unauthorized")
            self.assertTrue(hdrs["www-authenticate"].startswith("Bearer"), hdrs)
            self.assertEqual(self.srv.snapshot(), before)

    def test_wrong_tokens(self):
        for token in ("nope", self.read + "x", self.read[:-1], "A" * 600,
                      self.srv.admin.upper()):
            v, hdrs = self.assert_refused(401, "invalid_token", "GET", "/api/v1/devices",
                                          token=token)
            self.assertTrue(hdrs["www-authenticate"].startswith("Bearer"))
        # another scheme is not a bearer token
        st, hdrs, _ = self.srv.request("GET", "/api/v1/devices",
                                       headers={"Authorization": "Basic " + self.srv.admin})
        self.assertEqual(st, 401)

    def test_expired_and_revoked(self):
        short = self.srv.token_new("admin", "short-lived", ttl="1s")
        gone = self.srv.token_new("admin", "revoked-one")
        st, _, _ = self.api("GET", "/api/v1/devices", token=gone)
        self.assertEqual(st, 200)
        self.srv.token_revoke("revoked-one")
        self.assert_refused(401, "invalid_token", "GET", "/api/v1/devices", token=gone)
        time.sleep(2.1)
        self.assert_refused(401, "invalid_token", "GET", "/api/v1/devices", token=short)
        (d,) = self.enrol()
        self.assert_refused(401, "invalid_token", "POST", "/api/v1/devices/%s/accept" % d.id,
                            token=short)

    def test_scopes(self):
        (d,) = self.enrol()
        # read: GET everything, change nothing
        for path in ("/api/v1/devices", "/api/v1/devices/" + d.id, "/api/v1/rollouts",
                     "/api/v1/audit"):
            st, v, _ = self.api("GET", path, token=self.read)
            self.assertEqual(st, 200, (path, v))
        for op in ("accept", "reject", "decommission"):
            self.assert_refused(403, "forbidden", "POST", "/api/v1/devices/%s/%s" % (d.id, op),
                                token=self.read)
        self.assert_refused(403, "forbidden", "POST", "/api/v1/devices/%s/tags" % d.id,
                            body={"add": ["x"]}, token=self.read)
        self.assert_refused(403, "forbidden", "POST", "/api/v1/rollouts",
                            body={"release": REL, "group": {}}, token=self.read)
        # deploy: accept, reject, tag, rollouts; not decommission
        self.assert_refused(403, "forbidden", "POST",
                            "/api/v1/devices/%s/decommission" % d.id, token=self.deploy)
        st, v, _ = self.api("POST", "/api/v1/devices/%s/accept" % d.id, token=self.deploy)
        self.assertEqual((st, v["status"]), (200, "accepted"))
        entry = self.audit_tail()[-1]
        self.assertEqual((entry["actor"], entry["action"], entry["object"]),
                         ("deployer", "device.accept", "device/" + d.id))
        # admin: decommission
        st, v, _ = self.api("POST", "/api/v1/devices/%s/decommission" % d.id)
        self.assertEqual((st, v["status"]), (200, "decommissioned"))
        self.assertEqual(self.audit_tail()[-1]["actor"], "test-admin")


class RequestShapeTest(ApiCase):

    def test_unknown_paths_and_ids(self):
        (d,) = self.enrol()
        for path in ("/api/v1/nothing", "/api/v1/devices/%s/explode" % d.id,
                     "/api/v1/devices/", "/api/v1/devices//accept", "/api/v1/audit/1",
                     "/api/v1/devices/%s/accept/more" % d.id, "/api/v1/",
                     "/api/v1/rollouts/x/y/z"):
            st, v, _ = self.api("GET", path)
            self.assertEqual((st, v["error"]), (404, "not_found"), path)
        missing = "0" * 64
        self.assert_refused(404, "not_found", "GET", "/api/v1/devices/" + missing)
        self.assert_refused(404, "not_found", "GET", "/api/v1/devices/..%2Fetc")
        for op in ("accept", "reject", "decommission"):
            self.assert_refused(404, "not_found", "POST",
                                "/api/v1/devices/%s/%s" % (missing, op))
        self.assert_refused(404, "not_found", "POST", "/api/v1/devices/%s/tags" % missing,
                            body={"add": ["x"]})
        self.assert_refused(404, "not_found", "GET", "/api/v1/rollouts/r-nope")
        self.assert_refused(404, "not_found", "GET", "/api/v1/rollouts/r-nope/devices")
        for op in ("pause", "resume", "abort"):
            self.assert_refused(404, "not_found", "POST", "/api/v1/rollouts/r-nope/" + op)
        self.assert_refused(404, "not_found", "POST", "/api/v1/rollouts",
                            body={"release": "0123456789abcdef", "group": {}})

    def test_wrong_methods(self):
        (d,) = self.enrol()
        for method, path, allow in (
                ("DELETE", "/api/v1/devices", "GET, HEAD"),
                ("POST", "/api/v1/devices", "GET, HEAD"),
                ("GET", "/api/v1/devices/%s/accept" % d.id, "POST"),
                ("GET", "/api/v1/devices/%s/tags" % d.id, "POST"),
                ("DELETE", "/api/v1/rollouts", "GET, HEAD, POST"),
                ("POST", "/api/v1/audit", "GET, HEAD")):
            v, hdrs = self.assert_refused(405, "method_not_allowed", method, path)
            self.assertEqual(hdrs["allow"], allow)

    def test_bad_bodies(self):
        (d,) = self.enrol()
        tags = "/api/v1/devices/%s/tags" % d.id
        self.assert_refused(400, "malformed_json", "POST", tags, raw=b"{")
        self.assert_refused(400, "malformed_json", "POST", tags,
                            raw=b'{"add":["a"],"add":["b"]}')
        self.assert_refused(400, "malformed_json", "POST", tags, raw=b"")
        self.assert_refused(400, "malformed_json", "POST", "/api/v1/rollouts", raw=b"[1,")
        self.assert_refused(415, "unsupported_media_type", "POST", tags,
                            raw=b'{"add":["a"]}', content_type="text/plain")
        self.assert_refused(413, None, "POST", tags,
                            raw=b'{"add":["' + b"a" * 70000 + b'"]}')
        self.assert_refused(413, None, "POST", "/api/v1/rollouts",
                            raw=b'{"x":"' + b"a" * 70000 + b'"}')
        self.assert_refused(400, "bad_request", "POST", tags, body=["add"])
        self.assert_refused(400, "bad_request", "POST", tags, body={"add": ["a"], "x": 1})
        self.assert_refused(400, "bad_request", "POST", tags, body={"add": "a"})
        self.assert_refused(400, "bad_request", "POST", tags, body={"add": ["bad tag"]})
        self.assert_refused(400, "bad_request", "POST", tags, body={"add": [""]})
        self.assert_refused(400, "bad_request", "POST", tags, body={"add": ["t" * 65]})
        self.assert_refused(400, "bad_request", "POST", tags,
                            body={"add": ["t%d" % i for i in range(65)]})
        accept = "/api/v1/devices/%s/accept" % d.id
        self.assert_refused(400, "bad_request", "POST", accept, body={"why": "x"})
        self.assert_refused(400, "bad_request", "POST", accept, body={"reason": 5})
        self.assert_refused(400, "bad_request", "POST", accept, body={"reason": "r" * 300})
        self.assert_refused(400, "malformed_json", "POST", accept, raw=b"{]")
        for q in ("limit=0", "limit=1001", "limit=abc", "limit=", "status=bogus",
                  "status=pending,,", "fresh=maybe", "after=" + "a" * 200):
            if q == "limit=":
                continue  # an empty value is "absent"
            self.assert_refused(400, "bad_request", "GET", "/api/v1/devices?" + q)
        self.assert_refused(400, "bad_request", "GET", "/api/v1/rollouts?state=sleeping")
        self.assert_refused(400, "bad_request", "GET", "/api/v1/audit?after=-1")
        self.assert_refused(400, "bad_request", "GET", "/api/v1/audit?after=x")
        self.assert_refused(400, "bad_request", "GET",
                            "/api/v1/devices/%s?history_limit=0" % d.id)


class DevicesTest(ApiCase):

    def test_paging_covers_every_device_once(self):
        devs = self.enrol(7)
        want = sorted(d.id for d in devs)
        seen, after, pages = [], None, 0
        while True:
            path = "/api/v1/devices?status=pending&limit=2"
            if after:
                path += "&after=" + after
            st, v, _ = self.api("GET", path, token=self.read)
            self.assertEqual(st, 200, v)
            self.assertLessEqual(len(v["devices"]), 2)
            seen += [x["id"] for x in v["devices"]]
            pages += 1
            if v["next"] is None:
                break
            self.assertEqual(v["next"], v["devices"][-1]["id"])
            after = v["next"]
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(len(seen), len(set(seen)))
        self.assertTrue(set(want) <= set(seen))
        self.assertGreaterEqual(pages, 4)

    def test_filters(self):
        a = self.enrol(2, accept=True, hardware_id="filter-hw")
        p = self.enrol(1, hardware_id="filter-hw")
        self.srv.api("POST", "/api/v1/devices/%s/reject" % p[0].id)
        st, doc = a[0].checkin(self.srv, version="2.0.0", counter=1)
        self.assertEqual(st, 200)
        st, v, _ = self.api("POST", "/api/v1/devices/%s/tags" % a[1].id,
                            body={"add": ["eu", "beta"]})
        self.assertEqual(st, 200, v)

        def ids(q):
            st, v, _ = self.api("GET", "/api/v1/devices?hardware_id=filter-hw&" + q)
            self.assertEqual(st, 200, v)
            return sorted(x["id"] for x in v["devices"])

        self.assertEqual(ids("status=accepted"), sorted(d.id for d in a))
        self.assertEqual(ids("status=rejected"), [p[0].id])
        self.assertEqual(ids("status=accepted,rejected"), sorted(d.id for d in a + p))
        self.assertEqual(ids("version=2.0.0"), [a[0].id])
        self.assertEqual(ids("version=1.0.0"), sorted([a[1].id, p[0].id]))
        self.assertEqual(ids("tag=beta"), [a[1].id])
        self.assertEqual(ids("tag=none"), [])
        # fresh: checked in within freshness_max_age; never checked in is not fresh
        self.assertEqual(ids("fresh=true"), [a[0].id])
        self.assertEqual(ids("fresh=false"), sorted([a[1].id, p[0].id]))
        st, v, _ = self.api("GET", "/api/v1/devices?hardware_id=filter-hw&fresh=true")
        self.assertIs(v["devices"][0]["fresh"], True)
        self.assertEqual(v["devices"][0]["version"], "2.0.0")

    def test_get_with_history(self):
        (d,) = self.enrol(accept=True)
        d.checkin(self.srv)
        d.report(self.srv, "downloading", target="fw-x.img")
        d.report(self.srv, "failed", target="fw-x.img", reason="hash-mismatch")
        st, v, _ = self.api("GET", "/api/v1/devices/" + d.id, token=self.read)
        self.assertEqual(st, 200, v)
        self.assertEqual(v["id"], d.id)
        self.assertEqual(v["status"], "accepted")
        self.assertEqual(v["hardware_id"], "board-a")
        self.assertEqual(v["key"], d.keyobj)
        self.assertIs(v["fresh"], True)
        self.assertEqual(v["slots"][0]["state"], "confirmed")
        self.assertIsNone(v["rollout"])
        self.assertEqual([(h["event"], h["target"], h["reason"]) for h in v["history"]],
                         [("failed", "fw-x.img", "hash-mismatch"), ("downloading", "fw-x.img", None),
                          ("enrol", None, None)])
        self.assertIsNone(v["history_next"])
        st, v, _ = self.api("GET", "/api/v1/devices/%s?history_limit=1" % d.id)
        self.assertEqual(len(v["history"]), 1)
        st, v2, _ = self.api("GET", "/api/v1/devices/%s?history_limit=5&history_before=%d"
                             % (d.id, v["history_next"]))
        self.assertEqual([h["event"] for h in v2["history"]], ["downloading", "enrol"])

    def test_status_changes_and_audit(self):
        (d,) = self.enrol()
        path = "/api/v1/devices/%s/" % d.id
        mark = self.last_audit_id()
        st, v, _ = self.api("POST", path + "accept", token=self.deploy,
                            body={"reason": "known serial"})
        self.assertEqual((st, v["status"]), (200, "accepted"))
        # already accepted: 200, nothing changes, nothing logged
        before = self.srv.snapshot()
        st, v, _ = self.api("POST", path + "accept", token=self.deploy)
        self.assertEqual((st, v["status"]), (200, "accepted"))
        self.assertEqual(self.srv.snapshot(), before)
        st, v, _ = self.api("POST", path + "reject", token=self.deploy)
        self.assertEqual((st, v["status"]), (200, "rejected"))
        # a rejected device cannot open a session; accepted again, it can
        with self.assertRaises(AssertionError):
            d.session(self.srv)
        st, v, _ = self.api("POST", path + "accept", token=self.deploy)
        self.assertEqual((st, v["status"]), (200, "accepted"))
        d.session(self.srv)
        st, v, _ = self.api("POST", path + "decommission")
        self.assertEqual((st, v["status"]), (200, "decommissioned"))
        # decommissioned is final
        self.assert_refused(409, "conflict", "POST", path + "accept")
        self.assert_refused(409, "conflict", "POST", path + "reject")
        entries = self.audit_tail(mark)
        self.assertEqual([(e["actor"], e["action"], e["object"], e["detail"]) for e in entries],
                         [("deployer", "device.accept", "device/" + d.id,
                           {"from": "pending", "to": "accepted", "reason": "known serial"}),
                          ("deployer", "device.reject", "device/" + d.id,
                           {"from": "accepted", "to": "rejected"}),
                          ("deployer", "device.accept", "device/" + d.id,
                           {"from": "rejected", "to": "accepted"}),
                          ("test-admin", "device.decommission", "device/" + d.id,
                           {"from": "accepted", "to": "decommissioned"})])

    def test_tags(self):
        (d,) = self.enrol()
        path = "/api/v1/devices/%s/tags" % d.id
        mark = self.last_audit_id()
        st, v, _ = self.api("POST", path, body={"add": ["eu", "beta", "site:7"]},
                            token=self.deploy)
        self.assertEqual((st, v["tags"]), (200, ["beta", "eu", "site:7"]))
        st, v, _ = self.api("POST", path, body={"remove": ["beta", "absent"], "add": ["eu"]})
        self.assertEqual((st, v["tags"]), (200, ["eu", "site:7"]))
        entries = self.audit_tail(mark)
        self.assertEqual([(e["action"], e["detail"]) for e in entries],
                         [("device.tags", {"add": ["eu", "beta", "site:7"], "remove": []}),
                          ("device.tags", {"add": ["eu"], "remove": ["beta", "absent"]})])
        # past 64 tags per device: refused, nothing stored
        st, v, _ = self.api("POST", path, body={"add": ["a%d" % i for i in range(60)]})
        self.assertEqual(st, 200, v)
        self.assert_refused(400, "bad_request", "POST", path,
                            body={"add": ["b%d" % i for i in range(10)]})


class RolloutApiTest(ApiCase):

    def test_create_list_get_and_state_changes(self):
        devs = self.enrol(4, accept=True, hardware_id="board-a")
        ids = [d.id for d in devs]
        mark = self.last_audit_id()
        body = {"release": REL, "group": {"devices": ids}, "waves": [50, 100],
                "success_threshold": 0.5, "failure_limit": 0.25}
        st, r, hdrs = self.api("POST", "/api/v1/rollouts", body=body, token=self.deploy)
        self.assertEqual(st, 201, r)
        rid = r["id"]
        self.assertEqual(hdrs["location"], "/api/v1/rollouts/" + rid)
        self.assertEqual((r["release"], r["state"], r["current_wave"], r["waves"],
                          r["device_count"], r["created_by"], r["rollback"]),
                         (REL, "active", 0, [50, 100], 4, "deployer", False))
        self.assertEqual((r["success_threshold"], r["failure_limit"]), (0.5, 0.25))
        self.assertEqual((r["target"], r["version"], r["security_counter"]),
                         ("fw-1.1.0.img", "1.1.0", 2))
        self.assertEqual(r["group"], {"devices": ids})
        self.assertEqual([w["devices"] for w in r["progress"]], [2, 2])
        self.assertEqual(r["totals"]["assigned"], 4)

        st, v, _ = self.api("GET", "/api/v1/rollouts/" + rid, token=self.read)
        self.assertEqual((st, v["id"]), (200, rid))
        st, v, _ = self.api("GET", "/api/v1/rollouts/%s/devices?limit=3" % rid)
        self.assertEqual(len(v["devices"]), 3)
        st, v2, _ = self.api("GET", "/api/v1/rollouts/%s/devices?after=%s" % (rid, v["next"]))
        self.assertEqual(sorted(m["device"] for m in v["devices"] + v2["devices"]), sorted(ids))
        self.assertIsNone(v2["next"])
        self.assert_refused(400, "bad_request", "GET",
                            "/api/v1/rollouts/%s/devices?status=happy" % rid)

        for op, state in (("pause", "paused"), ("resume", "active"), ("abort", "aborted")):
            st, v, _ = self.api("POST", "/api/v1/rollouts/%s/%s" % (rid, op), token=self.deploy)
            self.assertEqual((st, v["state"]), (200, state), op)
        for op in ("pause", "resume", "abort"):
            self.assert_refused(409, "conflict", "POST", "/api/v1/rollouts/%s/%s" % (rid, op))
        entries = self.audit_tail(mark)
        self.assertEqual([(e["actor"], e["action"], e["object"]) for e in entries],
                         [("deployer", "rollout.create", "rollout/" + rid),
                          ("deployer", "rollout.pause", "rollout/" + rid),
                          ("deployer", "rollout.resume", "rollout/" + rid),
                          ("deployer", "rollout.abort", "rollout/" + rid)])
        self.assertEqual(entries[0]["detail"], body)

        # the list, with paging and a state filter
        st, r2, _ = self.api("POST", "/api/v1/rollouts",
                             body={"release": REL, "group": {"devices": ids[:1]}})
        self.assertEqual(st, 201, r2)
        st, v, _ = self.api("GET", "/api/v1/rollouts?limit=1", token=self.read)
        self.assertEqual(st, 200)
        self.assertEqual(len(v["rollouts"]), 1)
        seen = [x["id"] for x in v["rollouts"]]
        while v["next"] is not None:
            st, v, _ = self.api("GET", "/api/v1/rollouts?limit=1&after=" + v["next"])
            seen += [x["id"] for x in v["rollouts"]]
        self.assertEqual(seen, sorted(seen))
        self.assertTrue({rid, r2["id"]} <= set(seen))
        st, v, _ = self.api("GET", "/api/v1/rollouts?state=aborted")
        self.assertIn(rid, [x["id"] for x in v["rollouts"]])
        self.assertNotIn(r2["id"], [x["id"] for x in v["rollouts"]])

    def test_refused_creations_store_nothing(self):
        devs = self.enrol(2, accept=True)
        (pending,) = self.enrol()
        (other,) = self.enrol(accept=True, hardware_id="board-z")
        ok = {"release": REL, "group": {"devices": [devs[0].id]}}
        for bad in ({"group": {}}, {"release": REL}, {"release": REL, "group": []},
                    dict(ok, waves=[50, 10, 100]), dict(ok, waves=[10, 50]),
                    dict(ok, waves=[]), dict(ok, waves=[0, 100]), dict(ok, waves=[1.5, 100]),
                    dict(ok, waves=list(range(1, 18)) + [100]),
                    dict(ok, success_threshold=2), dict(ok, failure_limit="0.1"),
                    dict(ok, rollback="yes"), dict(ok, colour="red"),
                    {"release": REL, "group": {"devices": [devs[0].id, devs[0].id]}},
                    {"release": REL, "group": {"devices": []}},
                    {"release": REL, "group": {"shape": "round"}},
                    {"release": REL, "group": {"tags": "eu"}},
                    {"release": 5, "group": {}}):
            self.assert_refused(400, "bad_request", "POST", "/api/v1/rollouts", body=bad)
        self.assert_refused(404, "not_found", "POST", "/api/v1/rollouts",
                            body={"release": "ffffffffffffffff", "group": {}})
        self.assert_refused(404, "not_found", "POST", "/api/v1/rollouts",
                            body={"release": REL, "group": {"devices": ["0" * 64]}})
        self.assert_refused(409, "conflict", "POST", "/api/v1/rollouts",
                            body={"release": REL, "group": {"devices": [pending.id]}})
        self.assert_refused(409, "hardware_mismatch", "POST", "/api/v1/rollouts",
                            body={"release": REL, "group": {"devices": [other.id]}})
        self.assert_refused(409, "conflict", "POST", "/api/v1/rollouts",
                            body={"release": REL, "group": {"tags": ["nobody-has-this"]}})


class AuditTest(ApiCase):

    def test_paging(self):
        devs = self.enrol(5)
        for d in devs:
            st, _, _ = self.api("POST", "/api/v1/devices/%s/tags" % d.id, body={"add": ["p"]})
            self.assertEqual(st, 200)
        st, v, _ = self.api("GET", "/api/v1/audit?limit=2", token=self.read)
        self.assertEqual(st, 200)
        self.assertEqual(len(v["entries"]), 2)
        seen = [e["id"] for e in v["entries"]]
        while v["next"] is not None:
            st, v, _ = self.api("GET", "/api/v1/audit?limit=2&after=%d" % v["next"])
            self.assertLessEqual(len(v["entries"]), 2)
            seen += [e["id"] for e in v["entries"]]
        self.assertEqual(seen, sorted(set(seen)))
        tags = [e for e in self.audit_tail() if e["action"] == "device.tags"]
        self.assertEqual(sorted(e["object"] for e in tags[-5:]),
                         sorted("device/" + d.id for d in devs))
        for e in tags:
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class FreshnessTest(ApiCase):
    """A server whose freshness_max_age is 2 s."""
    extra = ("--freshness-max-age", "2s")

    def test_frozen_devices_are_flagged(self):
        (d,) = self.enrol(accept=True)
        st, _ = d.checkin(self.srv)
        self.assertEqual(st, 200)
        st, v, _ = self.api("GET", "/api/v1/devices/" + d.id)
        self.assertIs(v["fresh"], True)
        time.sleep(3.1)
        st, v, _ = self.api("GET", "/api/v1/devices/" + d.id)
        self.assertIs(v["fresh"], False)
        st, v, _ = self.api("GET", "/api/v1/devices?fresh=false")
        self.assertIn(d.id, [x["id"] for x in v["devices"]])
        st, v, _ = self.api("GET", "/api/v1/devices?fresh=true")
        self.assertNotIn(d.id, [x["id"] for x in v["devices"]])
        d.checkin(self.srv)
        st, v, _ = self.api("GET", "/api/v1/devices?fresh=true")
        self.assertIn(d.id, [x["id"] for x in v["devices"]])


if __name__ == "__main__":
    unittest.main()
