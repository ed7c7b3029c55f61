/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota key new | show, and the loaders every command uses to read key files:
 * a private key is a PEM file (ours, or one `openssl genpkey` wrote); a
 * public key is our .pub key object or, for convenience, a private PEM whose
 * public half is taken.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fota_posix.h"

static const char key_usage[] =
    "Usage: fota key new --type ed25519|ecdsa|rsa --out FILE [--json]\n"
    "       fota key show FILE [--json]\n"
    "\n"
    "Run 'fota key new --help' or 'fota key show --help' for details.\n";

static const char key_new_usage[] =
    "Usage: fota key new --type ed25519|ecdsa|rsa --out FILE [--json]\n"
    "\n"
    "Generate a signing key. Writes FILE, the private key as unencrypted\n"
    "PKCS#8 PEM (mode 0600), and FILE.pub, the TUF public key object. Refuses\n"
    "to overwrite either file. Prints the key id.\n"
    "\n"
    "  --type T    ed25519 (scheme ed25519), ecdsa (P-256, ecdsa-sha2-nistp256)\n"
    "              or rsa (3072 bits, rsassa-pss-sha256)\n"
    "  --out FILE  where to write the private key\n"
    "  --json      print {\"keyid\",\"type\",\"private\",\"public\"}\n";

static const char key_show_usage[] =
    "Usage: fota key show FILE [--json]\n"
    "\n"
    "Print the key id, keytype, scheme and public value of FILE, a private key\n"
    "PEM or a .pub key object.\n"
    "\n"
    "  --json      print {\"keyid\",\"keytype\",\"scheme\",\"public\",\"private\"}\n";

static int is_private_pem(const uint8_t *buf, size_t len)
{
    static const char marker[] = "PRIVATE KEY-----";
    size_t mlen = sizeof marker - 1;

    for (size_t i = 0; i + mlen <= len; i++) {
        if (memcmp(buf + i, marker, mlen) == 0)
            return 1;
    }
    return 0;
}

static int is_public_pem(const uint8_t *buf, size_t len)
{
    static const char marker[] = "-----BEGIN PUBLIC KEY-----";
    size_t mlen = sizeof marker - 1;

    return len >= mlen && memcmp(buf, marker, mlen) == 0;
}

static void report_read_error(const char *cmd, const char *path, fota_err err, int saved_errno)
{
    if (err == FOTA_E_IO && saved_errno != 0)
        cli_error(cmd, path, "%s", strerror(saved_errno));
    else if (err == FOTA_E_NOT_FOUND)
        cli_error(cmd, path, "no such file");
    else
        cli_error(cmd, path, "%s", fota_strerror(err));
}

static int privkey_from_buffer(const char *cmd, const char *path, const uint8_t *buf, size_t len,
                               struct cli_privkey *ret_key)
{
    struct cli_privkey k = {.path = path};
    fota_err err;

    err = fota_privkey_from_pem((const char *)buf, len, &k.key);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "not a usable private key: %s", fota_strerror(err));
        goto fail;
    }
    err = fota_tuf_key_json(k.key, &k.keyobj);
    if (err == FOTA_OK)
        err = fota_tuf_keyid(k.keyobj, k.keyid);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "cannot derive the public key: %s", fota_strerror(err));
        goto fail;
    }
    *ret_key = k;
    return CLI_OK;
fail:
    cli_privkey_clear(&k);
    return CLI_FAIL;
}

int cli_load_privkey(const char *cmd, const char *path, struct cli_privkey *ret_key)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int saved = 0;
    fota_err err;
    int status = CLI_FAIL;

    err = cli_read_file(path, CLI_MAX_KEYFILE, &buf, &len, &saved);
    if (err != FOTA_OK) {
        report_read_error(cmd, path, err, saved);
        goto out;
    }
    if (!is_private_pem(buf, len)) {
        cli_error(cmd, path, "not a private key PEM file");
        goto out;
    }
    status = privkey_from_buffer(cmd, path, buf, len, ret_key);
out:
    fota_secret_free(buf, len);
    return status;
}

