/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota image sign | verify | inspect: signed firmware images
 * (docs/image-format.md). sign streams the payload from IN to OUT, hashing
 * it on the way; verify runs libfota's verifier, the very code a bootloader
 * runs, over the file through its read callback; inspect describes an image
 * without judging it. No command holds an image whole in memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fota/image.h"
#include "fota/image_build.h"
#include "keyfile.h"
#include "fota_posix.h"

static const char image_usage[] =
    "Usage: fota image sign IN OUT --key PRIV... --version V --security-counter N\n"
    "                       --hardware HW [--json]\n"
    "       fota image verify FILE --key PUB... [--hardware HW] [--min-security-counter N]\n"
    "                         [--threshold N] [--json]\n"
    "       fota image inspect FILE [--json]\n"
    "\n"
    "Run 'fota image sign --help' (verify, inspect) for details.\n";

static const char sign_usage[] =
    "Usage: fota image sign IN OUT --key PRIV... --version V --security-counter N\n"
    "                       --hardware HW [--json]\n"
    "\n"
    "Make the signed image OUT from the payload IN: header, payload, and a\n"
    "trailer with the SHA-256 of header and payload and one signature per key\n"
    "(ed25519 or ecdsa; RSA keys cannot sign images). OUT is replaced\n"
    "atomically.\n"
    "\n"
    "  --key PRIV               a private key PEM (repeat for several signatures)\n"
    "  --version V              MAJOR.MINOR.PATCH[+BUILD], parts 0..65535, BUILD a number\n"
    "  --security-counter N     0..4294967295: devices refuse images with a counter\n"
    "                           below the one they have confirmed\n"
    "  --hardware HW            hardware id: 1..31 of A-Z a-z 0-9 . _ -\n"
    "  --json                   print one JSON object\n";

static const char verify_usage[] =
    "Usage: fota image verify FILE --key PUB... [--hardware HW] [--min-security-counter N]\n"
    "                         [--threshold N] [--json]\n"
    "\n"
    "Verify FILE as a bootloader does: header, hardware id, security counter,\n"
    "lengths (the file must end where the trailer does), digest, signatures.\n"
    "Exit 0 when valid; 1 with the reason of the first failed check.\n"
    "\n"
    "  --key PUB                a trusted key: .pub key object, PEM public or private key\n"
    "                           (repeat)\n"
    "  --hardware HW            the device's hardware id (default: not checked)\n"
    "  --min-security-counter N the device's stored counter (default 0)\n"
    "  --threshold N            distinct trusted keys that must have signed (default 1)\n"
    "  --json                   print one JSON object\n";

static const char inspect_usage[] =
    "Usage: fota image inspect FILE [--json]\n"
    "\n"
    "Print the header fields, the trailer's records with their key ids, and\n"
    "whether the SHA-256 record matches header and payload. No key is needed\n"
    "and no signature is checked (that is 'fota image verify').\n"
    "\n"
    "  --json                   print one JSON object\n";

/* Room for one image key id or digest in hex. */
#define HEX32_LEN 65

/* Largest payload whose image still has offsets in 32 bits. */
#define MAX_PAYLOAD (UINT32_MAX - FOTA_IMAGE_HEADER_LEN - FOTA_IMAGE_TRAILER_MAX)

/* Bytes a signature record of this key type may take at most. */
#define ED25519_RECORD (4u + 32u + 64u)
#define ECDSA_RECORD_MAX (4u + 32u + 72u)

#define READ_CHUNK 65536u

/* ---- values of options ---------------------------------------------------- */

/* Digits of a decimal number at *p, at most max; with no_leading_zero, "0"
 * alone is the only number that may start with 0 (semver's rule). */
static int parse_decimal(const char **p, uint32_t max, int no_leading_zero, uint32_t *ret)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -1;
    if (no_leading_zero && s[0] == '0' && s[1] >= '0' && s[1] <= '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -1;
        s++;
    }
    *p = s;
    *ret = (uint32_t)v;
    return 0;
}

/* MAJOR.MINOR.PATCH[+BUILD] into h: semver's numeric core, each 0..65535,
 * and a build number in place of semver's free-form build metadata. */
