# SPDX-License-Identifier: Apache-2.0
"""Freeze: the device is kept from learning that something newer exists, by
replaying what was once true (an old Director answer, an old timestamp) or
by a Director that says "nothing new" forever.

Defences: the Director document echoes the nonce the device just sent and
names the device (clockless devices); timestamps expire quickly and a
device with a clock refuses an expired one; the server lists a device whose
last answered check-in is older than freshness_max_age as not fresh
("possibly frozen"), which an attacker who holds back its check-ins cannot
prevent.

The server here renews its 8 s timestamps when 5 s are left and flags
devices after 3 s without a fresh check-in, so that every wait takes
seconds.

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_freeze
"""

import calendar
import json
import os
import time
import unittest

from attacklib import EXIT, META, AttackCase


def parse_time(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


class FreezeTest(AttackCase):
    env_args = {"timestamp_expiry": "8s", "timestamp_renew_before": "5s",
                "server_extra": ["--freshness-max-age", "3s"]}

    def test_replayed_director_document(self):
        """A man in the middle answers a check-in with the device's own,
        genuinely signed, Director document of an earlier check-in: it does
        not echo the nonce just sent."""
        dev = self.ready("replay")
        since = self.mark(dev)
        self.proxy.set_mode("freeze", director=True, timestamp=False)
        self.attack(dev, "nonce-mismatch", where="Director document refused")
        self.assertAttacked("/device/v1/checkin", "replayed an old Director document")
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "nonce-mismatch", since)

    def test_director_document_of_another_device(self):
        """A man in the middle answers a check-in with the latest genuine
        Director document of another device: it names another device (and
        echoes another nonce)."""
        other = self.ready("other")
        dev = self.ready("victim")
        since = self.mark(dev)
        self.assertEqual(other.once(), EXIT["idle"], other.log())
        doc = self.proxy.checkins(other.id)[-1]

        def answer(method, path, headers, body):
            if method == "POST" and path == "/device/v1/checkin":
                return 200, [("Content-Type", "application/json")], doc
            return None
        self.proxy.set_mode("rogue", handler=answer)
        self.attack(dev, "wrong-device", where="Director document refused")
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "wrong-device", since)

    def test_expired_timestamp(self):
        """A mirror keeps serving the timestamp the device trusts now (same
        version, genuinely signed) after it has expired, while the server
        has long renewed it. A device with a clock refuses it (spec 5.4.4):
        it learns that it cannot know what is current."""
        dev = self.ready("expired")
        since = self.mark(dev)
        with open(os.path.join(dev.data, "tuf", "timestamp.json"), "rb") as f:
            trusted = f.read()
        expires = parse_time(json.loads(trusted)["signed"]["expires"])
        self.assertLess(expires - time.time(), 12)
        self.proxy.set_mode("rogue", files={META + "timestamp.json": trusted})
        while time.time() < expires + 1.2:
            time.sleep(0.2)
        self.assertGreater(self.env.version("timestamp"), json.loads(trusted)["signed"]["version"])
        self.attack(dev, "expired", where="timestamp")
        self.assertVerified(dev, "1.0.0", 1)
        self.assertServerLearns(dev, "expired", since)

    def test_nothing_new_forever(self):
        """A compromised Director (its online key) answers every check-in
        itself with a correctly signed "stay" for the right device and
        nonce, and never lets a check-in through, while a rollout of 1.1.0
        waits for the device. The device cannot tell (each cycle: exit 0,
        idle), and that is by design the server's to notice: without a
        fresh check-in for freshness_max_age the operator API lists the
        device "fresh": false (also under ?fresh=false). When its traffic
        gets through again it updates and is fresh."""
        dev = self.ready("stay")
        self.env.rollout("1.1.0", devices=[dev])
        self.assertTrue(self.env.device_info(dev)["fresh"])
        self.proxy.set_mode("rogue", checkin="swallow")
        t0 = time.time()
        while True:
            rc = dev.once()
            self.assertEqual(rc, EXIT["idle"], dev.log())
            self.assertIn("checkin action=stay", dev.log())
            if time.time() - t0 > 4.5:
                break
            time.sleep(0.5)
        self.assertAttacked("/device/v1/checkin", "swallowed check-in answered: stay")
        info = self.env.device_info(dev)
        self.assertIs(info["fresh"], False, info)
        self.assertEqual(info["version"], "1.0.0")
        st, listed, _ = self.env.srv.api("GET", "/api/v1/devices?fresh=false")
        self.assertEqual(st, 200)
        self.assertIn(dev.id, [d["id"] for d in listed["devices"]])
        self.assertVerified(dev, "1.0.0", 1)
        self.proxy.set_mode("pass")
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        info = self.env.device_info(dev)
        self.assertEqual((info["fresh"], info["version"]), (True, "1.1.0"), info)


if __name__ == "__main__":
    unittest.main()
