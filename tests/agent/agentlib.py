# SPDX-License-Identifier: Apache-2.0
"""Test fixture for fota-agent: a real fota-server on 127.0.0.1 with a TUF
repository (offline keys made with `fota`), the Director key set published as
the TUF target fota/director.json, signed firmware images published as
releases, and simulated devices (a flash file provisioned with `fota-boot`)
driven by `fota-agent --once`.

    env = AgentEnv(tmpdir).start()            # server + repo + images 1.0.0, 1.1.0
    dev = env.device("d1")                    # flash with 1.0.0 confirmed, agent config
    rc = dev.once()                           # 11: enrolled, pending
    env.accept(dev); dev.once()               # 0: idle
    env.rollout("1.1.0", devices=[dev])       # rollout id
    rc = dev.once()                           # 10: updated
    dev.status()                              # fota-agent --status --json, parsed
    env.history(dev)                          # [(event, reason), ...] oldest first
    env.stop()

Used by tests/agent/test_agent.py and free for any test (fault injection,
attacks, fleets). Environment: FOTA_BIN_DIR (default build/bin). Python:
/usr/bin/python3 (python3-cryptography, python3-securesystemslib).
"""

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.path.abspath(os.environ.get("FOTA_BIN_DIR") or
                          os.path.join(HERE, "..", "..", "build", "bin"))
# devclient.py reads these when it is imported.
os.environ.setdefault("FOTA_SERVER_BIN", os.path.join(BIN_DIR, "fota-server"))
os.environ.setdefault("FOTA_BIN", os.path.join(BIN_DIR, "fota"))
sys.path.insert(0, os.path.join(HERE, "..", "server"))

from devclient import Server, make_repo, release_id, run  # noqa: E402

AGENT_BIN = os.path.join(BIN_DIR, "fota-agent")
BOOT_BIN = os.path.join(BIN_DIR, "fota-boot")
FOTA_BIN = os.environ["FOTA_BIN"]
SERVER_BIN = os.environ["FOTA_SERVER_BIN"]

SECTOR = 4096

# fota-agent --once exit statuses (docs/agent.md)
EXIT = {"idle": 0, "updated": 10, "pending": 11, "rolled-back": 12, "refused": 13,
        "error": 14, "rejected": 15, "rebooting": 16, "local": 1, "usage": 2}


