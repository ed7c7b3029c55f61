/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The signed image format (include/fota/image.h, docs/image-format.md) and its
 * verifier. The verifier runs inside a bootloader: it allocates nothing, keeps
 * a few hundred bytes of state on its stack, and reads the image only through
 * the caller's callback, in chunks no larger than the caller's scratch buffer,
 * at strictly increasing offsets so that the same code can check an image in
 * flash, in a file or as it streams in.
 *
 * Every field is decoded byte by byte: the image is little-endian whatever the
 * host is, and nothing here depends on struct layout or alignment.
 */
#include "fota/image.h"

#include <string.h>

/* Trailer layout (FROZEN, see image.h). */
#define TRAILER_INFO_LEN 4u
#define RECORD_HEAD_LEN 4u
#define KEY_ID_LEN 32u
#define SHA256_LEN 32u
#define ED25519_SIG_LEN 64u
#define ECDSA_SIG_MIN 8u
#define ECDSA_SIG_MAX 72u

/* A trailer that can be valid holds at least its info and the SHA-256
 * record; the verifier refuses anything shorter before reading the payload. */
#define TRAILER_MIN (TRAILER_INFO_LEN + RECORD_HEAD_LEN + SHA256_LEN)

/* The most signature records a trailer within FOTA_IMAGE_TRAILER_MAX can
 * hold (all of them the shortest ECDSA form). Bounds the verifier's table of
 * keys already counted, so that the table lives on the stack. */
#define MAX_SIG_RECORDS \
    ((FOTA_IMAGE_TRAILER_MAX - TRAILER_INFO_LEN) / (RECORD_HEAD_LEN + KEY_ID_LEN + ECDSA_SIG_MIN))

/* The scratch size the contract promises to work with; every single read of
 * the header or of one trailer record fits in it. */
#define SCRATCH_MIN 256u

_Static_assert(RECORD_HEAD_LEN + KEY_ID_LEN + ECDSA_SIG_MAX <= SCRATCH_MIN,
               "a whole trailer record must fit in the smallest scratch");
_Static_assert(FOTA_IMAGE_HEADER_LEN <= SCRATCH_MIN, "the header must fit in the smallest scratch");
_Static_assert(FOTA_IMAGE_TRAILER_MAX <= 0xffffu, "total_len is a 16-bit field");

/* Header field offsets (FROZEN). */
#define OFF_MAGIC 0
#define OFF_HEADER_LEN 4
#define OFF_FORMAT 6
#define OFF_FLAGS 8
#define OFF_SECURITY_COUNTER 12
#define OFF_MAJOR 16
#define OFF_MINOR 18
#define OFF_PATCH 20
#define OFF_RESERVED 22
#define OFF_BUILD 24
#define OFF_PAYLOAD_LEN 28
#define OFF_HARDWARE_ID 32

_Static_assert(OFF_HARDWARE_ID + FOTA_IMAGE_HWID_FIELD == FOTA_IMAGE_HEADER_LEN,
               "the hardware id ends the header");

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* The hardware id alphabet, spelled out rather than taken from <ctype.h>,
 * whose answer depends on the locale. */
