# SPDX-License-Identifier: Apache-2.0
"""Successful refreshes and the command line itself: which requests a fresh
client makes, what a second run makes, root rotation chains, fast-forward
recovery, a stored root that is not valid (no request at all), and init."""

import os
import unittest

from repo import RepoTestCase

TOP = ["root.json", "timestamp.json", "snapshot.json", "targets.json"]


class RefreshTest(RepoTestCase):

    def test_fresh_client_request_sequence(self):
        self.repo.standard(files={"fw.bin": b"firmware\n"})
        self.init_client()
        self.assertMetadataFiles(["root.json"])

        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json",
                             "1.targets.json"])
        self.assertMetadataFiles(TOP)
        self.assertStoredAsServed("root.json", "1.root.json")
        self.assertStoredAsServed("timestamp.json", "timestamp.json")
        self.assertStoredAsServed("snapshot.json", "1.snapshot.json")
        self.assertStoredAsServed("targets.json", "1.targets.json")

    def test_second_refresh_with_nothing_new(self):
        self.repo.standard()
        self.init_client()
        self.assertOk(self.refresh())
        before = self.metadata_bytes()

        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertUnchanged(before)

    def test_renewed_snapshot_reuses_stored_targets(self):
        self.repo.standard()
        self.init_client()
        self.assertOk(self.refresh())
        self.repo.publish()       # snapshot v2, timestamp v2; targets still v1

        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "2.snapshot.json"])
        self.assertStoredAsServed("snapshot.json", "2.snapshot.json")
        self.assertStoredAsServed("timestamp.json", "timestamp.json")

    def test_new_targets_version(self):
        self.repo.standard()
        self.init_client()
        self.assertOk(self.refresh())
        self.repo.add_target("new.bin", b"new\n")
        self.repo.sign("targets", "targets")
        self.repo.publish()

        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "2.snapshot.json",
                             "2.targets.json"])
        self.assertStoredAsServed("targets.json", "2.targets.json")

    def test_root_chain_with_rotated_root_keys(self):
        self.repo.standard()
        self.init_client()
        self.assertOk(self.refresh())
        # v2: root key r1 -> r2, signed by both; v3: r2 -> r3, signed by both.
        self.repo.rotate("root", add=["root2"], remove=["root"])
        self.repo.sign("root", "root", "root2")
        self.repo.publish()
        self.repo.rotate("root", add=["root3"], remove=["root2"])
        self.repo.sign("root", "root2", "root3")
        self.repo.publish()

        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "3.root.json", "4.root.json", "timestamp.json",
                             "3.snapshot.json"])
        self.assertStoredAsServed("root.json", "3.root.json")
        self.assertMetadataFiles(TOP)

    def test_fast_forward_recovery_after_timestamp_key_rotation(self):
        self.repo.standard()
        self.init_client()
        self.assertOk(self.refresh())
        # The timestamp key leaks; the attacker makes the client trust a
        # timestamp with a huge version.
        self.repo.edit("timestamp.json", lambda s: s.update(version=1000),
                       sign_with=["timestamp"])
        self.assertOk(self.refresh())
        self.assertEqual(self.stored_version("timestamp.json"), 1000)

        # The operator rotates the timestamp key: root v2. The real timestamp
        # (v2) would now be a "rollback" but for fast-forward recovery.
        self.repo.rotate("timestamp", add=["timestamp2"], remove=["timestamp"])
        self.repo.sign("root", "root")
        self.repo.publish()

        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "3.root.json", "timestamp.json",
                             "2.snapshot.json"])
        self.assertStoredAsServed("root.json", "2.root.json")
        self.assertStoredAsServed("timestamp.json", "timestamp.json")
        self.assertEqual(self.stored_version("timestamp.json"), 2)
        self.assertMetadataFiles(TOP)

    def test_without_consistent_snapshots(self):
        self.repo.standard(consistent=False)
        self.init_client()

        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "snapshot.json",
                             "targets.json"])
        self.assertMetadataFiles(TOP)

    def stored_version(self, name):
        import json
        with open(os.path.join(self.metadata_dir, name), "rb") as f:
            return json.loads(f.read())["signed"]["version"]


