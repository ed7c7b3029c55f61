# SPDX-License-Identifier: Apache-2.0
"""Delegations (spec 5.6.7): searched lazily, pre-order depth first, the
first matching role wins, terminating delegations end the search, "*" and
"?" never match "/", a role snapshot does not list is never requested, and
role names are percent-encoded in request and file names."""

import hashlib
import unittest

from repo import RepoTestCase

TOP_FETCH = ["2.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"]
TOP_FILES = ["root.json", "timestamp.json", "snapshot.json", "targets.json"]


def served_name(path, data):
    d, sep, base = path.rpartition("/")
    return "%s%s%s.%s" % (d, sep, hashlib.sha256(data).hexdigest(), base)


class DelegationTest(RepoTestCase):

    def setUp(self):
        super().setUp()
        self.repo.init()

    def publish(self, roles):
        """Sign every delegated role with its key, then targets and root."""
        for role, key in roles:
            self.repo.sign(role, key)
        self.repo.sign("targets", "targets")
        self.repo.sign("root", "root")
        self.repo.publish()
        self.init_client()

    def read_target(self, name):
        import os
        with open(os.path.join(self.target_dir, name), "rb") as f:
            return f.read()

    def test_first_matching_role_wins(self):
        self.repo.delegate("a", ["ka"], ["fw/*"])
        self.repo.delegate("b", ["kb"], ["fw/*"])
        self.repo.add_target("fw/x", b"from a\n", role="a")
        self.repo.add_target("fw/x", b"from b\n", role="b")
        self.publish([("a", "ka"), ("b", "kb")])

        proc = self.download("fw/x")
        self.assertOk(proc)
        self.assertRequests(TOP_FETCH + ["1.a.json"], [served_name("fw/x", b"from a\n")])
        self.assertEqual(self.read_target("fw%2Fx"), b"from a\n")
        self.assertMetadataFiles(TOP_FILES + ["a.json"])

    def test_search_continues_past_a_role_without_the_target(self):
        self.repo.delegate("a", ["ka"], ["fw/*"])
        self.repo.delegate("b", ["kb"], ["fw/*"])
        self.repo.add_target("fw/y", b"from b\n", role="b")
        self.publish([("a", "ka"), ("b", "kb")])

        proc = self.download("fw/y")
        self.assertOk(proc)
        self.assertRequests(TOP_FETCH + ["1.a.json", "1.b.json"],
                            [served_name("fw/y", b"from b\n")])
        self.assertMetadataFiles(TOP_FILES + ["a.json", "b.json"])

    def test_terminating_delegation_stops_the_search(self):
        self.repo.delegate("a", ["ka"], ["fw/*"], terminating=True)
        self.repo.delegate("b", ["kb"], ["fw/*"])
        self.repo.add_target("fw/y", b"from b\n", role="b")
        self.publish([("a", "ka"), ("b", "kb")])

        proc = self.download("fw/y")
        self.assertFails(proc, "no-target", stage="download")
        self.assertRequests(TOP_FETCH + ["1.a.json"])
        self.assertMetadataFiles(TOP_FILES + ["a.json"])
        self.assertEqual(self.target_files(), [])

    def test_pre_order_depth_first(self):
        self.repo.delegate("a", ["ka"], ["apps/*"])
        self.repo.delegate("b", ["kb"], ["apps/*"])
        self.repo.delegate("c", ["kc"], ["apps/*"], from_role="a")
        self.repo.add_target("apps/t", b"in b\n", role="b")
        self.publish([("c", "kc"), ("a", "ka"), ("b", "kb")])

        proc = self.download("apps/t")
        self.assertOk(proc)
        self.assertRequests(TOP_FETCH + ["1.a.json", "1.c.json", "1.b.json"],
                            [served_name("apps/t", b"in b\n")])

    def test_star_does_not_match_a_slash(self):
        self.repo.delegate("a", ["ka"], ["*"])
        self.repo.delegate("b", ["kb"], ["sub/*"])
        self.repo.add_target("top.bin", b"top\n", role="a")
        self.repo.add_target("sub/x.bin", b"from b\n", role="b")
        self.publish([("a", "ka"), ("b", "kb")])
        # Role a also lists sub/x.bin (other bytes); it must not be asked.
        self.smuggle("a", "ka", "sub/x.bin", b"evil\n")

        proc = self.download("sub/x.bin")
        self.assertOk(proc)
        self.assertRequests(TOP_FETCH + ["1.b.json"], [served_name("sub/x.bin", b"from b\n")])
        self.assertEqual(self.read_target("sub%2Fx.bin"), b"from b\n")

        proc = self.download("top.bin")
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "1.a.json"],
                            [served_name("top.bin", b"top\n")])

    def test_question_mark_matches_one_character_but_not_a_slash(self):
        self.repo.delegate("a", ["ka"], ["fw?x.bin"])
        self.repo.delegate("b", ["kb"], ["fw/*"])
        self.repo.add_target("fw1x.bin", b"one\n", role="a")
        self.repo.add_target("fw/x.bin", b"from b\n", role="b")
        self.publish([("a", "ka"), ("b", "kb")])
        self.smuggle("a", "ka", "fw/x.bin", b"evil\n")

        proc = self.download("fw/x.bin")
        self.assertOk(proc)
        self.assertRequests(TOP_FETCH + ["1.b.json"], [served_name("fw/x.bin", b"from b\n")])

        proc = self.download("fw1x.bin")
        self.assertOk(proc)
        self.assertRequests(["2.root.json", "timestamp.json", "1.a.json"],
                            [served_name("fw1x.bin", b"one\n")])

    def test_role_not_in_snapshot_is_never_requested(self):
        self.repo.delegate("a", ["ka"], ["fw/*"])
        self.repo.add_target("fw/x", b"from a\n", role="a")
        self.publish([("a", "ka")])

        def unlist(signed):
            del signed["meta"]["a.json"]
        self.repo.edit(["1.snapshot.json", "snapshot.json"], unlist, sign_with=["snapshot"])
        self.repo.rechain()

        proc = self.download("fw/x")
        self.assertEqual(proc.returncode, 1)
        self.assertRegex(proc.stderr.splitlines()[-1],
                         r"^fota-tuf-client: download failed: (role|no-target):")
        self.assertRequests(TOP_FETCH)
        self.assertMetadataFiles(TOP_FILES)
        self.assertEqual(self.target_files(), [])

    def test_odd_role_names_are_encoded(self):
        names = [("a/b", "k1", "%s" % "a%2Fb"), ("with space", "k2", "with%20space"),
                 ("\u00fcn\u00ef", "k3", "%C3%BCn%C3%AF")]
        for i, (role, key, _) in enumerate(names):
            self.repo.delegate(role, [key], ["d%d/*" % i])
            self.repo.add_target("d%d/t" % i, b"target %d\n" % i, role=role)
        self.publish([(role, key) for role, key, _ in names])
        for i, (role, key, enc) in enumerate(names):
            self.assertTrue(self.repo.read("1.%s.json" % enc))

        proc = self.download("d0/t", "d1/t", "d2/t")
        self.assertOk(proc)
        self.assertRequests(TOP_FETCH + ["1.%s.json" % enc for _, _, enc in names],
                            [served_name("d%d/t" % i, b"target %d\n" % i) for i in range(3)])
        self.assertMetadataFiles(TOP_FILES + ["%s.json" % enc for _, _, enc in names])
        self.assertEqual(self.target_files(), ["d0%2Ft", "d1%2Ft", "d2%2Ft"])

    def test_path_hash_prefix(self):
        path = "apps/hashed"
        prefix = hashlib.sha256(path.encode()).hexdigest()[:2]
        other = "%02x" % ((int(prefix, 16) + 1) % 256)
        self.repo.fota("repo", "delegate", "--repo", self.repo.path, "--name", "miss",
                       "--key", self.repo.key("km").pub, "--path-hash-prefix", other)
        self.repo.fota("repo", "delegate", "--repo", self.repo.path, "--name", "hit",
                       "--key", self.repo.key("kh").pub, "--path-hash-prefix", prefix)
        self.repo.add_target(path, b"hashed\n", role="hit")
        self.publish([("miss", "km"), ("hit", "kh")])

        proc = self.download(path)
        self.assertOk(proc)
        self.assertRequests(TOP_FETCH + ["1.hit.json"], [served_name(path, b"hashed\n")])

    def test_delegated_role_signed_by_wrong_key(self):
        self.repo.delegate("a", ["ka"], ["fw/*"])
        self.repo.add_target("fw/x", b"from a\n", role="a")
        self.publish([("a", "ka")])
        self.repo.resign(["1.a.json", "a.json"], ["kb"])
        self.repo.rechain()

        proc = self.download("fw/x")
        self.assertFails(proc, "threshold", stage="download")
        self.assertRequests(TOP_FETCH + ["1.a.json"])
        self.assertMetadataFiles(TOP_FILES)
        self.assertEqual(self.target_files(), [])

    def smuggle(self, role, key, path, data):
        """Make role list path with data's length and hashes, validly
        signed by its key, as a compromised role key could."""
        entry = {"length": len(data), "hashes": {
            "sha256": hashlib.sha256(data).hexdigest(),
            "sha512": hashlib.sha512(data).hexdigest()}}
        self.repo.edit(["1.%s.json" % role, "%s.json" % role],
                       lambda s: s["targets"].update({path: entry}), sign_with=[key])
        self.repo.rechain()


if __name__ == "__main__":
    unittest.main()