void cli_privkey_clear(struct cli_privkey *key)
{
    fota_privkey_free(key->key);
    json_decref(key->keyobj);
    key->key = NULL;
    key->keyobj = NULL;
}

/* Rebuild a key object from its three TUF fields only, so that the key id
 * of a key is the same whether it came from a PEM or from a .pub file that
 * carries extra fields. */
static fota_err normalise_keyobj(const json_t *in, json_t **ret_keyobj)
{
    const json_t *keytype = json_object_get(in, "keytype");
    const json_t *scheme = json_object_get(in, "scheme");
    const json_t *keyval = json_object_get(in, "keyval");
    const json_t *pub = json_object_get(keyval, "public");
    json_t *out = NULL;
    fota_pubkey *key = NULL;
    fota_err err = FOTA_E_PARSE;

    if (!json_is_string(keytype) || !json_is_string(scheme) || !json_is_string(pub))
        goto done;
    out = json_pack("{s:O,s:O,s:{s:O}}", "keytype", keytype, "scheme", scheme, "keyval", "public",
                    pub);
    if (out == NULL) {
        err = FOTA_E_NOMEM;
        goto done;
    }
    err = fota_tuf_key_parse(out, &key);
    if (err != FOTA_OK)
        goto done;
    *ret_keyobj = out;
    out = NULL;
done:
    fota_pubkey_free(key);
    json_decref(out);
    return err;
}

int cli_load_pubkey(const char *cmd, const char *path, struct cli_pubkey *ret_key)
{
    struct cli_pubkey k = {.path = path};
    uint8_t *buf = NULL;
    size_t len = 0;
    int saved = 0;
    json_t *value = NULL;
    fota_err err;
    int status = CLI_FAIL;

    err = cli_read_file(path, CLI_MAX_KEYFILE, &buf, &len, &saved);
    if (err != FOTA_OK) {
        report_read_error(cmd, path, err, saved);
        goto out;
    }
    if (is_private_pem(buf, len)) {
        struct cli_privkey priv;

        status = privkey_from_buffer(cmd, path, buf, len, &priv);
        if (status != CLI_OK)
            goto out;
        k.keyobj = json_incref(priv.keyobj);
        memcpy(k.keyid, priv.keyid, sizeof k.keyid);
        cli_privkey_clear(&priv);
        *ret_key = k;
        k.keyobj = NULL;
        status = CLI_OK;
        goto out;
    }
    if (is_public_pem(buf, len)) {
        cli_error(cmd, path, "a PEM public key does not name its TUF scheme: use the .pub file "
                             "(fota key new) or the private key");
        goto out;
    }
    err = fota_json_parse(buf, len, CLI_MAX_KEYFILE, FOTA_JSON_MAX_DEPTH, &value);
    if (err == FOTA_OK && !json_is_object(value))
        err = FOTA_E_PARSE;
    if (err == FOTA_OK)
        err = normalise_keyobj(value, &k.keyobj);
    if (err == FOTA_OK)
        err = fota_tuf_keyid(k.keyobj, k.keyid);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "not a TUF public key object: %s", fota_strerror(err));
        goto out;
    }
    *ret_key = k;
    k.keyobj = NULL;
    status = CLI_OK;
out:
    json_decref(k.keyobj);
    json_decref(value);
    fota_secret_free(buf, len);
    return status;
}

void cli_pubkey_clear(struct cli_pubkey *key)
{
    json_decref(key->keyobj);
    key->keyobj = NULL;
}

/* Write a new key file, which must not exist yet: exclusive, so that a key
 * is never replaced, not even by a race with another writer. */
static int write_new_key_file(const char *cmd, const char *path, const void *buf, size_t len,
                              unsigned mode)
{
    fota_err err = fota_posix_write_file(path, buf, len, mode, FOTA_POSIX_NO_REPLACE);

    if (err == FOTA_OK)
        return CLI_OK;
    cli_error(cmd, path, "%s", err == FOTA_E_IO && errno == EEXIST
                                   ? "already exists; refusing to overwrite"
                                   : cli_io_reason(err));
    return CLI_FAIL;
}