def clean_env(**extra):
    """The environment for programs under test: no proxies (the server is on
    loopback), plus extra."""
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del env[k]
    env.update(extra)
    return env


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class AgentEnv:
    """A fota-server with a repository, the Director key set and firmware
    releases for one or more hardware ids.

    versions: [(version, security_counter)] signed and published for every
    hardware id in hardware_ids. timestamp_expiry / timestamp_renew_before
    (server durations such as "20s") make short-lived timestamps for
    freshness tests. server_extra: more fota-server flags.
    """

    def __init__(self, tmp=None, hardware_ids=("board-a",),
                 versions=(("1.0.0", 1), ("1.1.0", 2)), image_size=64 * 1024,
                 timestamp_expiry=None, timestamp_renew_before=None, server_extra=()):
        self.own_tmp = tmp is None
        self.tmp = tmp or tempfile.mkdtemp(prefix="fota-agent-")
        self.hardware_ids = list(hardware_ids)
        self.versions = list(versions)
        self.image_size = image_size
        extra = list(server_extra)
        if timestamp_expiry is not None:
            extra += ["--timestamp-expiry", timestamp_expiry]
        if timestamp_renew_before is not None:
            extra += ["--timestamp-renew-before", timestamp_renew_before]
        self.server_extra = extra
        self.repo = None
        self.srv = None
        self.fw_key = os.path.join(self.tmp, "firmware.key")
        self.images = {}          # (hardware_id, version) -> image path
        self.targets = {}         # (hardware_id, version) -> target name
        self.releases = {}        # (hardware_id, version) -> release id
        self.devices = []

    # ---- setup ----------------------------------------------------------------

    def start(self):
        for b in (AGENT_BIN, BOOT_BIN, FOTA_BIN, SERVER_BIN):
            if not os.access(b, os.X_OK):
                raise AssertionError("%s is not built" % b)
        self.repo = make_repo(self.tmp)
        self.srv = Server(self.tmp, self.repo, extra=self.server_extra).start()
        run([FOTA_BIN, "key", "new", "--type", "ed25519", "--out", self.fw_key])
        staged = [self.director_target()]
        for hw in self.hardware_ids:
            for version, counter in self.versions:
                staged.append(self.make_image(hw, version, counter))
        self.publish(staged)
        return self

    def director_target(self):
        """fota/director.json: the Director's public key set, exactly what
        GET /device/v1/director-key answers (the shape devices expect)."""
        st, _, body = self.srv.request("GET", "/device/v1/director-key")
        if st != 200:
            raise AssertionError("director-key: %d %s" % (st, body))
        keys = json.loads(body)
        assert list(keys["keys"]) == [self.srv.director_keyid], keys
        path = os.path.join(self.tmp, "director.json")
        with open(path, "wb") as f:
            f.write(body)
        return ("fota/director.json", path, None)

    def make_image(self, hardware_id, version, counter, key=None, payload=None, name=None):
        """Sign firmware (`fota image sign`); returns a staging entry
        (target name, image path, custom) for publish()."""
        tag = "%s-%s" % (hardware_id, version)
        payload_path = os.path.join(self.tmp, "payload-" + tag)
        if payload is None:
            payload = (("%s %s\n" % (hardware_id, version)).encode() * 8 +
                       os.urandom(self.image_size))[:self.image_size]
        with open(payload_path, "wb") as f:
            f.write(payload)
        image = os.path.join(self.tmp, "fw-%s.img" % tag)
        if os.path.exists(image):
            os.unlink(image)
        run([FOTA_BIN, "image", "sign", payload_path, image, "--key", key or self.fw_key,
             "--version", version, "--security-counter", str(counter), "--hardware",
             hardware_id])
        name = name or "fw/%s/fw-%s.img" % (hardware_id, version)
        self.images[(hardware_id, version)] = image
        self.targets[(hardware_id, version)] = name
        with open(image, "rb") as f:
            self.releases[(hardware_id, version)] = release_id(name, f.read())
        custom = {"hardware_ids": [hardware_id], "version": version,
                  "security_counter": counter}
        return (name, image, custom)

    def publish(self, staged):
        """Add [(name, path, custom or None)] to the offline repository, sign
        targets with the offline key, and publish through the server with
        `fota release push --repo` (image uploads, then the signed targets;
        the repository records what was published, so that the next edit
        stages the next version)."""
        for name, path, custom in staged:
            args = [FOTA_BIN, "repo", "add-target", path, "--repo", self.repo["repo"],
                    "--name", name]
            if custom is not None:
                args += ["--custom", json.dumps(custom)]
            run(args)
        run([FOTA_BIN, "repo", "sign", "targets", "--repo", self.repo["repo"], "--key",
             self.repo["keys"]["targets"]])
        token = os.path.join(self.tmp, "admin.token")
        with open(token, "w") as f:
            f.write(self.srv.admin + "\n")
        out = run([FOTA_BIN, "release", "push", "--repo", self.repo["repo"], "--server",
                   self.url, "--token-file", token, "--json"] + [p for _, p, _ in staged])
        return json.loads(out)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.srv.port

    @property
    def tuf_root(self):
        return os.path.join(self.repo["repo"], "metadata", "1.root.json")

    def stop(self):
        if self.srv is not None:
            self.srv.stop()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- devices ----------------------------------------------------------------

    def device(self, name, hardware_id=None, version=None, **config):
        """A device provisioned with `version` (default: the first one)
        confirmed, and an agent config; config overrides agent keys
        (health_cmd="false", poll_interval=..., image_key=[...], ...)."""
        hw = hardware_id or self.hardware_ids[0]
        version = version or self.versions[0][0]
        dev = AgentDevice(self, os.path.join(self.tmp, "dev-" + name), hw)
        dev.provision(self.images[(hw, version)])
        dev.write_config(**config)
        self.devices.append(dev)
        return dev

    def accept(self, dev):
        st, v, _ = self.srv.api("POST", "/api/v1/devices/%s/accept" % dev.id)
        if st != 200:
            raise AssertionError("accept: %d %s" % (st, v))
        return v

    def device_info(self, dev, history_limit=200):
        st, v, _ = self.srv.api("GET", "/api/v1/devices/%s?history_limit=%d" %
                                (dev.id, history_limit))
        if st != 200:
            raise AssertionError("device %s: %d %s" % (dev.id, st, v))
        return v

    def history(self, dev):
        """[(event, reason)] of the device's history, oldest first."""
        return [(h["event"], h.get("reason")) for h in
                reversed(self.device_info(dev)["history"])]

    def rollout(self, version, devices=None, hardware_id=None, waves=(100,),
                success_threshold=1.0, failure_limit=1.0):
        """Create a rollout of (hardware_id, version) to the listed devices
        (default: every accepted device of that hardware id). Returns its id."""
        hw = hardware_id or self.hardware_ids[0]
        group = ({"devices": [d.id for d in devices]} if devices is not None
                 else {"hardware_id": hw})
        body = {"release": self.releases[(hw, version)], "group": group,
                "waves": list(waves), "success_threshold": success_threshold,
                "failure_limit": failure_limit}
        st, v, _ = self.srv.api("POST", "/api/v1/rollouts", body=body)
        if st != 201:
            raise AssertionError("rollout create: %d %s" % (st, v))
        return v["id"]

    def rollout_show(self, rollout_id):
        st, v, _ = self.srv.api("GET", "/api/v1/rollouts/%s" % rollout_id)
        if st != 200:
            raise AssertionError("rollout %s: %d %s" % (rollout_id, st, v))
        return v


