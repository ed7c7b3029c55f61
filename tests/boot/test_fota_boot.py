# SPDX-License-Identifier: Apache-2.0
"""fota-boot end to end (docs/boot.md): the real programs over a flash file.

Keys come from `fota key new`, images from `fota image sign`, and the device
is driven with `fota-boot` (create, install, power-on, confirm, rollback,
status). Every case asserts the exit status, the slot booted and the reason
printed, and the boot state as it stands in the flash file's bytes, decoded
here with struct and zlib.crc32 rather than through fota-boot. The one case
that needs a state fota-boot cannot make (an image placed straight into the
inactive slot and marked pending without an install) writes the record
itself, encoded here the same independent way.

Run: FOTA_BIN_DIR=build/bin /usr/bin/python3 -m unittest -v test_fota_boot
"""

import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("FOTA_BIN_DIR") or os.path.join(HERE, "..", "..", "build", "bin")
FOTA = os.path.join(BIN, "fota")
FOTA_BOOT = os.path.join(BIN, "fota-boot")

HW = "acme-board.r1"
# The device: 64 KiB of flash, 4 KiB sectors. fota_flash_default_layout:
# state copy 0 = sector 0, copy 1 = sector 1, slot A from sector 2, slot B
# right after; each slot (64K - 2 sectors) / 2 rounded down to a sector.
FLASH_SIZE = 64 * 1024
SECTOR = 4096
SLOT_SIZE = (FLASH_SIZE - 2 * SECTOR) // 2 // SECTOR * SECTOR
STATE_OFF = (0, SECTOR)
SLOT_OFF = (2 * SECTOR, 2 * SECTOR + SLOT_SIZE)

# The boot-state record (include/fota/boot.h, FROZEN).
STATE_MAGIC = 0x54534246
STATE_FMT = "<IIBBBBI12sI"
STATE_LEN = 32
# Image header (include/fota/image.h): payload_len at 28, counter at 12.
IMAGE_HEADER_LEN = 64


def lcg_bytes(n, seed):
    x, out = seed, bytearray()
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append(x >> 24)
    return bytes(out)


def decode_record(raw):
    """One state copy as a dict, or None when it is not a valid record."""
    (magic, seq, active, pending, attempts, trial, counter, reserved,
     crc) = struct.unpack(STATE_FMT, raw[:STATE_LEN])
    if magic != STATE_MAGIC or crc != zlib.crc32(raw[:28]) or reserved != bytes(12):
        return None
    if active > 1 or pending > 1 or trial > 1 or (trial and not pending):
        return None
    return dict(seq=seq, active=active, pending=pending, attempts_left=attempts,
                trial=trial, security_counter=counter)


def encode_record(seq, active, pending, attempts_left, trial, counter):
    body = struct.pack("<IIBBBBI12s", STATE_MAGIC, seq, active, pending, attempts_left,
                       trial, counter, bytes(12))
    return body + struct.pack("<I", zlib.crc32(body))