static int key_new(int argc, char **argv)
{
    static const char *cmd = "key new";
    static const struct cli_optspec spec[] = {
        {"--type", CLI_OPT_VALUE | CLI_OPT_REQUIRED},
        {"--out", CLI_OPT_VALUE | CLI_OPT_REQUIRED},
        {"--json", CLI_OPT_FLAG},
    };
    struct cli_args args = {0};
    fota_key_type type;
    fota_privkey *key = NULL;
    json_t *keyobj = NULL;
    char keyid[FOTA_TUF_KEYID_HEX_LEN + 1];
    char *pem = NULL;
    size_t pem_len = 0;
    char *pub = NULL;
    size_t pub_len = 0;
    char *pub_path = NULL;
    const char *out_path;
    const char *keytype;
    fota_err err;
    int status;

    status = cli_parse(cmd, key_new_usage, spec, 3, argc, argv, 0, 0, &args);
    if (status != CLI_OK)
        return status;
    status = CLI_USAGE;
    if (strcmp(args.opt[0].value, "ed25519") == 0) {
        type = FOTA_KEY_ED25519;
    } else if (strcmp(args.opt[0].value, "ecdsa") == 0) {
        type = FOTA_KEY_ECDSA_P256;
    } else if (strcmp(args.opt[0].value, "rsa") == 0) {
        type = FOTA_KEY_RSA_PSS;
    } else {
        cli_error(cmd, "--type", "'%s' is not ed25519, ecdsa or rsa", args.opt[0].value);
        goto out;
    }
    out_path = args.opt[1].value;
    if (out_path[0] == '\0') {
        cli_error(cmd, "--out", "empty file name");
        goto out;
    }

    status = CLI_FAIL;
    pub_path = cli_pathf("%s.pub", out_path);
    if (pub_path == NULL) {
        cli_error(cmd, NULL, "out of memory");
        goto out;
    }
    /* Check both names before writing either, so that a refusal leaves
     * nothing behind; the exclusive writes below close the race. */
    if (cli_path_exists(out_path) || cli_path_exists(pub_path)) {
        cli_error(cmd, cli_path_exists(out_path) ? out_path : pub_path,
                  "already exists; refusing to overwrite");
        goto out;
    }

    err = fota_privkey_generate(type, &key);
    if (err == FOTA_OK)
        err = fota_privkey_to_pem(key, &pem, &pem_len);
    if (err == FOTA_OK)
        err = fota_tuf_key_json(key, &keyobj);
    if (err == FOTA_OK)
        err = fota_tuf_keyid(keyobj, keyid);
    if (err == FOTA_OK)
        err = cli_json_bytes(keyobj, 1, &pub, &pub_len);
    if (err != FOTA_OK) {
        cli_error(cmd, args.opt[0].value, "key generation failed: %s", fota_strerror(err));
        goto out;
    }
    keytype = json_string_value(json_object_get(keyobj, "keytype"));

    if (write_new_key_file(cmd, out_path, pem, pem_len, 0600) != CLI_OK)
        goto out;
    /* Both encoders leave room for one byte past the text (its NUL). */
    pub[pub_len] = '\n';
    status = write_new_key_file(cmd, pub_path, pub, pub_len + 1, 0644);
    pub[pub_len] = '\0';
    if (status != CLI_OK)
        goto out;

    if (args.opt[2].count > 0) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "keyid", keyid, "type", keytype, "private",
                              out_path, "public", pub_path);
        status = o != NULL ? cli_print_json(cmd, o) : CLI_FAIL;
        json_decref(o);
        goto out;
    }
    printf("wrote %s (%s private key, mode 0600)\n", out_path, keytype);
    printf("wrote %s (public key)\n", pub_path);
    printf("keyid %s\n", keyid);
    status = CLI_OK;
out:
    fota_secret_free(pem, pem_len);
    free(pub);
    free(pub_path);
    json_decref(keyobj);
    fota_privkey_free(key);
    cli_args_free(&args);
    return status;
}