class StoredRootTest(RepoTestCase):
    """A stored root that is missing or not valid: fail with no request."""

    def setUp(self):
        super().setUp()
        self.repo.standard()
        self.init_client()

    def corrupt_and_refresh(self, data):
        with open(os.path.join(self.metadata_dir, "root.json"), "wb") as f:
            f.write(data)
        before = self.metadata_bytes()
        proc = self.refresh()
        self.assertEqual(self.server.requests(), [])
        self.assertUnchanged(before)
        return proc

    def test_root_signature_broken(self):
        data = bytearray(self.repo.read("1.root.json"))
        i = data.index(b'"sig":"') + 10
        data[i] = ord("0") if data[i] != ord("0") else ord("1")
        self.assertFails(self.corrupt_and_refresh(bytes(data)), "threshold")

    def test_root_not_json(self):
        self.assertFails(self.corrupt_and_refresh(b"{not json"), "parse")

    def test_root_of_wrong_type(self):
        self.assertFails(self.corrupt_and_refresh(self.repo.read("timestamp.json")),
                         "wrong-type")

    def test_root_missing(self):
        os.unlink(os.path.join(self.metadata_dir, "root.json"))
        proc = self.refresh()
        self.assertFails(proc, "not-found")
        self.assertEqual(self.server.requests(), [])
        self.assertMetadataFiles([])

    def test_download_with_invalid_root_makes_no_request(self):
        with open(os.path.join(self.metadata_dir, "root.json"), "wb") as f:
            f.write(b"[]")
        proc = self.download("anything")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(self.server.requests(), [])
        self.assertEqual(self.target_files(), [])


class CommandLineTest(RepoTestCase):

    def test_help(self):
        for arg in ("--help", "-h"):
            proc = self.run_client(arg, verbose=False)
            self.assertEqual(proc.returncode, 0)
            self.assertIn("--metadata-dir", proc.stdout)
            self.assertEqual(proc.stderr, "")

    def test_usage_errors_exit_1(self):
        cases = [
            [],
            ["refresh"],                                          # no --metadata-dir
            ["--metadata-dir", self.metadata_dir, "refresh"],     # no --metadata-url
            ["--metadata-dir", self.metadata_dir, "init"],        # no root file
            ["--metadata-dir", self.metadata_dir, "frobnicate"],
            ["--bogus", "x", "--metadata-dir", self.metadata_dir, "init", "f"],
            ["--metadata-dir"],
            ["--metadata-dir", "a", "--metadata-dir", "b", "init", "f"],
            ["--metadata-dir", self.metadata_dir, "--metadata-url", "http://127.0.0.1:1/",
             "download"],                                         # no targets
            ["--metadata-dir", self.metadata_dir, "--metadata-url", "http://127.0.0.1:1/",
             "--target-name", "x", "refresh"],
        ]
        for args in cases:
            proc = self.run_client(*args, verbose=False)
            self.assertEqual(proc.returncode, 1, args)
            self.assertNotEqual(proc.stderr, "", args)
            self.assertEqual(proc.stdout, "", args)
        self.assertEqual(self.server.requests(), [])

    def test_equals_form_and_any_order(self):
        self.repo.standard()
        self.init_client()
        proc = self.run_client("--metadata-url=" + self.metadata_url + "/",
                               "--metadata-dir=" + self.metadata_dir, "refresh")
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json",
                             "1.targets.json"])

    def test_quiet_failure_prints_one_line(self):
        self.repo.standard(timestamp_expires="-1h")
        self.init_client()
        proc = self.refresh(verbose=False)
        self.assertFails(proc, "expired")
        # Without -v: rejections and the final line only, no check lines.
        for line in proc.stderr.splitlines():
            self.assertTrue("rejected" in line or "failed" in line, line)

    def test_init_copies_exact_bytes_without_requests(self):
        self.repo.standard()
        self.server.clear_requests()
        src = self.repo.file("1.root.json")
        proc = self.run_client("--metadata-dir", self.metadata_dir, "init", src)
        self.assertOk(proc)
        self.assertEqual(self.server.requests(), [])
        self.assertMetadataFiles(["root.json"])
        self.assertStoredAsServed("root.json", "1.root.json")

    def test_init_creates_the_metadata_dir(self):
        self.repo.standard()
        new_dir = os.path.join(self.tmp, "fresh")
        proc = self.run_client("--metadata-dir", new_dir, "init", self.repo.file("1.root.json"))
        self.assertOk(proc)
        self.assertEqual(os.listdir(new_dir), ["root.json"])

    def test_init_refuses_missing_and_oversized_files(self):
        proc = self.run_client("--metadata-dir", self.metadata_dir, "init",
                               os.path.join(self.tmp, "absent.json"))
        self.assertEqual(proc.returncode, 1)
        self.assertIn("not-found", proc.stderr)
        big = os.path.join(self.tmp, "big.json")
        with open(big, "wb") as f:
            f.write(b" " * 512001)
        proc = self.run_client("--metadata-dir", self.metadata_dir, "init", big)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("length", proc.stderr)
        self.assertMetadataFiles([])


if __name__ == "__main__":
    unittest.main()
