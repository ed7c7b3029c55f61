# SPDX-License-Identifier: Apache-2.0
"""Hashes and lengths from the referring metadata (spec 5.5.2, 5.6.2), and
the size caps that bound what a server can make the client read: each
transfer stops at the first byte past the cap, whatever Content-Length says
or does not say."""

import time
import unittest

from harness import Override
from repo import RepoTestCase

TIMESTAMP_CAP = 16384


class MetaHashTest(RepoTestCase):

    def setUp(self):
        super().setUp()
        self.repo.standard(files={"fw.bin": b"firmware\n"})
        self.init_client()

    def test_snapshot_hash_mismatch(self):
        # Same length, one byte different: only the hash can tell.
        self.repo.flip_byte("1.snapshot.json")

        proc = self.refresh()
        self.assertFails(proc, "hash-mismatch")
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json"])

    def test_snapshot_length_exceeded(self):
        self.repo.append("1.snapshot.json", b" " * 10)

        proc = self.refresh()
        self.assertFails(proc, "length")
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json"])

    def test_snapshot_shorter_than_signed_length(self):
        data = self.repo.read("1.snapshot.json")
        self.repo.write("1.snapshot.json", data[:-1])

        proc = self.refresh()
        self.assertEqual(proc.returncode, 1)
        self.assertRegex(proc.stderr.splitlines()[-1],
                         r"^fota-tuf-client: refresh failed: (length|hash-mismatch):")
        self.assertMetadataFiles(["root.json", "timestamp.json"])

    def test_targets_hash_mismatch(self):
        self.repo.flip_byte("1.targets.json")

        proc = self.refresh()
        self.assertFails(proc, "hash-mismatch")
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json",
                             "1.targets.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json", "snapshot.json"])

    def test_targets_length_exceeded(self):
        self.repo.append("1.targets.json", b"\n" * 3)

        proc = self.refresh()
        self.assertFails(proc, "length")
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json",
                             "1.targets.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json", "snapshot.json"])


class SizeCapTest(RepoTestCase):

    def setUp(self):
        super().setUp()
        self.repo.standard(files={"fw.bin": b"firmware\n" * 100})
        self.init_client()
        self.ts_path = self.repo_prefix + "metadata/timestamp.json"

    def test_timestamp_over_the_size_cap(self):
        data = self.repo.read("timestamp.json")
        self.repo.write("timestamp.json", data + b" " * (TIMESTAMP_CAP + 1 - len(data)))

        proc = self.refresh()
        self.assertFails(proc, "length")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertMetadataFiles(["root.json"])

    def test_timestamp_endless_without_content_length(self):
        self.server.override(self.ts_path, Override(body=b"{" * 4096, endless=True,
                                                    content_length=None,
                                                    endless_cap=64 * 1024 * 1024))
        proc = self.refresh()
        self.assertFails(proc, "length")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertMetadataFiles(["root.json"])

    def test_timestamp_lying_content_length(self):
        # Announces a small body, then keeps sending: curl must not read on.
        self.server.override(self.ts_path, Override(body=b"{" * 4096, endless=True,
                                                    content_length=100))
        proc = self.refresh()
        self.assertEqual(proc.returncode, 1)
        self.assertMetadataFiles(["root.json"])

    def test_timestamp_huge_content_length_refused_up_front(self):
        self.server.override(self.ts_path, Override(body=b"{}", content_length=10 ** 9))
        proc = self.refresh()
        self.assertFails(proc, "length")
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertMetadataFiles(["root.json"])

    def test_endless_target(self):
        self.assertOk(self.refresh())
        target = self.repo.target_file("fw.bin")
        url_path = self.repo_prefix + "targets/" + target.split("/targets/", 1)[1]
        self.server.override(url_path, Override(body=b"firmware\n" * 1000, endless=True,
                                                content_length=None))
        proc = self.download("fw.bin")
        self.assertFails(proc, "length", stage="download")
        self.assertEqual(self.target_files(), [])

    def test_slow_retrieval_is_cut_off(self):
        # 16 bytes a second, far under the minimum speed: the transfer is
        # dropped once it has been too slow for FOTA_HTTP_LOW_SPEED_TIME.
        self.client_env = {"FOTA_HTTP_LOW_SPEED_LIMIT": "1024", "FOTA_HTTP_LOW_SPEED_TIME": "2"}
        self.server.override(self.ts_path, Override(body=self.repo.read("timestamp.json"),
                                                    delay=1.0, chunk=16))
        start = time.monotonic()
        proc = self.refresh()
        self.assertFails(proc, "io")
        self.assertLess(time.monotonic() - start, 30)
        self.assertRequests(["2.root.json", "timestamp.json"])
        self.assertMetadataFiles(["root.json"])

    def test_bad_http_tuning_is_a_usage_error(self):
        self.client_env = {"FOTA_HTTP_LOW_SPEED_TIME": "soon"}
        proc = self.refresh()
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(self.requests(), [])

    def test_root_probe_server_error_is_not_the_end_of_the_chain(self):
        # Only 404 (or 403) ends the root chain; a 500 is a failure.
        self.server.force_status(self.repo_prefix + "metadata/2.root.json", 500)
        proc = self.refresh()
        self.assertFails(proc, "io")
        self.assertRequests(["2.root.json"])
        self.assertMetadataFiles(["root.json"])

    def test_root_probe_403_ends_the_chain(self):
        self.server.force_status(self.repo_prefix + "metadata/2.root.json", 403)
        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json",
                             "1.targets.json"])

    def test_redirect_is_not_followed(self):
        location = self.repo_prefix + "metadata/1.root.json"
        self.server.override(self.ts_path, Override(status=302, body=b"",
                                                    headers={"Location": location}))
        proc = self.refresh()
        self.assertFails(proc, "io")
        self.assertRequests(["2.root.json", "timestamp.json"])


if __name__ == "__main__":
    unittest.main()
