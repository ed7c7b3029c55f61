# SPDX-License-Identifier: Apache-2.0
"""download: targets fetched at <dir/>HASH.<basename>, verified while they
stream, written under their encoded name only once verified; a verified
local copy is not fetched again; several targets in order, stopping at the
first failure; nothing unverified is ever left in the target dir."""

import hashlib
import os
import unittest
import urllib.parse

from harness import Override
from repo import RepoTestCase

FIRMWARE = b"firmware image v1\n" * 200
TOP_FETCH = ["2.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"]


def served_name(path, data):
    d, sep, base = path.rpartition("/")
    return "%s%s%s.%s" % (d, sep, hashlib.sha256(data).hexdigest(), base)


class DownloadTest(RepoTestCase):

    def setUp(self):
        super().setUp()
        self.files = {
            "fw/image.bin": FIRMWARE,
            "notes.txt": b"release notes\n",
            "second.bin": b"second\n" * 10,
        }
        self.repo.standard(files=self.files)
        self.init_client()

    def local(self, name):
        with open(os.path.join(self.target_dir, name), "rb") as f:
            return f.read()

    def served_path(self, name):
        return self.repo_prefix + "targets/" + served_name(name, self.files[name])

    def assertNoTempFiles(self):
        for d in (self.target_dir, self.metadata_dir):
            if os.path.isdir(d):
                for f in os.listdir(d):
                    self.assertFalse(f.startswith(".fota+tmp."), "%s left in %s" % (f, d))

    def test_download_then_nothing_to_fetch(self):
        proc = self.download("fw/image.bin")
        self.assertOk(proc)
        self.assertRequests(TOP_FETCH, [served_name("fw/image.bin", FIRMWARE)])
        self.assertEqual(self.target_files(), ["fw%2Fimage.bin"])
        self.assertEqual(self.local("fw%2Fimage.bin"), FIRMWARE)

        proc = self.download("fw/image.bin")
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertEqual(self.local("fw%2Fimage.bin"), FIRMWARE)

    def test_wrong_bytes_of_the_right_length(self):
        bad = bytearray(FIRMWARE)
        bad[100] ^= 1
        self.server.override(self.served_path("fw/image.bin"), Override(body=bytes(bad)))

        proc = self.download("fw/image.bin")
        self.assertFails(proc, "hash-mismatch", stage="download")
        self.assertRequests(TOP_FETCH, [served_name("fw/image.bin", FIRMWARE)])
        self.assertEqual(self.target_files(), [])
        self.assertNoTempFiles()

    def test_longer_than_signed(self):
        self.server.override(self.served_path("fw/image.bin"), Override(body=FIRMWARE + b"x"))

        proc = self.download("fw/image.bin")
        self.assertFails(proc, "length", stage="download")
        self.assertEqual(self.target_files(), [])
        self.assertNoTempFiles()

    def test_longer_than_signed_without_content_length(self):
        self.server.override(self.served_path("fw/image.bin"),
                             Override(body=FIRMWARE + b"x" * 5000, content_length=None))

        proc = self.download("fw/image.bin")
        self.assertFails(proc, "length", stage="download")
        self.assertEqual(self.target_files(), [])
        self.assertNoTempFiles()

    def test_shorter_than_signed(self):
        self.server.override(self.served_path("fw/image.bin"), Override(body=FIRMWARE[:-1]))

        proc = self.download("fw/image.bin")
        self.assertFails(proc, "length", stage="download")
        self.assertEqual(self.target_files(), [])
        self.assertNoTempFiles()

    def test_target_missing_on_server(self):
        self.server.force_status(self.served_path("fw/image.bin"), 404)

        proc = self.download("fw/image.bin")
        self.assertFails(proc, "not-found", stage="download")
        self.assertEqual(self.target_files(), [])

    def test_unknown_target(self):
        proc = self.download("no/such/target")
        self.assertFails(proc, "no-target", stage="download")
        self.assertRequests(TOP_FETCH)
        self.assertEqual(self.target_files(), [])

    def test_several_targets_stop_at_the_first_failure(self):
        self.server.force_status(self.served_path("notes.txt"), 404)

        proc = self.download("fw/image.bin", "notes.txt", "second.bin")
        self.assertFails(proc, "not-found", stage="download")
        self.assertRequests(TOP_FETCH, [served_name("fw/image.bin", FIRMWARE),
                                        served_name("notes.txt", self.files["notes.txt"])])
        self.assertEqual(self.target_files(), ["fw%2Fimage.bin"])

    def test_several_targets_in_order(self):
        proc = self.download("second.bin", "fw/image.bin", "notes.txt")
        self.assertOk(proc)
        self.assertRequests(TOP_FETCH, [served_name(n, self.files[n]) for n in
                                        ("second.bin", "fw/image.bin", "notes.txt")])
        self.assertEqual(self.target_files(), ["fw%2Fimage.bin", "notes.txt", "second.bin"])

    def test_tampered_local_copy_is_replaced(self):
        self.assertOk(self.download("notes.txt"))
        with open(os.path.join(self.target_dir, "notes.txt"), "wb") as f:
            f.write(b"tampered\n")
        self.planted_targets.add("notes.txt")

        proc = self.download("notes.txt")
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json"],
                            [served_name("notes.txt", self.files["notes.txt"])])
        self.assertEqual(self.local("notes.txt"), self.files["notes.txt"])

    def test_tampered_local_copy_is_removed_when_the_fetch_fails(self):
        self.assertOk(self.download("notes.txt"))
        with open(os.path.join(self.target_dir, "notes.txt"), "wb") as f:
            f.write(b"tampered\n")
        self.planted_targets.add("notes.txt")
        self.server.force_status(self.served_path("notes.txt"), 404)

        proc = self.download("notes.txt")
        self.assertFails(proc, "not-found", stage="download")
        self.assertEqual(self.target_files(), [])

    def test_failed_refresh_downloads_nothing(self):
        self.repo.flip_byte("timestamp.json")
        proc = self.download("fw/image.bin")
        self.assertFails(proc, "threshold")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertEqual(self.target_files(), [])

    def test_base_url_with_or_without_slash(self):
        args = ["--metadata-dir", self.metadata_dir, "--metadata-url", self.metadata_url + "/",
                "--target-name", "notes.txt", "--target-base-url", self.targets_url + "/",
                "--target-dir", self.target_dir, "download"]
        self.server.clear_requests()
        self.assertOk(self.run_client(*args))
        self.assertRequests(TOP_FETCH, [served_name("notes.txt", self.files["notes.txt"])])


