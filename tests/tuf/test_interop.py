# SPDX-License-Identifier: Apache-2.0
"""fota-tuf-client against repositories that no fota code wrote or signed.

The metadata here is made by sslib_repo.py: keys and signatures by
securesystemslib/cryptography, pretty-printed (non-canonical) files with
fields fota does not know. The client must accept all of it, store exactly
the bytes it received, and make the same requests as for its own
repositories.
"""

import hashlib
import os
import unittest

from harness import ClientTestCase
from sslib_repo import SslibRepo

FIRMWARE = b"interop firmware image\n" * 100


class InteropTest(ClientTestCase):

    def make_repo(self, **kw):
        self.use_repo("sslib")
        repo = SslibRepo(os.path.join(self.serve_dir, "sslib"), **kw)
        return repo

    def test_mixed_key_types_refresh_and_download(self):
        repo = self.make_repo(key_types={"root": "ecdsa", "targets": "rsa",
                                         "snapshot": "ecdsa", "timestamp": "ed25519"})
        info = repo.add_target("fw/image.bin", FIRMWARE, custom={"hwid": "board-a"})
        repo.publish()
        self.init_client()

        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json",
                             "1.targets.json"])
        self.assertMetadataFiles(["root.json", "timestamp.json", "snapshot.json",
                                  "targets.json"])
        # Stored as received: the pretty-printed bytes, not a re-encoding.
        self.assertStoredAsServed("root.json", "1.root.json")
        self.assertStoredAsServed("timestamp.json", "timestamp.json")
        self.assertStoredAsServed("snapshot.json", "1.snapshot.json")
        self.assertStoredAsServed("targets.json", "1.targets.json")

        proc = self.download("fw/image.bin")
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json"],
                            ["fw/%s.image.bin" % info["hashes"]["sha256"]])
        self.assertEqual(self.target_files(), ["fw%2Fimage.bin"])
        with open(os.path.join(self.target_dir, "fw%2Fimage.bin"), "rb") as f:
            self.assertEqual(f.read(), FIRMWARE)

    def test_delegated_role_with_slash_signed_by_rsa(self):
        repo = self.make_repo(snapshot_meta_hashes=True)
        repo.delegate("team/a", ["apps/*"], keytype="rsa")
        info = repo.add_target("apps/tool", b"delegated tool\n", role="team/a")
        repo.publish()
        self.init_client()

        proc = self.download("apps/tool")
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "1.snapshot.json",
                             "1.targets.json", "1.team%2Fa.json"],
                            ["apps/%s.tool" % info["hashes"]["sha256"]])
        self.assertMetadataFiles(["root.json", "timestamp.json", "snapshot.json",
                                  "targets.json", "team%2Fa.json"])
        self.assertStoredAsServed("team%2Fa.json", "1.team%2Fa.json")
        self.assertEqual(self.target_files(), ["apps%2Ftool"])

    def test_root_rotation_signed_by_old_and_new_keys(self):
        repo = self.make_repo()
        repo.publish()
        self.init_client()
        repo.rotate("root", keytype="ecdsa")
        repo.publish_root()           # v2: old ed25519 + new ecdsa signatures
        repo.rotate("timestamp", keytype="rsa")
        repo.publish_root()           # v3: timestamp key changed
        repo.publish()

        proc = self.refresh()
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "3.root.json", "4.root.json", "timestamp.json",
                             "2.snapshot.json", "2.targets.json"])
        self.assertStoredAsServed("root.json", "3.root.json")
        self.assertStoredAsServed("timestamp.json", "timestamp.json")

    def test_without_consistent_snapshots(self):
        repo = self.make_repo(consistent_snapshot=False)
        repo.add_target("plain.txt", b"plain\n")
        repo.publish()
        self.init_client()

        proc = self.download("plain.txt")
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "snapshot.json", "targets.json"],
                            ["plain.txt"])
        self.assertEqual(self.target_files(), ["plain.txt"])

    def test_tampered_independent_target_is_refused(self):
        repo = self.make_repo()
        info = repo.add_target("image.bin", FIRMWARE)
        repo.publish()
        self.init_client()
        served = os.path.join(repo.targets_dir, "%s.image.bin" % info["hashes"]["sha256"])
        with open(served, "r+b") as f:
            f.seek(10)
            f.write(b"X")

        proc = self.download("image.bin")
        self.assertFails(proc, "hash-mismatch", stage="download")
        self.assertEqual(self.target_files(), [])
        with open(served, "rb") as f:
            self.assertNotEqual(hashlib.sha256(f.read()).hexdigest(), info["hashes"]["sha256"])


if __name__ == "__main__":
    unittest.main()
