# SPDX-License-Identifier: Apache-2.0
"""The attack suite's fixture (tests/attacks/, docs/security.md).

A real fota-server with its TUF repository and firmware releases
(tests/agent/agentlib.py), a man in the middle in front of it that can
serve anything (tests/support/mitm.py, mode "rogue": our own metadata
files, target bytes and device-protocol answers), the keys an attacker may
have stolen (the server's online keys, one of several offline keys) or made
up, and real devices: fota-agent --once over a flash file that fota-boot
boots.

Every attack test asserts three things (AttackCase):
  1. the device refuses with the expected reason: `fota-agent --once --json`
     exits 13 (refused) with that reason, and its log says
     "refused reason=<reason>" (attack());
  2. it keeps running a verified image: `fota-agent --status --json` shows
     the same running version, confirmed, nothing pending or half
     downloaded, the same security counter; `fota-boot --status --json`
     agrees and the running slot verifies; the bootloader's decision
     (`fota-boot --json`) boots that slot, confirmed (assertVerified());
  3. the server learns of it once it is reachable again: the proxy passes
     everything, one more cycle runs, and the device's history (operator
     API) holds a "failed" report with that reason, newer than the attack
     (assertServerLearns()).

Run a file: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_substitution
"""

import binascii
import json
import os
import struct
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "agent"))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

from agentlib import EXIT, FOTA_BIN, SECTOR, AgentEnv, run, sha256  # noqa: E402,F401
from devclient import canonical, iso, keyid_of  # noqa: E402,F401
from mitm import Mitm  # noqa: E402

META = "/repo/metadata/"
DAY = 24 * 3600


# ---- keys and metadata an attacker signs ---------------------------------------

class Key:
    """An Ed25519 key (PEM private key as `fota key new` writes it, made when
    missing): keyid, the TUF key object, signatures over canonical JSON
    (python3-cryptography, not fota code)."""

    def __init__(self, path):
        from cryptography.hazmat.primitives import serialization
        if not os.path.exists(path):
            run([FOTA_BIN, "key", "new", "--type", "ed25519", "--out", path])
        self.path = path
        self.pub = path + ".pub"
        with open(path, "rb") as f:
            self._priv = serialization.load_pem_private_key(f.read(), password=None)
        raw = self._priv.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
        self.obj = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": raw.hex()}}
        self.keyid = keyid_of(self.obj)

    def signature(self, signed):
        return {"keyid": self.keyid, "sig": self._priv.sign(canonical(signed)).hex()}


def sign(signed, keys):
    """The canonical bytes of a TUF envelope of signed, signed by keys."""
    return canonical({"signatures": [k.signature(signed) for k in keys], "signed": signed})


def meta_of(data):
    """A METAFILES entry for metadata bytes: version, length, sha256."""
    return {"version": json.loads(data)["signed"]["version"], "length": len(data),
            "hashes": {"sha256": sha256(data)}}


# ---- the flash, written by hand ---------------------------------------------------

STATE_MAGIC = 0x54534246          # "FBST", docs/boot.md
STATE_FMT = "<IIBBBBI12s"         # magic seq active pending attempts trial counter reserved


def state_decode(raw):
    """A boot-state copy (docs/boot.md), or None when it is not valid."""
    magic, seq, active, pending, attempts, trial, counter, reserved = \
        struct.unpack(STATE_FMT, raw[:28])
    crc, = struct.unpack("<I", raw[28:32])
    if magic != STATE_MAGIC or binascii.crc32(raw[:28]) != crc or reserved != bytes(12) or \
            active > 1 or pending > 1 or trial > 1 or (trial and not pending):
        return None
    return {"seq": seq, "active": active, "pending": pending, "attempts_left": attempts,
            "trial": trial, "security_counter": counter}


def state_encode(st):
    body = struct.pack(STATE_FMT, STATE_MAGIC, st["seq"], st["active"], st["pending"],
                       st["attempts_left"], st["trial"], st["security_counter"], bytes(12))
    return body + struct.pack("<I", binascii.crc32(body))


