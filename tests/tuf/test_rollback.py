# SPDX-License-Identifier: Apache-2.0
"""Versions never go back: timestamp (spec 5.4.3), snapshot named by
timestamp (5.4.3.2), roles listed in snapshot (5.5.5), and root (5.3.5)."""

import unittest

from repo import RepoTestCase


class RollbackTest(RepoTestCase):

    def setUp(self):
        super().setUp()
        self.repo.standard()
        self.old = self.repo.snapshot_files()     # everything at v1
        self.init_client()

    def test_older_timestamp_served(self):
        self.repo.publish()                       # timestamp v2
        self.assertOk(self.refresh())
        before = self.metadata_bytes()
        self.repo.write("timestamp.json", self.old["timestamp.json"])

        proc = self.refresh()
        self.assertFails(proc, "rollback")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertUnchanged(before)

    def test_timestamp_names_older_snapshot(self):
        self.repo.publish()                       # timestamp v2 -> snapshot v2
        self.assertOk(self.refresh())
        before = self.metadata_bytes()
        # A validly signed timestamp v3 that points back at snapshot v1.
        meta = self.repo.meta_for("1.snapshot.json")

        def back_to_v1(signed):
            signed["version"] = 3
            signed["meta"]["snapshot.json"] = meta
        self.repo.edit("timestamp.json", back_to_v1, sign_with=["timestamp"])

        proc = self.refresh()
        self.assertFails(proc, "rollback")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertUnchanged(before)

    def test_snapshot_lists_older_targets(self):
        self.repo.bump("targets")
        self.repo.sign("targets", "targets")
        self.repo.publish()                       # targets v2, snapshot v2
        self.assertOk(self.refresh())
        before = self.metadata_bytes()

        # snapshot v3 (validly signed) says targets is back at v1; timestamp
        # v3 (validly signed) names it with the right hashes.
        def targets_v1(signed):
            signed["version"] = 3
            signed["meta"]["targets.json"] = self.repo.meta_for("1.targets.json")
            del signed["meta"]["targets.json"]["length"]
            del signed["meta"]["targets.json"]["hashes"]
        self.repo.write("3.snapshot.json", self.repo.read("2.snapshot.json"))
        self.repo.edit("3.snapshot.json", targets_v1, sign_with=["snapshot"])
        meta = self.repo.meta_for("3.snapshot.json")

        def ts_v3(signed):
            signed["version"] = 3
            signed["meta"]["snapshot.json"] = meta
        self.repo.edit("timestamp.json", ts_v3, sign_with=["timestamp"])

        proc = self.refresh()
        self.assertFails(proc, "rollback")
        self.assertRequests(["2.root.json", "timestamp.json", "3.snapshot.json"])
        # The new timestamp verified and is kept; nothing else changed.
        self.assertStoredAsServed("timestamp.json", "timestamp.json")
        after = self.metadata_bytes()
        del before["timestamp.json"], after["timestamp.json"]
        self.assertEqual(after, before)

    def test_new_root_with_lower_version(self):
        self.repo.bump("root")
        self.repo.sign("root", "root")
        self.repo.publish()                       # root v2, same keys
        self.assertOk(self.refresh())
        before = self.metadata_bytes()
        # 3.root.json holds root v1: correctly signed, but a replay.
        self.repo.write("3.root.json", self.old["1.root.json"])

        proc = self.refresh()
        self.assertFails(proc, "rollback")
        self.assertRequests(["3.root.json"])
        self.assertUnchanged(before)

    def test_new_root_with_skipped_version(self):
        self.assertOk(self.refresh())
        before = self.metadata_bytes()
        # 2.root.json holds a validly signed root v3.
        self.repo.write("2.root.json", self.repo.read("1.root.json"))
        self.repo.edit("2.root.json", lambda s: s.update(version=3), sign_with=["root"])

        proc = self.refresh()
        self.assertFails(proc, "version-mismatch")
        self.assertRequests(["2.root.json"])
        self.assertUnchanged(before)


if __name__ == "__main__":
    unittest.main()