static int parse_version(const char *s, struct fota_image_header *h)
{
    uint32_t part[3], build = 0;

    for (int i = 0; i < 3; i++) {
        if (parse_decimal(&s, 65535, 1, &part[i]) != 0)
            return -1;
        if (i < 2 && *s++ != '.')
            return -1;
    }
    if (*s == '+') {
        s++;
        if (parse_decimal(&s, UINT32_MAX, 0, &build) != 0)
            return -1;
    }
    if (*s != '\0')
        return -1;
    h->major = (uint16_t)part[0];
    h->minor = (uint16_t)part[1];
    h->patch = (uint16_t)part[2];
    h->build = build;
    return 0;
}

static int parse_u32_option(const char *cmd, const char *opt, const char *s, uint32_t *ret)
{
    const char *p = s;
    uint32_t v;

    if (parse_decimal(&p, UINT32_MAX, 0, &v) != 0 || *p != '\0') {
        cli_error(cmd, opt, "'%s' is not an integer between 0 and 4294967295", s);
        return CLI_USAGE;
    }
    *ret = v;
    return CLI_OK;
}

/* The header encoder is the one judge of a well-formed hardware id. */
static int set_hardware(const char *cmd, const char *s, struct fota_image_header *h)
{
    uint8_t raw[FOTA_IMAGE_HEADER_LEN];
    struct fota_image_header probe = *h;
    size_t n = strlen(s);

    if (n < sizeof probe.hardware_id) {
        memset(probe.hardware_id, 0, sizeof probe.hardware_id);
        memcpy(probe.hardware_id, s, n);
        probe.flags = 0;
        if (fota_image_header_encode(&probe, raw) == FOTA_OK) {
            memcpy(h->hardware_id, probe.hardware_id, sizeof h->hardware_id);
            return CLI_OK;
        }
    }
    cli_error(cmd, "--hardware", "'%s' is not 1 to 31 characters of A-Z a-z 0-9 . _ -", s);
    return CLI_USAGE;
}

static void format_version(const struct fota_image_header *h, char *out, size_t size)
{
    if (h->build != 0)
        snprintf(out, size, "%u.%u.%u+%lu", (unsigned)h->major, (unsigned)h->minor,
                 (unsigned)h->patch, (unsigned long)h->build);
    else
        snprintf(out, size, "%u.%u.%u", (unsigned)h->major, (unsigned)h->minor,
                 (unsigned)h->patch);
}

static const char *key_type_name(fota_key_type t)
{
    return t == FOTA_KEY_ED25519 ? "ed25519" : "ecdsa-p256";
}

/* ---- reading an image file ------------------------------------------------ */

struct image_file {
    int fd;
    uint64_t size;
};

static fota_err file_read(void *ctx, uint32_t offset, void *buf, size_t len)
{
    const struct image_file *f = ctx;
    uint8_t *p = buf;
    off_t at = (off_t)offset;

    while (len > 0) {
        ssize_t n = pread(f->fd, p, len, at);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? FOTA_E_LENGTH : FOTA_E_IO;
        p += n;
        at += n;
        len -= (size_t)n;
    }
    return FOTA_OK;
}

static int open_image(const char *cmd, const char *path, struct image_file *ret)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        cli_error(cmd, path, "%s", strerror(errno));
        return CLI_FAIL;
    }
    if (fstat(fd, &st) != 0) {
        cli_error(cmd, path, "%s", strerror(errno));
        close(fd);
        return CLI_FAIL;
    }
    if (!S_ISREG(st.st_mode)) {
        cli_error(cmd, path, "not a regular file");
        close(fd);
        return CLI_FAIL;
    }
    ret->fd = fd;
    ret->size = (uint64_t)st.st_size;
    return CLI_OK;
}

/* ---- fota image sign ------------------------------------------------------ */

struct payload_sink {
    struct fota_posix_atomic *out;
    fota_sha256 *sha;
    uint64_t copied;
};

static fota_err payload_feed(void *ctx, const uint8_t *data, size_t len)
{
    struct payload_sink *s = ctx;

    fota_sha256_update(s->sha, data, len);
    s->copied += len;
    return fota_posix_atomic_write(s->out, data, len);
}