class RawFlash:
    """The flash file of a device as an attacker with physical access sees
    it: fota-boot's default layout (state copies in sectors 0 and 1, slot A
    from sector 2, slot B after it, slot size (size - 2 sectors) / 2 rounded
    down to a sector), erased bytes 0xff."""

    def __init__(self, path, sector=SECTOR):
        self.path = path
        self.sector = sector
        size = os.path.getsize(path)
        self.slot_size = ((size - 2 * sector) // 2) // sector * sector
        self.slot_off = [2 * sector, 2 * sector + self.slot_size]

    def _rw(self, off, data=None, n=0):
        with open(self.path, "r+b") as f:
            f.seek(off)
            if data is None:
                return f.read(n)
            f.write(data)
            return None

    def state(self):
        """(copy index, state) of the current boot state."""
        copies = [state_decode(self._rw(i * self.sector, n=32)) for i in (0, 1)]
        best = None
        for i, st in enumerate(copies):
            if st is not None and (best is None or st["seq"] > copies[best]["seq"]):
                best = i
        return best, copies[best] if best is not None else None

    def store_state(self, **changes):
        """Write the next state record (seq + 1) into the other copy, as the
        boot logic does: erase its sector, write the record."""
        idx, st = self.state()
        st = dict(st)
        st.update(changes)
        st["seq"] += 1
        other = 0 if idx is None else 1 - idx
        self._rw(other * self.sector, b"\xff" * self.sector)
        self._rw(other * self.sector, state_encode(st))
        return st

    def write_slot(self, slot, image):
        """Erase a slot and write image bytes at its start."""
        self._rw(self.slot_off[slot], b"\xff" * self.slot_size)
        self._rw(self.slot_off[slot], image)


# ---- the environment --------------------------------------------------------------

class AttackEnv(AgentEnv):
    """AgentEnv plus the man in the middle (self.proxy, holding the
    Director's private key as a compromised server would), the repository's
    keys as Key objects (self.keys: root, targets, snapshot, timestamp,
    director) and an attacker's own key (self.evil)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.proxy = None
        self.targets_signers = None     # key files that sign targets (None: the repo's one)
        self.dummies = 0

    def start(self):
        try:
            super().start()
            self.keys = dict((role, Key(path)) for role, path in self.repo["keys"].items())
            self.keys["director"] = Key(os.path.join(self.tmp, "director.key"))
            self.evil = Key(os.path.join(self.tmp, "attacker.key"))
            self.proxy = Mitm(self.url, director_key=self.keys["director"].path).start()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        super().stop()

    def publish(self, staged):
        """AgentEnv.publish, with targets signed by every key of
        targets_signers (after a rotation to several targets keys)."""
        if not self.targets_signers:
            return super().publish(staged)
        for name, path, custom in staged:
            args = [FOTA_BIN, "repo", "add-target", path, "--repo", self.repo["repo"],
                    "--name", name]
            if custom is not None:
                args += ["--custom", json.dumps(custom)]
            run(args)
        args = [FOTA_BIN, "repo", "sign", "targets", "--repo", self.repo["repo"]]
        for k in self.targets_signers:
            args += ["--key", k]
        run(args)
        out = run([FOTA_BIN, "release", "push", "--repo", self.repo["repo"], "--server",
                   self.url, "--token-file", self.token_file(), "--json"] +
                  [p for _, p, _ in staged])
        return json.loads(out)

    def restart_server(self, **keys):
        """Stop fota-server and start it again on the same data dir (and a
        new port, which the proxy follows: devices only know the proxy),
        with other online keys: restart_server(timestamp_key=PEM)."""
        from devclient import SERVER_BIN, free_port
        srv = self.srv
        srv.stop()
        for role, path in keys.items():
            flag = "--" + role.replace("_", "-")
            srv.keys[srv.keys.index(flag) + 1] = path
        srv.port = free_port()
        srv.log = open(srv.log_path, "ab")
        srv.proc = subprocess.Popen(
            [SERVER_BIN, "serve", "--data-dir", srv.data, "--listen",
             "127.0.0.1:%d" % srv.port, "--threads", "2"] + srv.keys + srv.extra,
            stdout=srv.log, stderr=srv.log)
        deadline = time.time() + 20
        while True:
            if srv.proc.poll() is not None or time.time() > deadline:
                raise AssertionError("fota-server did not restart: %s" % srv.read_log()[-3000:])
            try:
                if srv.request("GET", "/device/v1/director-key")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        if self.proxy is not None:
            self.proxy.up_port = srv.port

    def token_file(self):
        path = os.path.join(self.tmp, "admin.token")
        with open(path, "w") as f:
            f.write(self.srv.admin + "\n")
        return path

    # ---- what the server serves ---------------------------------------------------

    def fetch(self, path):
        """The upstream's bytes for path (straight from the server)."""
        st, _, body = self.srv.request("GET", path)
        if st != 200:
            raise AssertionError("GET %s: %d" % (path, st))
        return body

    def served(self):
        """The published chain now: {"timestamp","snapshot","targets","root"}
        as (file name, bytes)."""
        ts = self.fetch(META + "timestamp.json")
        sv = json.loads(ts)["signed"]["meta"]["snapshot.json"]["version"]
        snap = self.fetch(META + "%d.snapshot.json" % sv)
        tv = json.loads(snap)["signed"]["meta"]["targets.json"]["version"]
        targets = self.fetch(META + "%d.targets.json" % tv)
        root = self.fetch(META + "root.json")
        rv = json.loads(root)["signed"]["version"]
        return {"timestamp": ("timestamp.json", ts), "snapshot": ("%d.snapshot.json" % sv, snap),
                "targets": ("%d.targets.json" % tv, targets), "root": ("%d.root.json" % rv, root)}

    def version(self, role):
        name, data = self.served()[role]
        return json.loads(data)["signed"]["version"]

    def target_info(self, name):
        """The served targets metadata's entry for a target name."""
        _, data = self.served()["targets"]
        return json.loads(data)["signed"]["targets"][name]

    def target_path(self, name):
        """/repo/targets/ path a device fetches for a target (consistent
        snapshots: the sha256 before the base name)."""
        h = self.target_info(name)["hashes"]["sha256"]
        d, _, base = name.rpartition("/")
        return "/repo/targets/%s%s.%s" % (d + "/" if d else "", h, base)

    def advance(self, past):
        """Publish small releases until the server's timestamp version is
        above `past`: a device that an attacker's timestamp (signed with the
        stolen online key) fast-forwarded accepts the server's again."""
        while self.version("timestamp") <= past:
            self.dummies += 1
            path = os.path.join(self.tmp, "dummy-%d.bin" % self.dummies)
            with open(path, "wb") as f:
                f.write(b"dummy %d\n" % self.dummies)
            self.publish([("dummy/%d.bin" % self.dummies, path, None)])

    def forge(self, edit_targets=None, targets_keys=None, snapshot_keys=None,
              timestamp_keys=None, new_snapshot=False, edit_snapshot=None,
              edit_timestamp=None):
        """An attacker's metadata on top of what the server serves now, as
        rogue `files` {path: bytes}, and the forged timestamp's version.

        edit_targets(signed): edit a copy of the served targets (its version
        raised by one), signed by targets_keys. A new snapshot (version + 1,
        naming the forged targets when there are some; edit_snapshot(signed)
        last) signed by snapshot_keys (default: the real snapshot key) when
        there are new targets, snapshot_keys, new_snapshot or edit_snapshot.
        Always a new timestamp (version + 1, naming the snapshot;
        edit_timestamp(signed) last), signed by timestamp_keys (default: the
        real timestamp key). Expiries one day out."""
        served = self.served()
        files = {}
        snap = served["snapshot"][1]
        expires = iso(time.time() + DAY)
        targets_meta = None
        if edit_targets is not None:
            t = json.loads(served["targets"][1])["signed"]
            t["version"] += 1
            t["expires"] = expires
            edit_targets(t)
            data = sign(t, targets_keys or [self.keys["targets"]])
            files[META + "%d.targets.json" % t["version"]] = data
            targets_meta = meta_of(data)
        if targets_meta or snapshot_keys or new_snapshot or edit_snapshot:
            s = json.loads(snap)["signed"]
            s["version"] += 1
            s["expires"] = expires
            if targets_meta:
                s["meta"]["targets.json"] = targets_meta
            if edit_snapshot is not None:
                edit_snapshot(s)
            snap = sign(s, snapshot_keys or [self.keys["snapshot"]])
            files[META + "%d.snapshot.json" % s["version"]] = snap
        ts = json.loads(served["timestamp"][1])["signed"]
        ts["version"] += 1
        ts["expires"] = expires
        ts["meta"]["snapshot.json"] = meta_of(snap)
        if edit_timestamp is not None:
            edit_timestamp(ts)
        files[META + "timestamp.json"] = sign(ts, timestamp_keys or [self.keys["timestamp"]])
        return files, ts["version"]


# ---- the test case ------------------------------------------------------------------

class AttackCase(unittest.TestCase):
    """One AttackEnv per class (env_args: its keyword arguments); each test
    has its own device and its own rollout, and leaves the proxy in pass."""
    maxDiff = None
    env_args = {}

    @classmethod
    def setUpClass(cls):
        cls.env = AttackEnv(**cls.env_args)
        try:
            cls.env.start()
            cls.proxy = cls.env.proxy
            cls.prepare()
        except Exception:
            cls.env.stop()
            raise

    @classmethod
    def prepare(cls):
        """More setup for the class (after the server is up)."""

    @classmethod
    def tearDownClass(cls):
        cls.env.stop()

    def setUp(self):
        self.proxy.set_mode("pass")

    def tearDown(self):
        self.proxy.set_mode("pass")

    # ---- devices ----------------------------------------------------------------------

    def ready(self, name, version=None, **config):
        """A device behind the proxy, enrolled, accepted and idle, running
        `version` (default the first one) confirmed."""
        dev = self.env.device(name, version=version, server=self.proxy.url, **config)
        self.assertEqual(dev.once(), EXIT["pending"], dev.log())
        self.env.accept(dev)
        self.assertEqual(dev.once(), EXIT["idle"], dev.log())
        return dev

    def updated(self, name, version, **config):
        """A device that updated to `version` through the server."""
        dev = self.ready(name, **config)
        self.env.rollout(version, devices=[dev])
        self.assertEqual(dev.once(), EXIT["updated"], dev.log())
        return dev

    def mark(self, dev):
        """The newest history id of the device (0: none)."""
        h = self.env.device_info(dev)["history"]
        return max([e["id"] for e in h] or [0])

    # ---- the three assertions ---------------------------------------------------------

    def attack(self, dev, reason, result="refused", where=None):
        """1. One cycle under attack: the exit status of `result` with
        `reason` in --once --json and, for a refusal, in the log line
        "refused reason=..."; `where`, when given, in its detail (which
        check refused: "image header", "5.snapshot.json", ...). Returns the
        JSON."""
        rc, out = dev.once_json()
        if os.environ.get("FOTA_ATTACK_TRACE"):
            sys.stderr.write("\n  %s: %s\n" % (self.id().rsplit(".", 1)[-1], out))
        self.assertEqual((rc, out["result"], out["reason"]), (EXIT[result], result, reason),
                         "%s\n%s" % (out, dev.log()))
        if result == "refused":
            self.assertIn("refused reason=%s" % reason, dev.log())
        if where is not None:
            self.assertIn(where, out["detail"], out)
        return out

    def assertAttacked(self, path_prefix, note):
        """The proxy did attack: a request under path_prefix was answered
        with a note containing `note`."""
        recs = [r for r in self.proxy.records(path_prefix) if note in (r["note"] or "")]
        self.assertTrue(recs, [(r["path"], r["mode"], r["note"])
                               for r in self.proxy.records(path_prefix)])
        return recs

    def assertVerified(self, dev, version, counter):
        """2. The device runs `version`, confirmed and verified: the agent's
        view, the boot state, the slot's verification and the bootloader's
        decision agree; nothing pending or half downloaded."""
        st = dev.status()
        running = st["running_slot"]
        self.assertEqual((st["running_version"], st["slots"][running]["state"], st["pending"],
                          st["security_counter"], st["download_in_progress"]),
                         (version, "confirmed", False, counter, False), st)
        boot = dev.boot_status()
        slot = "slot_a" if running == 0 else "slot_b"
        self.assertEqual((boot["state"]["active"], boot["state"]["pending"],
                          boot["state"]["trial"], boot["state"]["security_counter"],
                          boot[slot]["verify"], boot[slot]["image"]["version"].split("+")[0]),
                         ("AB"[running], False, False, counter, "ok", version), boot)
        p = subprocess.run(dev.boot_cmd("--json"), capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        decision = json.loads(p.stdout)
        self.assertEqual((decision["result"], decision["slot"], decision["reason"]),
                         ("boot", "AB"[running], "confirmed"), decision)
        self.assertEqual(decision["image"]["version"].split("+")[0], version)
        return st

    def assertServerLearns(self, dev, reason, since, after=("idle",), version=None):
        """3. With the path clean again, one more cycle (ending in one of
        `after`); the device's history then holds a "failed" report with
        `reason`, newer than `since` (a mark()). Returns the new entries."""
        self.proxy.set_mode("pass")
        rc = dev.once()
        self.assertIn(rc, [EXIT[a] for a in after], dev.log())
        info = self.env.device_info(dev)
        new = [(e["event"], e.get("reason")) for e in reversed(info["history"])
               if e["id"] > since]
        self.assertIn(("failed", reason), new, new)
        if version is not None:
            self.assertEqual(info["version"], version)
        return new
