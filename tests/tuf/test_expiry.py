# SPDX-License-Identifier: Apache-2.0
"""Expired metadata is refused, role by role (spec 5.3.10, 5.4.4, 5.5.6,
5.6.4), and never stored."""

import unittest

from repo import RepoTestCase


class ExpiryTest(RepoTestCase):

    def test_expired_trusted_root(self):
        self.repo.standard(expires="-1h")
        self.init_client()
        before = self.metadata_bytes()

        proc = self.refresh()
        self.assertFails(proc, "expired")
        self.assertRequests(["2.root.json"])
        self.assertUnchanged(before)

    def test_expired_new_root_is_stored_but_refresh_fails(self):
        # Spec 5.3.7 stores each new root as it verifies; 5.3.10 then
        # checks the expiry of the final one.
        self.repo.standard()
        self.init_client()
        self.assertOk(self.refresh())
        self.repo.bump("root", expires="-1h")
        self.repo.sign("root", "root")
        self.repo.publish()
        before = self.metadata_bytes()

        proc = self.refresh()
        self.assertFails(proc, "expired")
        self.assertRequests(["2.root.json", "3.root.json"])
        self.assertStoredAsServed("root.json", "2.root.json")
        after = self.metadata_bytes()
        del before["root.json"], after["root.json"]
        self.assertEqual(after, before)

    def test_expired_timestamp(self):
        self.repo.standard(timestamp_expires="-1h")
        self.init_client()

        proc = self.refresh()
        self.assertFails(proc, "expired")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertMetadataFiles(["root.json"])

    def test_expired_timestamp_after_a_good_one(self):
        self.repo.standard()
        self.init_client()
        self.assertOk(self.refresh())
        before = self.metadata_bytes()
        self.repo.publish(timestamp_expires="-1m")

        proc = self.refresh()
        self.assertFails(proc, "expired")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertUnchanged(before)

    def test_expired_snapshot(self):
        self.repo.standard(snapshot_expires="-1h")
        self.init_client()

        proc = self.refresh()
        self.assertFails(proc, "expired")
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json"])
        self.assertStoredAsServed("timestamp.json", "timestamp.json")

    def test_expired_targets(self):
        self.repo.standard()
        self.repo.bump("targets", expires="-1h")
        self.repo.sign("targets", "targets")
        self.repo.publish()
        self.init_client()

        proc = self.refresh()
        self.assertFails(proc, "expired")
        self.assertRequests(["2.root.json", "timestamp.json", "2.snapshot.json",
                             "2.targets.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json", "snapshot.json"])

    def test_expired_delegated_role(self):
        self.repo.init()
        self.repo.delegate("team", ["team"], ["apps/*"])
        self.repo.add_target("apps/tool", b"tool\n", role="team")
        self.repo.bump("team", expires="-1h")
        self.repo.sign("team", "team")
        self.repo.sign("targets", "targets")
        self.repo.sign("root", "root")
        self.repo.publish()
        self.init_client()

        proc = self.download("apps/tool")
        self.assertFails(proc, "expired", stage="download")
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json",
                             "1.targets.json", "1.team.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json", "snapshot.json",
                                  "targets.json"])
        self.assertEqual(self.target_files(), [])


if __name__ == "__main__":
    unittest.main()