/* Print o and release it; o == NULL (a failed json_pack) is out of memory. */
static int print_json_owned(const char *cmd, json_t *o)
{
    int status;

    if (o == NULL) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    status = cli_print_json(cmd, o);
    json_decref(o);
    return status;
}

static int print_signed(const char *cmd, const char *out_path, const struct fota_image_header *h,
                        uint64_t total, const uint8_t digest[32], const struct cli_privkey *privs,
                        const struct fota_image_signer *signers, size_t n, int as_json)
{
    char version[64], hex[HEX32_LEN];
    json_t *o, *sigs;

    format_version(h, version, sizeof version);
    fota_hex_encode(digest, 32, hex);
    if (!as_json) {
        printf("signed %s: version %s, security counter %lu, hardware %s\n", out_path, version,
               (unsigned long)h->security_counter, h->hardware_id);
        printf("  payload %lu bytes, image %llu bytes, sha256 %s\n",
               (unsigned long)h->payload_len, (unsigned long long)total, hex);
        for (size_t i = 0; i < n; i++) {
            fota_hex_encode(signers[i].id, 32, hex);
            printf("  signature %s, key id %s (%s)\n",
                   key_type_name(fota_privkey_type(privs[i].key)), hex, privs[i].path);
        }
        return CLI_OK;
    }
    sigs = json_array();
    for (size_t i = 0; sigs != NULL && i < n; i++) {
        fota_hex_encode(signers[i].id, 32, hex);
        if (json_array_append_new(sigs, json_pack("{s:s,s:s,s:s}", "type",
                                                  key_type_name(fota_privkey_type(privs[i].key)),
                                                  "keyid", hex, "tuf_keyid",
                                                  privs[i].keyid)) != 0) {
            json_decref(sigs);
            sigs = NULL;
        }
    }
    fota_hex_encode(digest, 32, hex);
    o = sigs == NULL ? NULL
                     : json_pack("{s:s,s:s,s:I,s:s,s:I,s:I,s:s,s:o}", "image", out_path,
                                 "version", version, "security_counter",
                                 (json_int_t)h->security_counter, "hardware_id", h->hardware_id,
                                 "payload_len", (json_int_t)h->payload_len, "total_len",
                                 (json_int_t)total, "sha256", hex, "signatures", sigs);
    return print_json_owned(cmd, o);
}

