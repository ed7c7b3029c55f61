/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_director: the device side of the Director (lib/director_verify.c):
 * fota_director_keys_parse over the bytes of fota/director.json, and
 * fota_director_verify over a check-in answer, with the fixture's Director
 * key set, device id and the agent harness's fixed nonce.
 *
 * Each input is (1) parsed as a key set, and a real Director document
 * (fixture/director-doc.json) verified with what it yields; (2) verified
 * as a document with and without a clock; (3) when it has a "signed"
 * object, re-signed with the fixture's Director key and verified, so that
 * mutations reach every field rule behind the signature.
 *
 * Invariants: an accepted document is bound to its device and its nonce
 * (the same bytes for another device id or another nonce are refused), an
 * "install" names a target with a length and a "stay" names none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fota/director.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fuzz_common.h"

#define NONCE "000102030405060708090a0b0c0d0e0f"
#define OTHER_NONCE "000102030405060708090a0b0c0d0e0e"
#define OTHER_DEVICE "0000000000000000000000000000000000000000000000000000000000000000"
#define INPUT_MAX (2u * FOTA_DIRECTOR_KEYS_MAX)

static json_t *keyset;
static char device_id[FOTA_TUF_KEYID_HEX_LEN + 1];
static char director_keyid[FOTA_TUF_KEYID_HEX_LEN + 1];
static uint8_t *real_doc;
static size_t real_doc_len;

static void setup(void)
{
    uint8_t *buf;
    size_t len;
    json_t *obj = NULL;

    if (keyset != NULL)
        return;
    buf = fz_fixture_read("director.json", &len);
    if (fota_director_keys_parse(buf, len, &keyset) != FOTA_OK)
        fz_fail("fixture director.json does not parse");
    free(buf);
    if (fota_tuf_key_json(fz_fixture_key("device"), &obj) != FOTA_OK ||
        fota_tuf_keyid(obj, device_id) != FOTA_OK)
        fz_fail("fixture device key");
    json_decref(obj);
    obj = NULL;
    if (fota_tuf_key_json(fz_fixture_key("director"), &obj) != FOTA_OK ||
        fota_tuf_keyid(obj, director_keyid) != FOTA_OK)
        fz_fail("fixture director key");
    json_decref(obj);
    real_doc = fz_fixture_read("director-doc.json", &real_doc_len);
}

static void verify(const uint8_t *doc, size_t len, const json_t *ks, int64_t now)
{
    struct fota_director_decision d;
    fota_err err;

    err = fota_director_verify(doc, len, ks, device_id, NONCE, now, &d);
    fz_note("verify now=%lld: %s", (long long)now, fota_strerror(err));
    if (err != FOTA_OK)
        return;
    if (d.action == FOTA_DIRECTOR_INSTALL) {
        if (d.target[0] == '\0' || strnlen(d.target, sizeof(d.target)) == sizeof(d.target) ||
            d.version[0] == '\0' || d.rollout[0] == '\0')
            fz_fail("an install decision without a target, version or rollout");
    } else if (d.action == FOTA_DIRECTOR_STAY) {
        if (d.target[0] != '\0')
            fz_fail("a stay decision names a target");
    } else {
        fz_fail("unknown action %d", (int)d.action);
    }
    if (now > 0 && d.expires <= now)
        fz_fail("an expired document was accepted");
    if (fota_director_verify(doc, len, ks, OTHER_DEVICE, NONCE, now, &d) == FOTA_OK)
        fz_fail("a document for one device was accepted for another");
    if (fota_director_verify(doc, len, ks, device_id, OTHER_NONCE, now, &d) == FOTA_OK)
        fz_fail("a document was accepted with another nonce");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *ks = NULL, *v = NULL;

    if (size > INPUT_MAX)
        return 0;
    setup();

    if (fota_director_keys_parse(data, size, &ks) == FOTA_OK) {
        if (!json_is_object(json_object_get(ks, "keys")) ||
            json_integer_value(json_object_get(ks, "threshold")) < 1)
            fz_fail("a parsed key set without keys or threshold");
        verify(real_doc, real_doc_len, ks, 0);
        json_decref(ks);
    }

    verify(data, size, keyset, 0);
    verify(data, size, keyset, FZ_NOW);

    if (fota_json_parse(data, size, INPUT_MAX, FOTA_JSON_MAX_DEPTH, &v) == FOTA_OK &&
        json_is_object(json_object_get(v, "signed"))) {
        json_t *env = json_pack("{s:O,s:[]}", "signed", json_object_get(v, "signed"),
                                "signatures");
        char *text = NULL;

        if (env == NULL)
            fz_fail("out of memory");
        /* A "signed" with a real number has no canonical form: not signable. */
        if (fota_tuf_sign(env, fz_fixture_key("director"), director_keyid) == FOTA_OK)
            text = json_dumps(env, JSON_COMPACT);
        if (text != NULL) {
            verify((const uint8_t *)text, strlen(text), keyset, 0);
            verify((const uint8_t *)text, strlen(text), keyset, FZ_NOW);
        }
        free(text);
        json_decref(env);
    }
    json_decref(v);
    return 0;
}