class AgentDevice:
    """One simulated device: a flash file (fota-boot), a data dir and an
    agent config file; fota-agent runs with --config."""

    def __init__(self, env, root, hardware_id):
        self.env = env
        self.root = root
        self.hardware_id = hardware_id
        os.makedirs(root, exist_ok=True)
        self.flash = os.path.join(root, "flash.bin")
        self.data = os.path.join(root, "data")
        self.conf = os.path.join(root, "agent.conf")
        self.config = {}
        self._id = None

    def boot_cmd(self, *args):
        return [BOOT_BIN, "--flash", self.flash, "--key", self.env.fw_key + ".pub",
                "--hardware", self.hardware_id] + list(args)

    def provision(self, image):
        """Factory: erase the flash, install the image, boot it on trial,
        confirm it."""
        size = os.path.getsize(image)
        slot = ((2 * size + 8192 + SECTOR - 1) // SECTOR) * SECTOR
        run([BOOT_BIN, "--flash", self.flash, "--create", str(2 * SECTOR + 2 * slot)])
        run(self.boot_cmd("--install", image))
        run(self.boot_cmd())
        run(self.boot_cmd("--confirm"))

    def write_config(self, **overrides):
        cfg = {
            "server": self.env.url,
            "data_dir": self.data,
            "flash": self.flash,
            "hardware_id": self.hardware_id,
            "image_key": [self.env.fw_key + ".pub"],
            "tuf_root": self.env.tuf_root,
            "poll_interval": "2",
            "reboot_cmd": " ".join(shlex.quote(a) for a in self.boot_cmd()),
            "log_level": "debug",
            "connect_timeout": "5",
            "low_speed_limit": "1024",
            "low_speed_time": "10",
        }
        cfg.update(self.config)
        cfg.update(overrides)
        self.config = cfg
        lines = ["# written by tests/agent/agentlib.py"]
        for k, v in cfg.items():
            if v is None:
                continue
            for item in (v if isinstance(v, list) else [v]):
                lines.append('%s = "%s"' % (k, item) if " " in str(item) else
                             "%s = %s" % (k, item))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def agent(self, *args, timeout=120, env=None):
        """Run fota-agent --config <conf> ARGS; the CompletedProcess."""
        p = subprocess.run([AGENT_BIN, "--config", self.conf] + list(args),
                           capture_output=True, text=True, timeout=timeout,
                           env=clean_env(**(env or {})))
        # Under ASan/UBSan (make check's second pass) a report is a failure
        # whatever the exit status says.
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in p.stderr:
                raise AssertionError("fota-agent %s: %s\n%s" % (" ".join(args), marker,
                                                                 p.stderr[-8000:]))
        return p

    def once(self, *args, **kw):
        """One cycle: the exit status (stderr kept in self.last)."""
        self.last = self.agent("--once", *args, **kw)
        return self.last.returncode

    def once_json(self, *args, **kw):
        """One cycle with --json: (exit status, {"result","reason",...})."""
        p = self.agent("--once", "--json", *args, **kw)
        self.last = p
        try:
            return p.returncode, json.loads(p.stdout)
        except ValueError:
            raise AssertionError("fota-agent --once --json: %d\n%s%s" %
                                 (p.returncode, p.stdout, p.stderr))

    def status(self):
        p = self.agent("--status", "--json")
        if p.returncode != 0:
            raise AssertionError("fota-agent --status: %d\n%s" % (p.returncode, p.stderr))
        return json.loads(p.stdout)

    @property
    def id(self):
        if self._id is None:
            self._id = self.status()["device_id"]
        return self._id

    def boot_status(self):
        p = subprocess.run(self.boot_cmd("--status", "--json"), capture_output=True,
                           text=True, timeout=60)
        return json.loads(p.stdout)

    def log(self):
        """stderr of the last run."""
        return self.last.stderr if getattr(self, "last", None) else ""
