# SPDX-License-Identifier: Apache-2.0
"""What every fota-tuf-client test needs: a scratch folder, a served
repository, the client run as a subprocess, and assertions on what it asked
for and what it left behind.

Each test reads as: build a repository (repo.py), tamper with what is served,
run the client, then check
  - the exit status (exactly 0 or 1),
  - the reason name in the client's final error line,
  - the exact list of requests it made, in order,
  - the files in the metadata dir (names and, where it matters, bytes) and
    in the target dir.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "support"))

from httpd import FileServer, Override  # noqa: E402

BIN_DIR = os.environ.get("FOTA_BIN_DIR") or os.path.join(SOURCE_DIR, "build", "bin")
CLIENT = os.path.join(BIN_DIR, "fota-tuf-client")
FOTA = os.path.join(BIN_DIR, "fota")

__all__ = ["ClientTestCase", "Override", "CLIENT", "FOTA", "BIN_DIR", "clean_env"]


def clean_env():
    """The environment for the programs: no proxy may intercept 127.0.0.1."""
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del env[k]
    return env


class ClientTestCase(unittest.TestCase):
    """A scratch folder with:
         serve/          the HTTP server's root (repositories live here)
         client/metadata the client's --metadata-dir
         client/targets  the client's --target-dir
    and a FileServer on a free port of 127.0.0.1."""

    maxDiff = None

    def setUp(self):
        if not os.access(CLIENT, os.X_OK):
            self.fail("%s is not built (set FOTA_BIN_DIR or run make)" % CLIENT)
        self.tmp = tempfile.mkdtemp(prefix="fota-tuf-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.serve_dir = os.path.join(self.tmp, "serve")
        self.metadata_dir = os.path.join(self.tmp, "client", "metadata")
        self.target_dir = os.path.join(self.tmp, "client", "targets")
        os.makedirs(self.serve_dir)
        os.makedirs(self.metadata_dir)
        self.server = FileServer(self.serve_dir).start()
        self.addCleanup(self.server.stop)
        # Target files a test wrote itself (exempt from the invariants).
        self.planted_targets = set()
        # Extra environment for the client (FOTA_HTTP_* tuning).
        self.client_env = {}
        # Where the repository is published, relative to the server root;
        # tests that build a repository set it (see use_repo).
        self.repo_prefix = "/repo/"

    # -- urls and files -----------------------------------------------------------

    def use_repo(self, rel):
        """The repository served lives in serve/<rel>/ (metadata/, targets/)."""
        self.repo_prefix = "/%s/" % rel.strip("/")

    @property
    def metadata_url(self):
        return self.server.url + self.repo_prefix.lstrip("/") + "metadata"

    @property
    def targets_url(self):
        return self.server.url + self.repo_prefix.lstrip("/") + "targets"

    def served(self, *parts):
        """Path of a served file, e.g. served("metadata", "timestamp.json")."""
        return os.path.join(self.serve_dir, self.repo_prefix.strip("/"), *parts)

    # -- running the client ---------------------------------------------------------

    def run_client(self, *args, verbose=True):
        cmd = [CLIENT] + (["-v"] if verbose else []) + list(args)
        env = clean_env()
        env.update(self.client_env)
        before = self.metadata_bytes() if os.path.isdir(self.metadata_dir) else {}
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=120)
        self.check_invariants(before, " ".join(args))
        proc.stdout = proc.stdout.decode("utf-8", "replace")
        proc.stderr = proc.stderr.decode("utf-8", "replace")
        self.last = proc
        if os.environ.get("FOTA_TEST_VERBOSE"):
            sys.stderr.write("\n$ %s\n-> exit %d\n%s" % (" ".join(cmd), proc.returncode,
                                                       proc.stderr))
            sys.stderr.write("requests: %r\n" % (self.server.requests(),))
        return proc

    def init_client(self, root_path=None):
        root_path = root_path or self.served("metadata", "1.root.json")
        proc = self.run_client("--metadata-dir", self.metadata_dir, "init", root_path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.server.clear_requests()
        return proc

    def refresh(self, verbose=True):
        self.server.clear_requests()
        return self.run_client("--metadata-dir", self.metadata_dir,
                               "--metadata-url", self.metadata_url, "refresh",
                               verbose=verbose)

    def download(self, *names, verbose=True):
        self.server.clear_requests()
        args = ["--metadata-dir", self.metadata_dir, "--metadata-url", self.metadata_url]
        for n in names:
            args += ["--target-name", n]
        args += ["--target-base-url", self.targets_url, "--target-dir", self.target_dir,
                 "download"]
        return self.run_client(*args, verbose=verbose)

    # -- invariants checked after every run --------------------------------------------

    def _served_bytes(self, kind):
        out = set()
        for top in os.listdir(self.serve_dir):
            base = os.path.join(self.serve_dir, top, kind)
            for dirpath, _, files in os.walk(base):
                for f in files:
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        out.add(fh.read())
        return out

    def check_invariants(self, before, what):
        """Whatever the run did: no temp file is left, the metadata dir holds
        only .json files, and each file that changed holds bytes the
        repository serves (a verified file, never a mix or a tampered
        override); each target holds the bytes of a served target."""
        if os.path.isdir(self.metadata_dir):
            served = None
            for name, data in self.metadata_bytes().items():
                self.assertTrue(name.endswith(".json"), "%s: stray %s" % (what, name))
                self.assertFalse(name.startswith(".fota+tmp."), "%s: temp %s" % (what, name))
                if before.get(name) == data:
                    continue
                if served is None:
                    served = self._served_bytes("metadata")
                self.assertIn(data, served, "%s: %s holds bytes nobody served" % (what, name))
        if os.path.isdir(self.target_dir):
            served = None
            for name in os.listdir(self.target_dir):
                self.assertFalse(name.startswith(".fota+tmp."), "%s: temp %s" % (what, name))
                if served is None:
                    served = self._served_bytes("targets")
                with open(os.path.join(self.target_dir, name), "rb") as f:
                    data = f.read()
                if name in self.planted_targets:
                    continue
                self.assertIn(data, served, "%s: target %s is not a served file" % (what, name))

    # -- assertions -------------------------------------------------------------------

    def assertOk(self, proc):
        self.assertEqual(proc.returncode, 0, "expected success\nstderr:\n" + proc.stderr)

    def assertFails(self, proc, reason, stage="refresh"):
        """Exit status exactly 1 and a final line naming the reason."""
        self.assertEqual(proc.returncode, 1, "expected failure\nstderr:\n" + proc.stderr)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        self.assertTrue(lines, "no message on stderr")
        prefix = "fota-tuf-client: %s failed: %s:" % (stage, reason)
        self.assertTrue(lines[-1].startswith(prefix),
                        "last stderr line should start with %r\nstderr:\n%s"
                        % (prefix, proc.stderr))
        self.assertEqual(proc.stdout, "")

    def requests(self):
        """Requests made, as paths relative to the repository ("metadata/2.root.json")."""
        return self.server.requests(self.repo_prefix)

    def assertRequests(self, expected_metadata, expected_targets=()):
        want = ["metadata/" + n for n in expected_metadata] + \
               ["targets/" + n for n in expected_targets]
        got = self.requests()
        # Metadata and target requests interleave only in a known way
        # (all metadata of the refresh first): compare each kind in order.
        self.assertEqual([r for r in got if r.startswith("metadata/")],
                         [w for w in want if w.startswith("metadata/")], "metadata requests")
        self.assertEqual([r for r in got if r.startswith("targets/")],
                         [w for w in want if w.startswith("targets/")], "target requests")
        self.assertEqual(len(got), len(want), "requests: %r" % (got,))

    def metadata_files(self):
        return sorted(os.listdir(self.metadata_dir))

    def metadata_bytes(self):
        out = {}
        for name in os.listdir(self.metadata_dir):
            with open(os.path.join(self.metadata_dir, name), "rb") as f:
                out[name] = f.read()
        return out

    def assertMetadataFiles(self, names):
        self.assertEqual(self.metadata_files(), sorted(names))

    def assertStoredAsServed(self, local_name, served_name):
        """The client stored exactly the bytes the server served."""
        with open(os.path.join(self.metadata_dir, local_name), "rb") as f:
            got = f.read()
        with open(self.served("metadata", served_name), "rb") as f:
            want = f.read()
        self.assertEqual(got, want, "%s differs from served %s" % (local_name, served_name))

    def target_files(self):
        if not os.path.isdir(self.target_dir):
            return []
        return sorted(os.listdir(self.target_dir))