static int hwid_char_ok(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* Length of the id at the start of a FOTA_IMAGE_HWID_FIELD-byte field: 1..31
 * allowed characters and a NUL. 0 when malformed. Bytes after the NUL are not
 * looked at: the decoder checks the padding itself. */
static size_t hwid_length(const uint8_t *field)
{
    size_t n = 0;

    while (n < FOTA_IMAGE_HWID_FIELD && field[n] != 0) {
        if (!hwid_char_ok(field[n]))
            return 0;
        n++;
    }
    if (n == FOTA_IMAGE_HWID_FIELD)
        return 0;       /* no NUL: 32 characters are one too many */
    return n;
}

fota_err fota_image_header_decode(const uint8_t raw[FOTA_IMAGE_HEADER_LEN],
                                  struct fota_image_header *ret_header)
{
    struct fota_image_header h;
    size_t id_len, i;

    if (raw == NULL || ret_header == NULL)
        return FOTA_E_INVALID;
    memset(&h, 0, sizeof(h));
    h.magic = get32(raw + OFF_MAGIC);
    h.header_len = get16(raw + OFF_HEADER_LEN);
    h.format = get16(raw + OFF_FORMAT);
    h.flags = get32(raw + OFF_FLAGS);
    h.security_counter = get32(raw + OFF_SECURITY_COUNTER);
    h.major = get16(raw + OFF_MAJOR);
    h.minor = get16(raw + OFF_MINOR);
    h.patch = get16(raw + OFF_PATCH);
    h.build = get32(raw + OFF_BUILD);
    h.payload_len = get32(raw + OFF_PAYLOAD_LEN);
    if (h.magic != FOTA_IMAGE_MAGIC || h.header_len != FOTA_IMAGE_HEADER_LEN ||
        h.format != FOTA_IMAGE_FORMAT)
        return FOTA_E_PARSE;
    /* Undefined flags and reserved bytes must be zero, so that giving them a
     * meaning later cannot change how today's bootloaders read old images. */
    if (h.flags != 0 || get16(raw + OFF_RESERVED) != 0)
        return FOTA_E_PARSE;
    id_len = hwid_length(raw + OFF_HARDWARE_ID);
    if (id_len == 0)
        return FOTA_E_PARSE;
    /* Exactly one spelling per id: everything after it is NUL. */
    for (i = id_len; i < FOTA_IMAGE_HWID_FIELD; i++) {
        if (raw[OFF_HARDWARE_ID + i] != 0)
            return FOTA_E_PARSE;
    }
    memcpy(h.hardware_id, raw + OFF_HARDWARE_ID, FOTA_IMAGE_HWID_FIELD);
    *ret_header = h;
    return FOTA_OK;
}

fota_err fota_image_header_encode(const struct fota_image_header *h,
                                  uint8_t out[FOTA_IMAGE_HEADER_LEN])
{
    size_t id_len;

    if (h == NULL || out == NULL)
        return FOTA_E_INVALID;
    id_len = hwid_length((const uint8_t *)h->hardware_id);
    /* Flags are refused too: the decoder would refuse the image. */
    if (id_len == 0 || h->flags != 0)
        return FOTA_E_INVALID;
    memset(out, 0, FOTA_IMAGE_HEADER_LEN);
    put32(out + OFF_MAGIC, FOTA_IMAGE_MAGIC);
    put16(out + OFF_HEADER_LEN, FOTA_IMAGE_HEADER_LEN);
    put16(out + OFF_FORMAT, FOTA_IMAGE_FORMAT);
    put32(out + OFF_FLAGS, 0);
    put32(out + OFF_SECURITY_COUNTER, h->security_counter);
    put16(out + OFF_MAJOR, h->major);
    put16(out + OFF_MINOR, h->minor);
    put16(out + OFF_PATCH, h->patch);
    put16(out + OFF_RESERVED, 0);
    put32(out + OFF_BUILD, h->build);
    put32(out + OFF_PAYLOAD_LEN, h->payload_len);
    memcpy(out + OFF_HARDWARE_ID, h->hardware_id, id_len);
    return FOTA_OK;
}

/* ---- verifier ------------------------------------------------------------ */

/* The policy's id against the header's (well formed: NUL within the field).
 * Stops at the first difference, so the policy's string is read no further
 * than its own NUL, nor past the field's 32 bytes. */
static int hwid_equal(const char *want, const char *have)
{
    size_t i;

    for (i = 0; i < FOTA_IMAGE_HWID_FIELD; i++) {
        if (want[i] != have[i])
            return 0;
        if (have[i] == '\0')
            return 1;
    }
    return 0;
}

/* What the trailer walk has established so far. */
struct trailer_state {
    const uint8_t *digest;          /* computed over header and payload */
    uint8_t recorded[SHA256_LEN];   /* the SHA-256 record's value */
    int have_sha256;
    int digest_equal;
    fota_err sig_err;               /* first failure of a trusted key's signature */
    size_t counted[MAX_SIG_RECORDS];/* policy indices of keys with a valid signature */
    unsigned n_counted;
};

static int key_counted(const struct trailer_state *st, size_t idx)
{
    unsigned i;

    for (i = 0; i < st->n_counted; i++) {
        if (st->counted[i] == idx)
            return 1;
    }
    return 0;
}

/* One signature record (value = key id + signature, already in buf). A key id
 * no trusted key has is skipped: images may carry signatures for other
 * devices' keys. A trusted key whose signature fails is remembered, not
 * returned at once, because the digest check comes first in the order of
 * reasons and the SHA-256 record may follow the signatures. */
static void check_signature(struct trailer_state *st, const struct fota_image_policy *policy,
                            fota_key_type record_type, const uint8_t *buf, size_t len)
{
    const fota_pubkey *key = NULL;
    size_t idx = 0;
    size_t i;
    fota_err err;

    for (i = 0; i < policy->n_keys; i++) {
        if (memcmp(policy->keys[i].id, buf, KEY_ID_LEN) == 0) {
            key = policy->keys[i].key;
            idx = i;
            break;
        }
    }
    if (key == NULL)
        return;
    /* Once the outcome is decided by an earlier failure, spare the device
     * the cost of more signature checks. */
    if (st->sig_err != FOTA_OK || (st->have_sha256 && !st->digest_equal))
        return;
    /* The key id binds the key type, so a record of the other type under a
     * trusted key's id is a forged or broken signature. */
    if (fota_pubkey_type(key) != record_type) {
        st->sig_err = FOTA_E_SIGNATURE;
        return;
    }
    err = fota_verify_digest(key, st->digest, buf + KEY_ID_LEN, len - KEY_ID_LEN);
    if (err != FOTA_OK) {
        st->sig_err = err;
        return;
    }
    if (!key_counted(st, idx) && st->n_counted < MAX_SIG_RECORDS)
        st->counted[st->n_counted++] = idx;
}

/* Walk the records in [off, end). Structural faults end the walk with their
 * reason; digest and signature outcomes are left in st. */
static fota_err walk_trailer(fota_image_read_fn read, void *ctx,
                             const struct fota_image_policy *policy, uint8_t *scratch,
                             uint64_t off, uint64_t end, struct trailer_state *st)
{
    fota_err err;

    while (off < end) {
        uint16_t type, len;

        if (end - off < RECORD_HEAD_LEN)
            return FOTA_E_LENGTH;
        err = read(ctx, (uint32_t)off, scratch, RECORD_HEAD_LEN);
        if (err != FOTA_OK)
            return err;
        type = get16(scratch);
        len = get16(scratch + 2);
        off += RECORD_HEAD_LEN;
        if (len > end - off)
            return FOTA_E_LENGTH;
        switch (type) {
        case FOTA_TLV_SHA256:
            if (len != SHA256_LEN)
                return FOTA_E_PARSE;
            if (st->have_sha256)
                return FOTA_E_DUPLICATE;
            break;
        case FOTA_TLV_SIG_ED25519:
            if (len != KEY_ID_LEN + ED25519_SIG_LEN)
                return FOTA_E_PARSE;
            break;
        case FOTA_TLV_SIG_ECDSA_P256:
            if (len < KEY_ID_LEN + ECDSA_SIG_MIN || len > KEY_ID_LEN + ECDSA_SIG_MAX)
                return FOTA_E_PARSE;
            break;
        default:
            /* Unknown records are refused, not skipped: a record added
             * later must not be silently ignored by old bootloaders. */
            return FOTA_E_PARSE;
        }
        err = read(ctx, (uint32_t)off, scratch, len);
        if (err != FOTA_OK)
            return err;
        off += len;
        if (type == FOTA_TLV_SHA256) {
            memcpy(st->recorded, scratch, SHA256_LEN);
            st->have_sha256 = 1;
            st->digest_equal = fota_ct_equal(st->recorded, st->digest, SHA256_LEN);
        } else {
            check_signature(st, policy,
                            type == FOTA_TLV_SIG_ED25519 ? FOTA_KEY_ED25519 : FOTA_KEY_ECDSA_P256,
                            scratch, len);
        }
    }
    if (!st->have_sha256)
        return FOTA_E_PARSE;
    return FOTA_OK;
}

/* The stages a valid image passes, counted as it passes them and compared
 * again at the end: a glitch that skips one early-out still leaves the count
 * short (the idea of MCUboot's fault-injection hardening, in a small form). */
#define STAGES_ALL 7u  /* header, hardware, counter, lengths, trailer, digest, signatures */

fota_err fota_image_verify(fota_image_read_fn read, void *ctx,
                           const struct fota_image_policy *policy,
                           uint8_t *scratch, size_t scratch_len,
                           struct fota_image_info *ret_info)
{
    fota_err result = FOTA_E_SIGNATURE;    /* start from failure */
    struct fota_image_header hdr;
    struct trailer_state st;
    fota_sha256 sha;
    uint8_t digest[SHA256_LEN];
    uint64_t off, payload_end, total;
    uint16_t trailer_len;
    unsigned passed = 0;
    fota_err err;

    if (read == NULL || policy == NULL || scratch == NULL || scratch_len < SCRATCH_MIN ||
        policy->hardware_id == NULL || policy->threshold == 0 ||
        (policy->keys == NULL && policy->n_keys > 0))
        return FOTA_E_INVALID;
    memset(&st, 0, sizeof(st));
    st.sig_err = FOTA_OK;
    st.digest = digest;

    /* A window too small for a header and the smallest trailer holds no
     * image. Refused before the first read, so that read() is never asked
     * for bytes outside [0, max_len) (found by fuzz/fuzz_image.c). */
    if (policy->max_len < FOTA_IMAGE_HEADER_LEN + TRAILER_MIN ||
        (policy->exact_len != 0 && policy->exact_len < FOTA_IMAGE_HEADER_LEN + TRAILER_MIN)) {
        result = FOTA_E_LENGTH;
        goto out;
    }
    err = read(ctx, 0, scratch, FOTA_IMAGE_HEADER_LEN);
    if (err != FOTA_OK) {
        result = err;
        goto out;
    }
    err = fota_image_header_decode(scratch, &hdr);
    if (err != FOTA_OK) {
        result = err;
        goto out;
    }
    fota_sha256_init(&sha);
    fota_sha256_update(&sha, scratch, FOTA_IMAGE_HEADER_LEN);
    passed++;

    if (!hwid_equal(policy->hardware_id, hdr.hardware_id)) {
        result = FOTA_E_HARDWARE;
        goto out;
    }
    passed++;
    if (hdr.security_counter < policy->min_security_counter) {
        result = FOTA_E_ROLLBACK;
        goto out;
    }
    passed++;

    /* Lengths that the header alone decides, before a byte of payload is
     * read: a huge payload_len is refused here, not after streaming it. The
     * sums are in 64 bits, where a 32-bit payload_len cannot overflow. */
    payload_end = (uint64_t)FOTA_IMAGE_HEADER_LEN + hdr.payload_len;
    if (payload_end + TRAILER_MIN > policy->max_len ||
        (policy->exact_len != 0 && payload_end + TRAILER_MIN > policy->exact_len)) {
        result = FOTA_E_LENGTH;
        goto out;
    }
    /* From here every offset is below max_len, a uint32_t. */
    for (off = FOTA_IMAGE_HEADER_LEN; off < payload_end;) {
        size_t n = scratch_len;

        if ((uint64_t)n > payload_end - off)
            n = (size_t)(payload_end - off);
        err = read(ctx, (uint32_t)off, scratch, n);
        if (err != FOTA_OK) {
            result = err;
            goto out;
        }
        fota_sha256_update(&sha, scratch, n);
        off += n;
    }
    fota_sha256_final(&sha, digest);

    err = read(ctx, (uint32_t)payload_end, scratch, TRAILER_INFO_LEN);
    if (err != FOTA_OK) {
        result = err;
        goto out;
    }
    if (get16(scratch) != FOTA_IMAGE_TRAILER_MAGIC) {
        result = FOTA_E_PARSE;
        goto out;
    }
    trailer_len = get16(scratch + 2);
    total = payload_end + trailer_len;
    if (trailer_len < TRAILER_MIN || trailer_len > FOTA_IMAGE_TRAILER_MAX ||
        total > policy->max_len || (policy->exact_len != 0 && total != policy->exact_len)) {
        result = FOTA_E_LENGTH;
        goto out;
    }
    passed++;

    err = walk_trailer(read, ctx, policy, scratch, payload_end + TRAILER_INFO_LEN, total, &st);
    if (err != FOTA_OK) {
        result = err;
        goto out;
    }
    passed++;
    if (!st.digest_equal) {
        result = FOTA_E_HASH;
        goto out;
    }
    passed++;
    if (st.sig_err != FOTA_OK) {
        result = st.sig_err;
        goto out;
    }
    if (st.n_counted < policy->threshold) {
        result = FOTA_E_THRESHOLD;
        goto out;
    }
    passed++;

    /* The decision once more, from the facts rather than from the path
     * taken to get here. */
    if (passed == STAGES_ALL && st.have_sha256 &&
        fota_ct_equal(st.recorded, digest, SHA256_LEN) && st.sig_err == FOTA_OK &&
        st.n_counted >= policy->threshold)
        result = FOTA_OK;
    if (result == FOTA_OK && ret_info != NULL) {
        ret_info->header = hdr;
        ret_info->total_len = (uint32_t)total;
        memcpy(ret_info->digest, digest, SHA256_LEN);
        ret_info->valid_signatures = st.n_counted;
    }
out:
    return result;
}