static int key_show(int argc, char **argv)
{
    static const char *cmd = "key show";
    static const struct cli_optspec spec[] = {
        {"--json", CLI_OPT_FLAG},
    };
    struct cli_args args = {0};
    struct cli_pubkey key = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    int saved = 0;
    int is_private = 0;
    const char *keytype, *scheme, *public_value;
    int status;

    status = cli_parse(cmd, key_show_usage, spec, 1, argc, argv, 1, 1, &args);
    if (status != CLI_OK)
        return status;
    if (cli_read_file(args.pos[0], CLI_MAX_KEYFILE, &buf, &len, &saved) == FOTA_OK)
        is_private = is_private_pem(buf, len);
    fota_secret_free(buf, len);
    status = cli_load_pubkey(cmd, args.pos[0], &key);
    if (status != CLI_OK)
        goto out;
    keytype = json_string_value(json_object_get(key.keyobj, "keytype"));
    scheme = json_string_value(json_object_get(key.keyobj, "scheme"));
    public_value = json_string_value(json_object_get(json_object_get(key.keyobj, "keyval"),
                                                     "public"));
    if (args.opt[0].count > 0) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b}", "keyid", key.keyid, "keytype", keytype,
                              "scheme", scheme, "public", public_value, "private", is_private);
        status = o != NULL ? cli_print_json(cmd, o) : CLI_FAIL;
        json_decref(o);
        goto out;
    }
    printf("keyid:   %s\n", key.keyid);
    printf("keytype: %s\n", keytype);
    printf("scheme:  %s\n", scheme);
    printf("private: %s\n", is_private ? "yes" : "no (public key only)");
    printf("public:  %s%s", public_value,
           public_value[0] != '\0' && public_value[strlen(public_value) - 1] == '\n' ? "" : "\n");
out:
    cli_pubkey_clear(&key);
    cli_args_free(&args);
    return status;
}

int cli_cmd_key(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"new", key_new},
        {"show", key_show},
    };

    return cli_dispatch("key", key_usage, subs, sizeof subs / sizeof subs[0], argc, argv);
}

int cli_load_pubkeys(const char *cmd, const char *opt, const char *const *paths, size_t n,
                     struct cli_pubkey **ret_keys)
{
    struct cli_pubkey *keys = calloc(n > 0 ? n : 1, sizeof *keys);
    size_t loaded = 0;
    int status = CLI_FAIL;

    if (keys == NULL) {
        cli_error(cmd, NULL, "out of memory");
        goto out;
    }
    for (loaded = 0; loaded < n; loaded++) {
        status = cli_load_pubkey(cmd, paths[loaded], &keys[loaded]);
        if (status != CLI_OK)
            goto out;
        for (size_t j = 0; j < loaded; j++) {
            if (strcmp(keys[j].keyid, keys[loaded].keyid) == 0) {
                cli_error(cmd, opt, "%s and %s are the same key (%s)", paths[j], paths[loaded],
                          keys[j].keyid);
                loaded++;
                status = CLI_USAGE;
                goto out;
            }
        }
    }
    *ret_keys = keys;
    keys = NULL;
    status = CLI_OK;
out:
    if (keys != NULL)
        cli_pubkeys_free(keys, loaded);
    return status;
}

void cli_pubkeys_free(struct cli_pubkey *keys, size_t n)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cli_pubkey_clear(&keys[i]);
    free(keys);
}

int cli_load_privkeys(const char *cmd, const char *const *paths, size_t n,
                      struct cli_privkey **ret_keys)
{
    struct cli_privkey *keys = calloc(n > 0 ? n : 1, sizeof *keys);
    size_t loaded = 0;
    int status = CLI_FAIL;

    if (keys == NULL) {
        cli_error(cmd, NULL, "out of memory");
        goto out;
    }
    for (loaded = 0; loaded < n; loaded++) {
        status = cli_load_privkey(cmd, paths[loaded], &keys[loaded]);
        if (status != CLI_OK)
            goto out;
    }
    *ret_keys = keys;
    keys = NULL;
    status = CLI_OK;
out:
    if (keys != NULL)
        cli_privkeys_free(keys, loaded);
    return status;
}

void cli_privkeys_free(struct cli_privkey *keys, size_t n)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cli_privkey_clear(&keys[i]);
    free(keys);
}
