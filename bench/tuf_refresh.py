#!/usr/bin/python3
"""Benchmark: TUF refresh and a delegated target lookup on a large repository.

Builds, with the real `fota` CLI, a repository of 1,000 targets spread over 50
delegated roles (role-NN is trusted for "firmware/NN/*"), serves it on
127.0.0.1, and measures with fota-tuf-client:

  refresh (fresh)   a client that trusts only root v1: root probe, timestamp,
                    snapshot, top-level targets
  refresh (again)   nothing new: root probe and timestamp only
  download (50 roles) refresh, then one target from each of the 50 delegated
                    roles in one run: every role fetched, verified and stored

Each is run --runs times; the median wall time and the peak resident memory
(ru_maxrss of that process) are printed. The peer, measured in the same run on
the same files, is curl fetching the same sequence of files over one
connection without verifying anything: the ratio is the price of verification.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
import httpd  # noqa: E402


def run(argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kw)


def measure(argv):
    """Run argv under /usr/bin/time; return (seconds, peak RSS in KiB, exit status).

    /usr/bin/time forks the program from a small process, so ru_maxrss is the
    program's own; a fork from this Python process would count its pages too."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", out.name] + argv,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        fields = out.read().split()
    return dt, int(fields[-1]), proc.returncode


def build_repo(fota, work, n_roles, n_targets):
    keys = os.path.join(work, "keys")
    os.makedirs(keys)
    for k in ["root", "targets", "snapshot", "timestamp"] + [f"d{i}" for i in range(n_roles)]:
        run([fota, "key", "new", "--type", "ed25519", "--out", os.path.join(keys, k + ".key")])
    repo = os.path.join(work, "repo")
    K = lambda name: os.path.join(keys, name)  # noqa: E731
    run([fota, "repo", "init", "--repo", repo, "--root-key", K("root.key.pub"),
         "--targets-key", K("targets.key.pub"), "--snapshot-key", K("snapshot.key.pub"),
         "--timestamp-key", K("timestamp.key.pub")])
    run([fota, "repo", "sign", "root", "--repo", repo, "--key", K("root.key")])
    for i in range(n_roles):
        run([fota, "repo", "delegate", "--repo", repo, "--name", f"role-{i:02d}",
             "--key", K(f"d{i}.key.pub"), "--path", f"firmware/{i:02d}/*"])
    files = os.path.join(work, "files")
    os.makedirs(files)
    per_role = n_targets // n_roles
    picks = []
    for t in range(n_targets):
        role = min(t // per_role, n_roles - 1)
        path = os.path.join(files, f"fw-{t:04d}.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(256))
        run([fota, "repo", "add-target", path, "--repo", repo, "--role", f"role-{role:02d}",
             "--name", f"firmware/{role:02d}/fw-{t:04d}.bin",
             "--custom", '{"hardware_ids":["bench"],"version":"1.0.%d"}' % t])
        if t % per_role == per_role - 1:
            picks.append(f"firmware/{role:02d}/fw-{t:04d}.bin")
    run([fota, "repo", "sign", "targets", "--repo", repo, "--key", K("targets.key")])
    for i in range(n_roles):
        run([fota, "repo", "sign", f"role-{i:02d}", "--repo", repo, "--key", K(f"d{i}.key")])
    run([fota, "repo", "publish", "--repo", repo, "--snapshot-key", K("snapshot.key"),
         "--timestamp-key", K("timestamp.key")])
    return repo, picks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "bin"))
    ap.add_argument("--roles", type=int, default=50)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    fota = os.path.join(args.bin, "fota")
    client = os.path.join(args.bin, "fota-tuf-client")

    work = tempfile.mkdtemp(prefix="fota-bench-")
    server = None
    try:
        t0 = time.perf_counter()
        repo, picks = build_repo(fota, work, args.roles, args.targets)
        print(f"repository: {args.targets} targets in {args.roles} delegated roles, "
              f"built with fota in {time.perf_counter() - t0:.1f} s")
        meta_bytes = sum(os.path.getsize(os.path.join(repo, "metadata", f))
                         for f in os.listdir(os.path.join(repo, "metadata")) if f[0].isdigit() and "root" not in f)
        print(f"versioned snapshot/targets metadata: {meta_bytes} bytes")

        server = httpd.FileServer(repo)
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        murl = base + "/metadata"

        results = {}

        def fresh_dir():
            d = tempfile.mkdtemp(dir=work)
            os.makedirs(os.path.join(d, "t"))
            run([client, "--metadata-dir", d, "init", os.path.join(repo, "metadata", "1.root.json")])
            return d

        def bench(name, prepare, argv_of):
            times, rss = [], []
            for _ in range(args.runs):
                d = prepare()
                dt, kib, rc = measure(argv_of(d))
                if rc != 0:
                    raise SystemExit(f"bench: {name} failed (exit {rc})")
                times.append(dt)
                rss.append(kib)
            results[name] = (statistics.median(times), max(rss))

        # What the process costs before it does any TUF work (libraries loaded).
        bench("baseline: client --help", lambda: None, lambda d: [client, "--help"])
        bench("refresh (fresh)", fresh_dir,
              lambda d: [client, "--metadata-dir", d, "--metadata-url", murl, "refresh"])

        def refreshed():
            d = fresh_dir()
            run([client, "--metadata-dir", d, "--metadata-url", murl, "refresh"])
            return d
        bench("refresh (again)", refreshed,
              lambda d: [client, "--metadata-dir", d, "--metadata-url", murl, "refresh"])
        names = []
        for p in picks:
            names += ["--target-name", p]

        def download_argv(d):
            return [client, "--metadata-dir", d, "--metadata-url", murl] + names + [
                "--target-base-url", base + "/targets", "--target-dir", os.path.join(d, "t"), "download"]
        bench("download (50 roles)", fresh_dir, download_argv)

        # The peer: curl fetching the files the download fetched, in one process, one connection.
        server.clear_requests()
        run(download_argv(fresh_dir()))
        paths = server.requests()
        print(f"the 50-role download made {len(paths)} requests")
        curl = ["curl", "-s"]
        for p in paths:
            curl += ["-o", "/dev/null", base + p]
        bench("peer: curl, same requests", lambda: None, lambda d: curl)

        print(f"{'operation':28} {'median ms':>10} {'peak RSS KiB':>13}")
        for name, (t, kib) in results.items():
            print(f"{name:28} {t * 1000:10.1f} {kib:13d}")
        deep, peer = results["download (50 roles)"], results["peer: curl, same requests"]
        print(f"ratio 50-role download / curl: time {deep[0] / peer[0]:.2f}x, memory {deep[1] / peer[1]:.2f}x")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