static int image_sign(int argc, char **argv)
{
    static const char *cmd = "image sign";
    static const struct cli_optspec spec[] = {
        {"--key", CLI_OPT_MULTI | CLI_OPT_REQUIRED},
        {"--version", CLI_OPT_VALUE | CLI_OPT_REQUIRED},
        {"--security-counter", CLI_OPT_VALUE | CLI_OPT_REQUIRED},
        {"--hardware", CLI_OPT_VALUE | CLI_OPT_REQUIRED},
        {"--json", CLI_OPT_FLAG},
    };
    struct cli_args args = {0};
    struct cli_privkey *privs = NULL;
    struct fota_image_signer *signers = NULL;
    size_t n_keys = 0, n_loaded = 0, trailer_len = 0, room;
    struct fota_image_header h;
    struct fota_posix_atomic out = {.fd = -1, .dir_fd = -1};
    int out_open = 0;
    fota_sha256 sha;
    struct payload_sink sink = {&out, &sha, 0};
    uint8_t raw[FOTA_IMAGE_HEADER_LEN], digest[32], trailer[FOTA_IMAGE_TRAILER_MAX];
    const char *in_path, *out_path;
    struct stat st;
    fota_err err;
    int status;

    status = cli_parse(cmd, sign_usage, spec, sizeof spec / sizeof spec[0], argc, argv, 2, 2,
                       &args);
    if (status != CLI_OK)
        return status;
    in_path = args.pos[0];
    out_path = args.pos[1];
    memset(&h, 0, sizeof h);
    status = CLI_USAGE;
    if (parse_version(args.opt[1].value, &h) != 0) {
        cli_error(cmd, "--version", "'%s' is not MAJOR.MINOR.PATCH[+BUILD] (0..65535 each, "
                                    "BUILD 0..4294967295)", args.opt[1].value);
        goto out;
    }
    if (parse_u32_option(cmd, "--security-counter", args.opt[2].value, &h.security_counter) !=
            CLI_OK ||
        set_hardware(cmd, args.opt[3].value, &h) != CLI_OK)
        goto out;

    n_keys = args.opt[0].count;
    status = cli_load_privkeys(cmd, args.opt[0].values, n_keys, &privs);
    if (status != CLI_OK) {
        privs = NULL;
        goto out;
    }
    signers = calloc(n_keys, sizeof *signers);
    if (signers == NULL) {
        cli_error(cmd, NULL, "out of memory");
        status = CLI_FAIL;
        goto out;
    }
    room = FOTA_IMAGE_TRAILER_MAX - 4 - 36;
    for (n_loaded = 0; n_loaded < n_keys; n_loaded++) {
        struct fota_image_signer *s = &signers[n_loaded];
        size_t need;

        err = fota_image_signer_init(privs[n_loaded].key, s);
        if (err != FOTA_OK) {
            if (err == FOTA_E_UNSUPPORTED)
                cli_error(cmd, privs[n_loaded].path,
                          "an RSA key cannot sign images (use ed25519 or ecdsa)");
            else
                cli_error(cmd, privs[n_loaded].path, "unusable key: %s", fota_strerror(err));
            status = err == FOTA_E_UNSUPPORTED ? CLI_USAGE : CLI_FAIL;
            goto out;
        }
        for (size_t j = 0; j < n_loaded; j++) {
            if (memcmp(signers[j].id, s->id, 32) == 0) {
                cli_error(cmd, "--key", "%s and %s are the same key", privs[j].path,
                          privs[n_loaded].path);
                n_loaded++;
                status = CLI_USAGE;
                goto out;
            }
        }
        need = fota_pubkey_type(s->pub) == FOTA_KEY_ED25519 ? ED25519_RECORD : ECDSA_RECORD_MAX;
        if (need > room) {
            cli_error(cmd, "--key", "too many keys: the signatures would not fit in the %u-byte "
                                    "trailer", FOTA_IMAGE_TRAILER_MAX);
            n_loaded++;
            status = CLI_USAGE;
            goto out;
        }
        room -= need;
    }

    status = CLI_FAIL;
    if (stat(in_path, &st) != 0) {
        cli_error(cmd, in_path, "%s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cli_error(cmd, in_path, "not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size > MAX_PAYLOAD) {
        cli_error(cmd, in_path, "%s: an image payload is at most %lu bytes",
                  fota_strerror(FOTA_E_TOO_BIG), (unsigned long)MAX_PAYLOAD);
        goto out;
    }
    h.payload_len = (uint32_t)st.st_size;
    err = fota_image_header_encode(&h, raw);
    if (err != FOTA_OK) {
        cli_error(cmd, NULL, "cannot encode the header: %s", fota_strerror(err));
        goto out;
    }

    err = fota_posix_atomic_open_path(&out, out_path, 0644, 0);
    if (err != FOTA_OK) {
        cli_error(cmd, out_path, "%s", cli_io_reason(err));
        goto out;
    }
    out_open = 1;
    fota_sha256_init(&sha);
    fota_sha256_update(&sha, raw, sizeof raw);
    err = fota_posix_atomic_write(&out, raw, sizeof raw);
    /* The payload goes from IN to OUT through the hash, a chunk at a time;
     * its size was fixed by the header, so a file that changes meanwhile
     * fails here rather than making an image that lies about its length. */
    if (err == FOTA_OK)
        err = fota_posix_file_stream(in_path, h.payload_len, payload_feed, &sink);
    if (err == FOTA_OK && sink.copied != h.payload_len)
        err = FOTA_E_LENGTH;
    fota_sha256_final(&sha, digest);
    if (err != FOTA_OK) {
        cli_error(cmd, in_path, "%s", err == FOTA_E_LENGTH ? "changed size while being read"
                                                          : cli_io_reason(err));
        goto out;
    }
    err = fota_image_trailer_build(digest, signers, n_keys, trailer, sizeof trailer, &trailer_len);
    if (err != FOTA_OK) {
        cli_error(cmd, NULL, "cannot sign: %s", fota_strerror(err));
        goto out;
    }
    err = fota_posix_atomic_write(&out, trailer, trailer_len);
    if (err == FOTA_OK) {
        out_open = 0;
        err = fota_posix_atomic_commit(&out);
    }
    if (err != FOTA_OK) {
        cli_error(cmd, out_path, "%s", cli_io_reason(err));
        goto out;
    }
    status = print_signed(cmd, out_path, &h,
                          (uint64_t)FOTA_IMAGE_HEADER_LEN + h.payload_len + trailer_len, digest,
                          privs, signers, n_keys, args.opt[4].count > 0);
out:
    if (out_open)
        fota_posix_atomic_abort(&out);
    for (size_t i = 0; signers != NULL && i < n_loaded; i++)
        fota_image_signer_clear(&signers[i]);
    free(signers);
    cli_privkeys_free(privs, n_keys);
    cli_args_free(&args);
    return status;
}

/* ---- fota image verify ---------------------------------------------------- */

static int print_verified(const char *cmd, const char *path, fota_err result,
                          const struct fota_image_info *info, unsigned threshold, int as_json)
{
    char version[64], hex[HEX32_LEN];
    json_t *o;

    if (result != FOTA_OK) {
        if (as_json)
            (void)print_json_owned(cmd, json_pack("{s:s,s:b,s:s}", "file", path, "valid", 0,
                                                  "reason", fota_strerror(result)));
        cli_error(cmd, path, "invalid: %s", fota_strerror(result));
        return CLI_FAIL;
    }
    format_version(&info->header, version, sizeof version);
    fota_hex_encode(info->digest, 32, hex);
    if (!as_json) {
        printf("%s: valid: version %s, security counter %lu, hardware %s, %u of %u signatures\n",
               path, version, (unsigned long)info->header.security_counter,
               info->header.hardware_id, info->valid_signatures, threshold);
        return CLI_OK;
    }
    o = json_pack("{s:s,s:b,s:s,s:s,s:I,s:s,s:I,s:I,s:s,s:I,s:I}", "file", path, "valid", 1,
                  "reason", "ok", "version", version, "security_counter",
                  (json_int_t)info->header.security_counter, "hardware_id",
                  info->header.hardware_id, "payload_len", (json_int_t)info->header.payload_len,
                  "total_len", (json_int_t)info->total_len, "sha256", hex, "valid_signatures",
                  (json_int_t)info->valid_signatures, "threshold", (json_int_t)threshold);
    return print_json_owned(cmd, o);
}

static int image_verify(int argc, char **argv)
{
    static const char *cmd = "image verify";
    static const struct cli_optspec spec[] = {
        {"--key", CLI_OPT_MULTI | CLI_OPT_REQUIRED},
        {"--hardware", CLI_OPT_VALUE},
        {"--min-security-counter", CLI_OPT_VALUE},
        {"--threshold", CLI_OPT_VALUE},
        {"--json", CLI_OPT_FLAG},
    };
    struct cli_args args = {0};
    struct fota_image_key *trusted = NULL;
    size_t n_keys = 0, bad = 0;
    struct fota_image_header want;
    struct fota_image_policy policy;
    struct fota_image_info info;
    struct image_file file = {-1, 0};
    uint8_t scratch[4096];
    fota_err result, err;
    int status;

    status = cli_parse(cmd, verify_usage, spec, sizeof spec / sizeof spec[0], argc, argv, 1, 1,
                       &args);
    if (status != CLI_OK)
        return status;
    memset(&policy, 0, sizeof policy);
    memset(&want, 0, sizeof want);
    policy.threshold = 1;
    n_keys = args.opt[0].count;
    if (args.opt[1].count > 0) {
        status = set_hardware(cmd, args.opt[1].value, &want);
        if (status != CLI_OK)
            goto out;
    }
    if (args.opt[2].count > 0) {
        status = parse_u32_option(cmd, "--min-security-counter", args.opt[2].value,
                                  &policy.min_security_counter);
        if (status != CLI_OK)
            goto out;
    }
    if (args.opt[3].count > 0) {
        status = cli_parse_threshold(cmd, "--threshold", args.opt[3].value, &policy.threshold);
        if (status != CLI_OK)
            goto out;
        if (policy.threshold > n_keys) {
            cli_error(cmd, "--threshold", "%u is more than the %zu keys given", policy.threshold,
                      n_keys);
            status = CLI_USAGE;
            goto out;
        }
    }

    trusted = calloc(n_keys, sizeof *trusted);
    if (trusted == NULL) {
        cli_error(cmd, NULL, "out of memory");
        status = CLI_FAIL;
        goto out;
    }
    /* The keys fota-boot's device trusts are read by the same loader. */
    err = fota_keyfile_load_image_keys(args.opt[0].values, n_keys, trusted, &bad);
    if (err != FOTA_OK) {
        const char *path = args.opt[0].values[bad];

        status = CLI_USAGE;
        if (err == FOTA_E_DUPLICATE) {
            cli_error(cmd, "--key", "%s is the same key as an earlier --key", path);
        } else if (err == FOTA_E_UNSUPPORTED) {
            cli_error(cmd, path, "unsupported key: images are signed with ed25519 or ecdsa "
                                 "P-256 keys");
        } else {
            cli_error(cmd, path, "not a usable key: %s",
                      err == FOTA_E_NOT_FOUND ? "no such file" : fota_strerror(err));
            status = CLI_FAIL;
        }
        goto out;
    }

    status = open_image(cmd, args.pos[0], &file);
    if (status != CLI_OK)
        goto out;
    /* Without --hardware the image's own id is the policy: the check is
     * skipped, not faked (a header that does not decode fails before it). */
    if (args.opt[1].count == 0) {
        uint8_t raw[FOTA_IMAGE_HEADER_LEN];
        struct fota_image_header hdr;

        if (file_read(&file, 0, raw, sizeof raw) == FOTA_OK &&
            fota_image_header_decode(raw, &hdr) == FOTA_OK)
            memcpy(want.hardware_id, hdr.hardware_id, sizeof want.hardware_id);
    }
    policy.keys = trusted;
    policy.n_keys = n_keys;
    policy.hardware_id = want.hardware_id;
    policy.max_len = UINT32_MAX;
    /* A file is exactly one image: trailing bytes are an error. A file over
     * 4 GiB cannot be one. */
    policy.exact_len = file.size <= UINT32_MAX ? (uint32_t)file.size : 0;
    if (file.size > UINT32_MAX || file.size == 0)
        result = FOTA_E_LENGTH;
    else
        result = fota_image_verify(file_read, &file, &policy, scratch, sizeof scratch, &info);
    status = print_verified(cmd, args.pos[0], result, &info, policy.threshold,
                            args.opt[4].count > 0);
out:
    if (file.fd >= 0)
        close(file.fd);
    fota_keyfile_free_image_keys(trusted, n_keys);
    free(trusted);
    cli_args_free(&args);
    return status;
}

/* ---- fota image inspect --------------------------------------------------- */

/* Hash header and payload of f into digest, reading in chunks. */
static fota_err hash_signed_part(struct image_file *f, uint64_t end, uint8_t digest[32])
{
    fota_sha256 sha;
    uint8_t *buf = malloc(READ_CHUNK);
    uint64_t off = 0;
    fota_err err = FOTA_OK;

    if (buf == NULL)
        return FOTA_E_NOMEM;
    fota_sha256_init(&sha);
    while (off < end && err == FOTA_OK) {
        size_t n = end - off < READ_CHUNK ? (size_t)(end - off) : READ_CHUNK;

        err = file_read(f, (uint32_t)off, buf, n);
        if (err == FOTA_OK)
            fota_sha256_update(&sha, buf, n);
        off += n;
    }
    fota_sha256_final(&sha, digest);
    free(buf);
    return err;
}

static const char *record_name(uint16_t type)
{
    switch (type) {
    case FOTA_TLV_SHA256:
        return "sha256";
    case FOTA_TLV_SIG_ED25519:
        return "ed25519";
    case FOTA_TLV_SIG_ECDSA_P256:
        return "ecdsa-p256";
    default:
        return "unknown";
    }
}

/* Describe the records of trailer[4..len) into recs (JSON) and, unless
 * quiet, on stdout. Sets *ret_match when a SHA-256 record equals digest.
 * Returns 0, or -1 when out of memory. */
static int describe_records(const uint8_t *trailer, size_t len, const uint8_t digest[32],
                            int quiet, json_t *recs, int *ret_match)
{
    size_t at = 4;
    char hex[HEX32_LEN];

    while (at < len) {
        uint16_t type, rlen;
        json_t *r;

        if (len - at < 4) {
            if (!quiet)
                printf("  record            (%zu stray bytes: not a whole record head)\n",
                       len - at);
            r = json_pack("{s:s,s:I}", "type", "truncated", "len", (json_int_t)(len - at));
            if (r == NULL || json_array_append_new(recs, r) != 0)
                return -1;
            break;
        }
        type = (uint16_t)(trailer[at] | (trailer[at + 1] << 8));
        rlen = (uint16_t)(trailer[at + 2] | (trailer[at + 3] << 8));
        at += 4;
        if (rlen > len - at) {
            if (!quiet)
                printf("  record %-10s len %u runs past the trailer\n", record_name(type),
                       (unsigned)rlen);
            r = json_pack("{s:s,s:I,s:I,s:b}", "type", record_name(type), "type_id",
                          (json_int_t)type, "len", (json_int_t)rlen, "truncated", 1);
            if (r == NULL || json_array_append_new(recs, r) != 0)
                return -1;
            break;
        }
        if (type == FOTA_TLV_SHA256 && rlen == 32) {
            int same = fota_ct_equal(trailer + at, digest, 32);

            fota_hex_encode(trailer + at, 32, hex);
            *ret_match |= same;
            if (!quiet)
                printf("  record sha256     %s (%s)\n", hex,
                       same ? "matches header and payload" : "DIFFERS from header and payload");
            r = json_pack("{s:s,s:I,s:I,s:s,s:b}", "type", "sha256", "type_id",
                          (json_int_t)type, "len", (json_int_t)rlen, "value", hex, "matches",
                          same);
        } else if ((type == FOTA_TLV_SIG_ED25519 || type == FOTA_TLV_SIG_ECDSA_P256) &&
                   rlen > 32) {
            fota_hex_encode(trailer + at, 32, hex);
            if (!quiet)
                printf("  record %-10s key id %s, signature %u bytes\n", record_name(type), hex,
                       (unsigned)(rlen - 32));
            r = json_pack("{s:s,s:I,s:I,s:s,s:I}", "type", record_name(type), "type_id",
                          (json_int_t)type, "len", (json_int_t)rlen, "keyid", hex,
                          "signature_len", (json_int_t)(rlen - 32));
        } else {
            if (!quiet)
                printf("  record %-10s type 0x%04x, %u bytes\n", record_name(type),
                       (unsigned)type, (unsigned)rlen);
            r = json_pack("{s:s,s:I,s:I}", "type", record_name(type), "type_id",
                          (json_int_t)type, "len", (json_int_t)rlen);
        }
        if (r == NULL || json_array_append_new(recs, r) != 0)
            return -1;
        at += rlen;
    }
    return 0;
}

static int image_inspect(int argc, char **argv)
{
    static const char *cmd = "image inspect";
    static const struct cli_optspec spec[] = {
        {"--json", CLI_OPT_FLAG},
    };
    struct cli_args args = {0};
    struct image_file file = {-1, 0};
    struct fota_image_header h;
    uint8_t raw[FOTA_IMAGE_HEADER_LEN], info4[4], digest[32];
    uint8_t *trailer = NULL;
    uint64_t payload_end, have;
    uint16_t total;
    char version[64], hex[HEX32_LEN];
    json_t *recs = NULL;
    const char *path;
    int as_json, match = 0;
    fota_err err;
    int status;

    status = cli_parse(cmd, inspect_usage, spec, 1, argc, argv, 1, 1, &args);
    if (status != CLI_OK)
        return status;
    path = args.pos[0];
    as_json = args.opt[0].count > 0;
    status = open_image(cmd, path, &file);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    err = file.size < FOTA_IMAGE_HEADER_LEN ? FOTA_E_LENGTH : file_read(&file, 0, raw, sizeof raw);
    if (err == FOTA_OK)
        err = fota_image_header_decode(raw, &h);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "not an image header: %s", fota_strerror(err));
        goto out;
    }
    payload_end = (uint64_t)FOTA_IMAGE_HEADER_LEN + h.payload_len;
    if (payload_end + 4 > file.size || file.size > UINT32_MAX) {
        cli_error(cmd, path, "%s: payload_len %lu, but the file holds %llu bytes",
                  fota_strerror(FOTA_E_LENGTH), (unsigned long)h.payload_len,
                  (unsigned long long)file.size);
        goto out;
    }
    err = hash_signed_part(&file, payload_end, digest);
    if (err == FOTA_OK)
        err = file_read(&file, (uint32_t)payload_end, info4, sizeof info4);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "%s", fota_strerror(err));
        goto out;
    }
    if ((unsigned)(info4[0] | (info4[1] << 8)) != FOTA_IMAGE_TRAILER_MAGIC) {
        cli_error(cmd, path, "%s: no trailer magic at offset %llu", fota_strerror(FOTA_E_PARSE),
                  (unsigned long long)payload_end);
        goto out;
    }
    total = (uint16_t)(info4[2] | (info4[3] << 8));
    /* Describe what is there: the trailer as total_len says, cut at the
     * end of the file. */
    have = file.size - payload_end;
    if (have > total)
        have = total;
    trailer = malloc(have > 4 ? (size_t)have : 4);
    recs = json_array();
    if (trailer == NULL || recs == NULL) {
        cli_error(cmd, NULL, "out of memory");
        goto out;
    }
    err = file_read(&file, (uint32_t)payload_end, trailer, (size_t)have);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "%s", fota_strerror(err));
        goto out;
    }

    format_version(&h, version, sizeof version);
    fota_hex_encode(digest, 32, hex);
    if (!as_json) {
        printf("%s: fota image, format %u\n", path, (unsigned)h.format);
        printf("  version           %s\n", version);
        printf("  security counter  %lu\n", (unsigned long)h.security_counter);
        printf("  hardware id       %s\n", h.hardware_id);
        printf("  flags             0x%08lx\n", (unsigned long)h.flags);
        printf("  payload           %lu bytes\n", (unsigned long)h.payload_len);
        printf("  trailer           %u bytes%s\n", (unsigned)total,
               total > FOTA_IMAGE_TRAILER_MAX ? " (over the 1024-byte cap)" : "");
        printf("  image             %llu bytes", (unsigned long long)(payload_end + total));
        if (payload_end + total != file.size)
            printf(" (the file holds %llu)", (unsigned long long)file.size);
        printf("\n  sha256            %s (computed over header and payload)\n", hex);
    }
    if (describe_records(trailer, (size_t)have, digest, as_json, recs, &match) != 0) {
        cli_error(cmd, NULL, "out of memory");
        goto out;
    }
    status = CLI_OK;
    if (as_json) {
        status = print_json_owned(
            cmd, json_pack("{s:s,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:s,s:b,"
                           "s:O}",
                           "file", path, "format", (json_int_t)h.format, "header_len",
                           (json_int_t)h.header_len, "flags", (json_int_t)h.flags, "version",
                           version, "major", (json_int_t)h.major, "minor", (json_int_t)h.minor,
                           "patch", (json_int_t)h.patch, "build", (json_int_t)h.build,
                           "security_counter", (json_int_t)h.security_counter, "hardware_id",
                           h.hardware_id, "payload_len", (json_int_t)h.payload_len,
                           "trailer_len", (json_int_t)total, "total_len",
                           (json_int_t)(payload_end + total), "file_len", (json_int_t)file.size,
                           "sha256", hex, "sha256_matches", match, "records", recs));
    }
out:
    json_decref(recs);
    free(trailer);
    if (file.fd >= 0)
        close(file.fd);
    cli_args_free(&args);
    return status;
}

int cli_cmd_image(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"sign", image_sign},
        {"verify", image_verify},
        {"inspect", image_inspect},
    };

    return cli_dispatch("image", image_usage, subs, sizeof subs / sizeof subs[0], argc, argv);
}