class UnusualTargetPathTest(RepoTestCase):
    """Target paths with bytes a URL cannot carry as they are, or that a
    file name cannot: each lands in exactly one file, under its encoded name."""

    def test_unusual_paths(self):
        files = {
            "with space.txt": b"space\n",
            "dir/sub dir/\u00fcml\u00e4ut.bin": b"umlaut\n",
            "odd#?.txt": b"hash and question mark\n",
        }
        self.repo.standard(files={k: v for k, v in files.items()})
        self.init_client()

        proc = self.download(*files)
        self.assertOk(proc)
        got = self.requests()
        self.assertEqual(len([r for r in got if r.startswith("targets/")]), 3, got)
        self.assertEqual(self.target_files(), sorted(
            ["with%20space.txt", "dir%2Fsub%20dir%2F%C3%BCml%C3%A4ut.bin", "odd%23%3F.txt"]))
        for name, data in files.items():
            enc = urllib.parse.quote(name, safe="")
            with open(os.path.join(self.target_dir, enc), "rb") as f:
                self.assertEqual(f.read(), data)

    def test_dot_dot_target_cannot_escape(self):
        self.repo.standard(files={"x": b"x\n"})
        # A validly signed targets file naming "..": it must not be written
        # anywhere, least of all the parent of the target dir.
        data = b"escape\n"
        entry = {"length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}
        self.repo.edit(["1.targets.json", "targets.json"],
                       lambda s: s["targets"].update({"..": entry}), sign_with=["targets"])
        self.repo.rechain()
        self.init_client()

        proc = self.download("..")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(self.target_files(), [])


class PlainPathDownloadTest(RepoTestCase):

    def test_without_consistent_snapshots_the_plain_path_is_fetched(self):
        self.repo.standard(files={"fw/image.bin": FIRMWARE}, consistent=False)
        self.init_client()

        proc = self.download("fw/image.bin")
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "snapshot.json",
                             "targets.json"], ["fw/image.bin"])
        self.assertEqual(self.target_files(), ["fw%2Fimage.bin"])


if __name__ == "__main__":
    unittest.main()