class FotaBootTest(unittest.TestCase):
    """Each test has its own flash file; keys and images are made once."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="fota-boot-test-")
        cls.key, cls.pub = cls.make_key("device")
        cls.key2, cls.pub2 = cls.make_key("second", "ecdsa")
        cls.foreign, _ = cls.make_key("foreign")
        cls.images = {}
        cls.make_image("v1.0.0", "1.0.0", 1, seed=1)
        cls.make_image("v1.0.1", "1.0.1", 1, seed=2)
        cls.make_image("v1.1.0", "1.1.0+7", 2, seed=3)
        cls.make_image("v0.9.0", "0.9.0", 0, seed=4)
        cls.make_image("foreign", "1.2.0", 3, seed=5, keys=[cls.foreign])
        cls.make_image("other-hw", "1.2.0", 3, seed=6, hw="other-board")
        cls.make_image("two-keys", "1.3.0", 3, seed=7, keys=[cls.key, cls.key2])
        whole = cls.image_bytes("v1.1.0")
        cls.images["truncated"] = os.path.join(cls.dir, "truncated.img")
        with open(cls.images["truncated"], "wb") as f:
            f.write(whole[:len(whole) - 40])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def fota(cls, *args):
        p = subprocess.run([FOTA] + list(args), capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError("fota %s: exit %d\n%s%s" % (" ".join(args), p.returncode,
                                                             p.stdout, p.stderr))
        return p

    @classmethod
    def make_key(cls, name, kind="ed25519"):
        out = os.path.join(cls.dir, name + ".key")
        cls.fota("key", "new", "--type", kind, "--out", out)
        return out, out + ".pub"

    @classmethod
    def make_image(cls, name, version, counter, seed, keys=None, hw=HW):
        payload = os.path.join(cls.dir, name + ".payload")
        with open(payload, "wb") as f:
            f.write(lcg_bytes(9000 + seed * 101, seed))
        out = os.path.join(cls.dir, name + ".img")
        args = ["image", "sign", payload, out, "--version", version,
                "--security-counter", str(counter), "--hardware", hw]
        for k in keys or [cls.key]:
            args += ["--key", k]
        cls.fota(*args)
        cls.images[name] = out

    @classmethod
    def image_bytes(cls, name):
        with open(cls.images[name], "rb") as f:
            return f.read()

    def setUp(self):
        self.flash = os.path.join(self.dir, self.id().rsplit(".", 1)[-1] + ".flash")
        self.boot("--create", "64K", trust=False)

    def tearDown(self):
        if os.path.exists(self.flash):
            os.unlink(self.flash)

    # -- driving the device ---------------------------------------------------

    def boot(self, *args, code=0, trust=True, keys=None):
        """Run fota-boot on this test's flash; check the exit status."""
        argv = [FOTA_BOOT, "--flash", self.flash]
        if trust:
            for k in keys or [self.pub]:
                argv += ["--key", k]
            argv += ["--hardware", HW]
        p = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=120)
        if code is not None and p.returncode != code:
            self.fail("fota-boot %s: exit %d, wanted %d\nstdout: %s\nstderr: %s" % (
                " ".join(args), p.returncode, code, p.stdout, p.stderr))
        return p

    def power_on(self, code=0, **kw):
        return self.boot(code=code, **kw).stdout

    def power_on_json(self, code=0, **kw):
        return json.loads(self.boot("--json", code=code, **kw).stdout)

    def install(self, name, code=0, **kw):
        return self.boot("--install", self.images[name], code=code, **kw).stdout

    def confirm(self, code=0):
        return self.boot("--confirm", code=code).stdout

    def rollback(self, code=0):
        return self.boot("--rollback", code=code).stdout

    def status_json(self):
        return json.loads(self.boot("--status", "--json", trust=False).stdout)

    # -- the flash file, read independently ------------------------------------

    def flash_bytes(self):
        with open(self.flash, "rb") as f:
            data = f.read()
        self.assertEqual(len(data), FLASH_SIZE)
        return data

    def poke(self, off, data):
        with open(self.flash, "r+b") as f:
            f.seek(off)
            f.write(data)

    def copies(self):
        data = self.flash_bytes()
        return [decode_record(data[o:o + STATE_LEN]) for o in STATE_OFF]

    def state(self):
        """The valid copy with the higher seq; the factory state when none."""
        c = self.copies()
        valid = [x for x in c if x is not None]
        if not valid:
            return dict(seq=0, active=0, pending=0, attempts_left=0, trial=0,
                        security_counter=0)
        return max(valid, key=lambda x: x["seq"])

    def assert_state(self, **want):
        st = self.state()
        got = {k: st[k] for k in want}
        self.assertEqual(got, want, "state in the flash file: %r" % st)
        return st

    def plant_state(self, **fields):
        """Store a record as fota_boot_state_store would, bypassing fota-boot:
        the next seq, into the copy that does not hold the current state.
        Returns the seq written."""
        st = self.state()
        cur = [i for i, c in enumerate(self.copies()) if c is not None and c["seq"] == st["seq"]]
        target = 1 if cur and cur[0] == 0 else 0
        seq = st["seq"] + 1
        rec = encode_record(seq, fields["active"], fields["pending"], fields["attempts_left"],
                            fields["trial"], fields["security_counter"])
        self.poke(STATE_OFF[target], rec + b"\xff" * (SECTOR - STATE_LEN))
        return seq

    def assert_slot_holds(self, slot, name):
        img = self.image_bytes(name)
        off = SLOT_OFF[slot]
        self.assertEqual(self.flash_bytes()[off:off + len(img)], img,
                         "slot %s does not hold %s" % ("AB"[slot], name))

    def confirmed_on(self, name):
        """Install name, boot it on trial, confirm it: the slot it went to."""
        before = self.state()
        out = self.install(name)
        slot = 1 - before["active"]
        self.assertIn("into slot %s: pending" % "AB"[slot], out)
        self.assertIn("booting slot %s" % "AB"[slot], self.power_on())
        self.assertIn("confirmed slot %s" % "AB"[slot], self.confirm())
        self.assert_state(active=slot, pending=0, trial=0)
        return slot

    # -- cases -----------------------------------------------------------------

    def test_fresh_device_has_no_bootable_image(self):
        self.assertEqual(self.flash_bytes(), b"\xff" * FLASH_SIZE)
        out = self.power_on(code=1)
        self.assertIn("no bootable image", out)
        self.assertIn("slot A: parse, slot B: parse", out)
        j = self.power_on_json(code=1)
        self.assertEqual(j["result"], "no-image")
        self.assertEqual(j["error"], "no-bootable-image")
        # nothing was written: no state copy exists yet
        self.assertEqual(self.copies(), [None, None])
        self.assertEqual(j["flash"], {"writes": 0, "erases": 0})

    def test_install_trial_confirm(self):
        # The factory state says active A (empty): an install goes to the
        # inactive slot, B.
        out = self.install("v1.0.0")
        self.assertIn("installed 1.0.0+0 (security counter 1) into slot B: pending, "
                      "3 trial attempts", out)
        self.assert_slot_holds(1, "v1.0.0")
        st = self.assert_state(active=0, pending=1, attempts_left=3, trial=0,
                               security_counter=0)
        out = self.power_on()
        self.assertIn("booting slot B: 1.0.0+0, security counter 1, trial (2 attempts left)",
                      out)
        self.assert_state(seq=st["seq"] + 1, pending=1, attempts_left=2, trial=1)
        # the counter is raised only by the confirm
        self.assert_state(security_counter=0)
        self.assertIn("confirmed slot B: active, security counter 1", self.confirm())
        self.assert_state(active=1, pending=0, trial=0, attempts_left=0, security_counter=1)
        out = self.power_on()
        self.assertIn("booting slot B: 1.0.0+0, security counter 1, confirmed", out)
        # a confirmed boot writes nothing
        seq = self.state()["seq"]
        j = self.power_on_json()
        self.assertEqual((j["result"], j["slot"], j["reason"]), ("boot", "B", "confirmed"))
        self.assertEqual(j["flash"], {"writes": 0, "erases": 0})
        self.assertEqual(self.state()["seq"], seq)
        # confirm with nothing on trial: no change
        self.assertIn("nothing on trial: slot B stays active", self.confirm())
        self.assertEqual(self.state()["seq"], seq)

    def test_update_without_confirm_reverts(self):
        old = self.confirmed_on("v1.0.0")
        new = 1 - old
        self.install("v1.1.0")
        self.assert_slot_holds(new, "v1.1.0")
        for left in (2, 1, 0):
            out = self.power_on()
            self.assertIn("booting slot %s: 1.1.0+7, security counter 2, trial (%d attempt%s "
                          "left)" % ("AB"[new], left, "" if left == 1 else "s"), out)
            self.assert_state(active=old, pending=1, trial=1, attempts_left=left,
                              security_counter=1)
        out = self.power_on()
        self.assertIn("booting slot %s: 1.0.0+0, security counter 1, reverted: slot %s ran out "
                      "of trial attempts" % ("AB"[old], "AB"[new]), out)
        self.assert_state(active=old, pending=0, trial=0, attempts_left=0, security_counter=1)
        # and it stays there
        j = self.power_on_json()
        self.assertEqual((j["slot"], j["reason"]), ("AB"[old], "confirmed"))

    def test_reverted_reason_in_json(self):
        self.confirmed_on("v1.0.0")
        self.boot("--attempts", "1", "--install", self.images["v1.1.0"])
        self.assert_state(pending=1, attempts_left=1)
        j = self.power_on_json()
        self.assertEqual((j["reason"], j["state"]["attempts_left"]), ("trial", 0))
        j = self.power_on_json()
        self.assertEqual(j["reason"], "reverted-attempts")
        self.assertEqual(j["image"]["version"], "1.0.0+0")

    def test_update_confirmed(self):
        old = self.confirmed_on("v1.0.0")
        self.assertEqual(self.confirmed_on("v1.1.0"), 1 - old)
        self.assert_state(active=1 - old, security_counter=2)
        out = self.power_on()
        self.assertIn("booting slot %s: 1.1.0+7, security counter 2, confirmed" % "AB"[1 - old],
                      out)

    def test_install_refuses_lower_counter(self):
        self.confirmed_on("v1.0.0")
        st = self.state()
        out = self.install("v0.9.0", code=1)
        self.assertIn("install refused at finish: rollback", out)
        # never marked: the state is as it was (seq included)
        self.assertEqual(self.state(), st)
        self.assertIn("confirmed", self.power_on())

    def test_install_refuses_bad_images(self):
        self.confirmed_on("v1.0.0")
        st = self.state()
        for name, why in (("foreign", "threshold"), ("other-hw", "wrong-hardware")):
            out = self.install(name, code=1)
            self.assertIn("install refused at finish: %s" % why, out, name)
            self.assertEqual(self.state(), st, name)
        # truncated: the file is its own length, so the SHA-256 matches; the
        # verifier finds the trailer cut short
        j = json.loads(self.boot("--json", "--install", self.images["truncated"],
                                 code=1).stdout)
        self.assertEqual((j["result"], j["stage"]), ("install-failed", "finish"))
        self.assertIn(j["error"], ("length", "parse"))
        self.assertEqual(self.state(), st)
        out = self.power_on()
        self.assertIn("booting slot %s: 1.0.0+0" % "AB"[st["active"]], out)
        self.assertIn("confirmed", out)

    def test_install_during_trial_refused(self):
        self.install("v1.0.0")
        self.power_on()
        st = self.state()
        out = self.install("v1.1.0", code=1)
        self.assertIn("install refused at begin: state", out)
        self.assertEqual(self.state(), st)

    def test_planted_image_is_never_booted(self):
        # v1.1.0 confirmed: the stored counter is 2.
        self.confirmed_on("v1.0.0")
        active = self.confirmed_on("v1.1.0")
        inactive = 1 - active
        self.assert_state(security_counter=2)
        # Plant an image straight into the inactive slot and mark it pending,
        # as raw flash access or a buggy agent could, bypassing the install
        # checks: v0.9.0 is signed by the device key but carries counter 0;
        # "foreign" has a higher counter but is signed by an unknown key.
        for name, why in (("v0.9.0", "rollback"), ("foreign", "threshold")):
            img = self.image_bytes(name)
            self.poke(SLOT_OFF[inactive], b"\xff" * SLOT_SIZE)
            self.poke(SLOT_OFF[inactive], img)
            seq = self.plant_state(active=active, pending=1, attempts_left=3, trial=0,
                                   security_counter=2)
            self.assert_state(pending=1, attempts_left=3, seq=seq)
            j = self.power_on_json()
            self.assertEqual((j["slot"], j["reason"], j["rejected"]),
                             ("AB"[active], "reverted-invalid", why), name)
            self.assertEqual(j["image"]["version"], "1.1.0+7")
            self.assert_state(active=active, pending=0, trial=0, security_counter=2,
                              seq=seq + 1)
            # The same plant again, as a text boot.
            self.plant_state(active=active, pending=1, attempts_left=1, trial=0,
                             security_counter=2)
            out = self.power_on()
            self.assertIn("booting slot %s: 1.1.0+7, security counter 2, reverted: pending "
                          "slot %s rejected (%s)" % ("AB"[active], "AB"[inactive], why), out)
            # nor can the operator roll back to it
            self.assertIn("rollback refused: %s" % why, self.rollback(code=1))
            self.assert_state(active=active, pending=0, security_counter=2)
            self.assertIn("confirmed", self.power_on())

    def test_planted_state_lowering_the_counter_is_ignored(self):
        # A record with a bad CRC (here: the counter lowered after the CRC
        # was computed) is not a state: the previous copy stays in force.
        self.confirmed_on("v1.0.0")
        active = self.confirmed_on("v1.1.0")
        st = self.state()
        cur = [i for i, c in enumerate(self.copies()) if c is not None and c["seq"] == st["seq"]]
        rec = bytearray(encode_record(st["seq"] + 1, 1 - active, 0, 0, 0, 2))
        rec[12] = 0                       # security_counter 2 -> 0, CRC not updated
        self.poke(STATE_OFF[1 - cur[0]], bytes(rec) + b"\xff" * (SECTOR - STATE_LEN))
        self.assertEqual(self.state(), st)
        self.assertIn("booting slot %s: 1.1.0+7" % "AB"[active], self.power_on())

    def test_fallback_when_active_image_is_damaged(self):
        old = self.confirmed_on("v1.0.0")
        new = self.confirmed_on("v1.0.1")
        self.assertEqual(new, 1 - old)
        # flip a payload byte of the active image
        off = SLOT_OFF[new] + IMAGE_HEADER_LEN + 10
        b = self.flash_bytes()[off]
        self.poke(off, bytes([b ^ 1]))
        out = self.power_on()
        self.assertIn("booting slot %s: 1.0.0+0, security counter 1, fallback: slot %s "
                      "rejected (hash-mismatch)" % ("AB"[old], "AB"[new]), out)
        self.assert_state(active=old, pending=0, security_counter=1)
        # both damaged: nothing boots, nothing is written
        off = SLOT_OFF[old] + IMAGE_HEADER_LEN + 10
        b = self.flash_bytes()[off]
        self.poke(off, bytes([b ^ 1]))
        st = self.state()
        out = self.power_on(code=1)
        self.assertIn("no bootable image: slot A: hash-mismatch, slot B: hash-mismatch", out)
        self.assertEqual(self.state(), st)

    def test_rollback_allowed_by_counter(self):
        old = self.confirmed_on("v1.0.0")           # counter 1
        new = self.confirmed_on("v1.0.1")           # counter 1 as well
        st = self.state()
        self.assertIn("rolled back: slot %s is active" % "AB"[old], self.rollback())
        self.assert_state(active=old, pending=0, trial=0, security_counter=1,
                          seq=st["seq"] + 1)
        self.assertIn("booting slot %s: 1.0.0+0, security counter 1, confirmed" % "AB"[old],
                      self.power_on())
        j = json.loads(self.boot("--rollback", "--json").stdout)
        self.assertEqual(j["result"], "rolled-back")
        self.assertEqual(j["state"]["active"], "AB"[new])

    def test_rollback_refused_below_counter(self):
        self.confirmed_on("v1.0.0")
        active = self.confirmed_on("v1.1.0")        # counter 2
        st = self.state()
        self.assertIn("rollback refused: rollback", self.rollback(code=1))
        self.assertEqual(self.state(), st)
        j = json.loads(self.boot("--rollback", "--json", code=1).stdout)
        self.assertEqual((j["result"], j["error"]), ("rollback-failed", "rollback"))
        self.assertIn("booting slot %s: 1.1.0+7" % "AB"[active], self.power_on())

    def test_rollback_refused_while_pending(self):
        self.confirmed_on("v1.0.0")
        self.install("v1.0.1")
        st = self.state()
        self.assertIn("rollback refused: state", self.rollback(code=1))
        self.assertEqual(self.state(), st)
        self.power_on()                             # now on trial
        st = self.state()
        self.assertIn("rollback refused: state", self.rollback(code=1))
        self.assertEqual(self.state(), st)

    def test_rollback_to_empty_slot_refused(self):
        self.confirmed_on("v1.0.0")
        st = self.state()
        self.assertIn("rollback refused: parse", self.rollback(code=1))
        self.assertEqual(self.state(), st)

    def test_threshold_and_key_forms(self):
        both = [self.pub, self.pub2]
        # two signatures needed: an image signed by one key is refused
        out = self.boot("--threshold", "2", "--install", self.images["v1.0.0"], code=1,
                        keys=both).stdout
        self.assertIn("install refused at finish: threshold", out)
        out = self.boot("--threshold", "2", "--install", self.images["two-keys"],
                        keys=both).stdout
        self.assertIn("installed 1.3.0+0 (security counter 3)", out)
        # the private PEM works as a trusted key too (its public half)
        out = self.power_on(keys=[self.key2])
        self.assertIn("booting slot B: 1.3.0+0, security counter 3, trial", out)
        # a threshold above the number of keys is a usage error
        self.boot("--threshold", "2", code=2, keys=[self.pub])
        # the same key twice (two forms of it) is a setup error, and so is an
        # RSA key: images carry no RSA signatures
        p = self.boot(code=2, keys=[self.pub, self.key])
        self.assertIn("the same key as an earlier --key", p.stderr)
        rsa, rsa_pub = self.make_key("rsa-" + self.id().rsplit(".", 1)[-1], "rsa")
        p = self.boot(code=2, keys=[self.pub, rsa_pub])
        self.assertIn("unsupported", p.stderr)

    def test_status_json(self):
        j = self.status_json()
        self.assertEqual(j["result"], "status")
        self.assertEqual(j["copies"], [{"valid": False}, {"valid": False}])
        self.assertEqual(j["state"], {"seq": 0, "active": "A", "pending": False,
                                      "attempts_left": 0, "trial": False,
                                      "security_counter": 0})
        self.assertIsNone(j["slot_a"]["image"])
        self.install("v1.1.0")
        j = self.status_json()
        raw = self.state()
        self.assertEqual(j["state"], {"seq": raw["seq"], "active": "AB"[raw["active"]],
                                      "pending": bool(raw["pending"]),
                                      "attempts_left": raw["attempts_left"],
                                      "trial": bool(raw["trial"]),
                                      "security_counter": raw["security_counter"]})
        self.assertEqual([c.get("seq") if c["valid"] else None for c in j["copies"]],
                         [c["seq"] if c else None for c in self.copies()])
        self.assertEqual(j["slot_b"]["image"], {"version": "1.1.0+7", "security_counter": 2,
                                                "hardware_id": HW,
                                                "payload_len": 9000 + 3 * 101})
        self.assertNotIn("verify", j["slot_b"])    # no key given: not judged
        j = json.loads(self.boot("--status", "--json").stdout)
        self.assertEqual(j["slot_b"]["verify"], "ok")
        self.assertEqual(j["slot_a"]["verify"], "parse")
        text = self.boot("--status").stdout
        self.assertIn("state: seq %d, active A, pending, security counter 0" % raw["seq"], text)
        self.assertIn("attempts left: 3", text)
        self.assertIn("slot B: 1.1.0+7, security counter 2, hardware %s" % HW, text)

    def test_boot_json_fields(self):
        self.install("v1.0.0")
        j = self.power_on_json()
        for field in ("result", "slot", "reason", "image", "state", "flash"):
            self.assertIn(field, j)
        self.assertEqual((j["result"], j["slot"], j["reason"]), ("boot", "B", "trial"))
        self.assertEqual(j["image"]["security_counter"], 1)
        self.assertEqual(j["state"]["attempts_left"], 2)
        self.assertTrue(j["state"]["trial"])
        self.assertEqual(j["flash"], {"writes": 1, "erases": 1})
        j = json.loads(self.boot("--confirm", "--json").stdout)
        self.assertEqual((j["result"], j["changed"]), ("confirmed", True))
        self.assertEqual(j["state"]["active"], "B")
        j = json.loads(self.boot("--json", "--install", self.images["v1.1.0"]).stdout)
        self.assertEqual((j["result"], j["slot"]), ("installed", "A"))
        self.assertEqual(j["image"]["version"], "1.1.0+7")

    def test_help_and_usage(self):
        p = subprocess.run([FOTA_BOOT, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: fota-boot", p.stdout)
        bad = (
            [],                                                 # no --flash
            ["--flash", self.flash, "--bogus"],
            ["--flash", self.flash, "--confirm", "--rollback"],
            ["--flash", self.flash],                            # no key, no hardware
            ["--flash", self.flash, "--key", self.pub],         # no hardware
            ["--flash", self.flash, "--key", self.pub, "--hardware", HW, "--threshold", "0"],
            ["--flash", self.flash, "--key", self.pub, "--hardware", HW, "--attempts", "256"],
            ["--flash", self.flash, "--create", "12x"],
            ["--flash", self.flash, "--key"],                   # missing value
        )
        for argv in bad:
            p = subprocess.run([FOTA_BOOT] + argv, capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, "%r: %s%s" % (argv, p.stdout, p.stderr))
            self.assertIn("fota-boot:", p.stderr)
        # setup errors are 2 as well: a missing key file or flash file
        self.boot(code=2, keys=[os.path.join(self.dir, "missing.pub")])
        p = subprocess.run([FOTA_BOOT, "--flash", os.path.join(self.dir, "none.flash"),
                            "--status"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.boot("--install", os.path.join(self.dir, "missing.img"), code=2)


if __name__ == "__main__":
    unittest.main()
