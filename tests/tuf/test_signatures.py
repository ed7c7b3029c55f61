# SPDX-License-Identifier: Apache-2.0
"""Signatures and thresholds: a threshold one short, a signature by a key
the role does not list, a broken signature, duplicate key ids, a new root
not signed by the old root's keys (or not by its own), and unknown hash
algorithms."""

import hashlib
import unittest

from repo import RepoTestCase


class ThresholdTest(RepoTestCase):

    def test_timestamp_two_of_two_with_one_signature_dropped(self):
        self.repo.standard(timestamp=("ts1", "ts2"), thresholds={"timestamp": 2})
        self.init_client()
        self.repo.drop_signature("timestamp.json")

        proc = self.refresh()
        self.assertFails(proc, "threshold")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertMetadataFiles(["root.json"])

    def test_targets_two_of_two_with_one_signature_dropped(self):
        self.repo.standard(targets=("t1", "t2"), thresholds={"targets": 2})
        self.init_client()
        self.repo.drop_signature(["1.targets.json", "targets.json"], index=0)
        # Keep snapshot's hashes true to the served file so that only the
        # signature count is at stake.
        self.repo.rechain()

        proc = self.refresh()
        self.assertFails(proc, "threshold")
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json",
                             "1.targets.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json", "snapshot.json"])

    def test_signature_by_a_key_the_role_does_not_list(self):
        self.repo.standard()
        self.init_client()
        self.repo.key("mallory")
        self.repo.resign("timestamp.json", ["mallory"])

        proc = self.refresh()
        self.assertFails(proc, "threshold")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertMetadataFiles(["root.json"])

    def test_snapshot_signed_by_the_timestamp_key(self):
        self.repo.standard()
        self.init_client()
        self.repo.resign(["1.snapshot.json", "snapshot.json"], ["timestamp"])
        meta = self.repo.meta_for("1.snapshot.json")
        self.repo.edit("timestamp.json", lambda s: s["meta"].update({"snapshot.json": meta}),
                       sign_with=["timestamp"])

        proc = self.refresh()
        self.assertFails(proc, "threshold")
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json"])

    def test_broken_signature_bytes(self):
        self.repo.standard()
        self.init_client()
        self.repo.flip_byte("timestamp.json")

        proc = self.refresh()
        self.assertFails(proc, "threshold")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertMetadataFiles(["root.json"])

    def test_extra_invalid_signature_is_ignored(self):
        # Threshold still met: an extra bad signature must not matter.
        self.repo.standard()
        self.init_client()
        env = self.repo.load("timestamp.json")
        env["signatures"].append({"keyid": self.repo.key("mallory").keyid, "sig": "00" * 64})
        env["signatures"].append({"keyid": "ab" * 32, "sig": ""})
        self.repo.save("timestamp.json", env)

        proc = self.refresh()
        self.assertOk(proc)
        self.assertStoredAsServed("timestamp.json", "timestamp.json")

    def test_duplicate_signature_keyid(self):
        self.repo.standard()
        self.init_client()
        env = self.repo.load("timestamp.json")
        env["signatures"].append(dict(env["signatures"][0]))
        self.repo.save("timestamp.json", env)

        proc = self.refresh()
        self.assertFails(proc, "duplicate")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertMetadataFiles(["root.json"])


class RootSignatureTest(RepoTestCase):

    def setUp(self):
        super().setUp()
        self.repo.standard()
        self.init_client()
        self.assertOk(self.refresh())
        self.before = self.metadata_bytes()
        self.repo.rotate("root", add=["root2"], remove=["root"])
        self.repo.sign("root", "root", "root2")
        self.repo.publish()

    def test_new_root_not_signed_by_old_keys(self):
        self.repo.resign(["2.root.json", "root.json"], ["root2"])

        proc = self.refresh()
        self.assertFails(proc, "threshold")
        self.assertRequests(["2.root.json"])
        self.assertUnchanged(self.before)

    def test_new_root_not_signed_by_its_own_keys(self):
        self.repo.resign(["2.root.json", "root.json"], ["root"])

        proc = self.refresh()
        self.assertFails(proc, "threshold")
        self.assertRequests(["2.root.json"])
        self.assertUnchanged(self.before)

    def test_properly_rotated_root_is_accepted(self):
        proc = self.refresh()
        self.assertOk(proc)
        self.assertStoredAsServed("root.json", "2.root.json")


class HashAlgorithmTest(RepoTestCase):

    def test_unknown_hash_algorithm_for_snapshot(self):
        self.repo.standard()
        self.init_client()
        data = self.repo.read("1.snapshot.json")

        def add_unknown(signed):
            signed["meta"]["snapshot.json"]["hashes"] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "sha3-256": hashlib.sha3_256(data).hexdigest(),
            }
        self.repo.edit("timestamp.json", add_unknown, sign_with=["timestamp"])

        proc = self.refresh()
        self.assertFails(proc, "unsupported")
        self.assertNotIn("metadata/1.targets.json", self.requests())
        self.assertNotIn("snapshot.json", self.metadata_files())

    def test_unknown_hash_algorithm_for_a_target(self):
        self.repo.standard(files={"fw.bin": b"firmware\n"})
        self.init_client()

        def add_unknown(signed):
            signed["targets"]["fw.bin"]["hashes"]["blake2b-999"] = "00" * 32
        self.repo.edit(["1.targets.json", "targets.json"], add_unknown,
                       sign_with=["targets"])
        self.repo.rechain()

        proc = self.download("fw.bin")
        self.assertFails(proc, "unsupported", stage="download")
        self.assertEqual([r for r in self.requests() if r.startswith("targets/")], [])
        self.assertEqual(self.target_files(), [])


if __name__ == "__main__":
    unittest.main()
