/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_agent_response: the agent's handling of what the server answers
 * (agent/proto.c: enrolment, session, check-in with the Director document,
 * reports, and the retries on 401 and 409) and of what its data directory
 * hands back after a restart (agent/state.c: state.json, download.json,
 * install.json).
 *
 * The agent core is linked as it is; only two functions are replaced at
 * link time (--wrap): fota_posix_http_request answers each request with
 * the next answer of the input instead of the network, and getrandom gives
 * the bytes 0..15, so the check-in nonce is the fixed
 * "000102030405060708090a0b0c0d0e0f" the seed Director documents echo. The
 * agent's identity is the fixture device key, its trusted root the fixture
 * root, its flash the v1 image in slot A.
 *
 * Input, answers in the order the agent asks: each "STATUS LENGTH\n" then
 * LENGTH bytes (status 0: no answer, a network failure). When the input
 * runs out, every further request fails as the network would. An input
 * that starts with "{" is instead written as each of the three state files
 * and loaded back.
 *
 * Per input: a fresh enrolment state, then agent_ensure_session (enrol,
 * session), agent_checkin (Director verification), agent_report.
 * Invariants: the counters stored before each request never go down; a
 * check-in accepted by the agent carries a decision that names a target
 * exactly when it says "install".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_internal.h"
#include "flash_file.h"
#include "fota/image_build.h"
#include "fuzz_common.h"

#define INPUT_MAX (1u << 20)
#define ANSWERS_MAX 64
#define SECTOR 4096u
#define SLOT_SIZE (2u * SECTOR)
#define FLASH_SIZE (2u * SECTOR + 2u * SLOT_SIZE)

/* ---- the network, as the input says ---------------------------------------- */

struct answer {
    long status;          /* 0: no answer */
    const uint8_t *body;
    size_t len;
};

static struct answer answers[ANSWERS_MAX];
static size_t n_answers, next_answer;

fota_err __wrap_fota_posix_http_request(struct fota_posix_http *h, const char *method,
                                        const char *url, const char *bearer, const void *body,
                                        size_t body_len, size_t max_resp, long *ret_status,
                                        uint8_t **ret_buf, size_t *ret_len);

fota_err __wrap_fota_posix_http_request(struct fota_posix_http *h, const char *method,
                                        const char *url, const char *bearer, const void *body,
                                        size_t body_len, size_t max_resp, long *ret_status,
                                        uint8_t **ret_buf, size_t *ret_len)
{
    const struct answer *a;
    uint8_t *buf;

    (void)method;
    (void)url;
    (void)bearer;
    (void)body;
    (void)body_len;
    h->errmsg[0] = '\0';
    if (next_answer >= n_answers || answers[next_answer].status == 0) {
        next_answer++;
        snprintf(h->errmsg, sizeof(h->errmsg), "no answer (fuzz input ran out)");
        return FOTA_E_NETWORK;
    }
    a = &answers[next_answer++];
    if (a->len > max_resp) {
        snprintf(h->errmsg, sizeof(h->errmsg), "answer over %zu bytes", max_resp);
        return FOTA_E_TOO_BIG;
    }
    buf = malloc(a->len + 1);
    if (buf == NULL)
        return FOTA_E_NOMEM;
    memcpy(buf, a->body, a->len);
    buf[a->len] = '\0';
    *ret_status = a->status;
    *ret_buf = buf;
    *ret_len = a->len;
    return FOTA_OK;
}

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned int flags);

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned int flags)
{
    (void)flags;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = (uint8_t)i;
    return (ssize_t)len;
}

/* "STATUS LENGTH\n" + LENGTH bytes, repeated. */
static void parse_answers(const uint8_t *data, size_t size)
{
    size_t off = 0;

    n_answers = 0;
    next_answer = 0;
    while (off < size && n_answers < ANSWERS_MAX) {
        const uint8_t *nl = memchr(data + off, '\n', size - off < 32 ? size - off : 32);
        char line[33];
        unsigned long status, len;
        char *end;

        if (nl == NULL)
            break;
        memcpy(line, data + off, (size_t)(nl - (data + off)));
        line[nl - (data + off)] = '\0';
        errno = 0;
        status = strtoul(line, &end, 10);
        if (errno != 0 || end == line || *end != ' ' || status > 999)
            break;
        len = strtoul(end + 1, &end, 10);
        if (errno != 0 || *end != '\0')
            break;
        off = (size_t)(nl - data) + 1;
        if (len > size - off)
            len = size - off;
        answers[n_answers].status = (long)status;
        answers[n_answers].body = data + off;
        answers[n_answers].len = len;
        n_answers++;
        off += len;
    }
}

/* ---- the device ----------------------------------------------------------------- */

static struct fota_agent *agent;
static struct fota_device dev;
static struct agent_view view;
static json_t *keyset;

static fota_err reboot_hook(void *ctx)
{
    (void)ctx;
    return FOTA_OK;
}

static void log_hook(void *ctx, enum fota_agent_log_level level, const char *event,
                     const char *line)
{
    (void)ctx;
    (void)level;
    fprintf(stderr, "agent %s: %s\n", event, line);
}

static void setup(void)
{
    static struct fota_flash_sim *sim;
    static struct fota_image_key key;
    static struct fota_image_signer signer;
    static uint8_t scratch[1024];
    static char data_dir[4200];
    struct fota_flash_geometry g = { FLASH_SIZE, SECTOR, 8, 0xff };
    struct fota_agent_config cfg;
    struct fota_agent_hooks hooks;
    uint8_t *buf;
    size_t len;
    char path[4400];
    fota_err err;

    if (agent != NULL)
        return;
    if (fota_posix_http_global_init() != FOTA_OK)
        fz_fail("curl");
    /* flash: the v1 image in slot A, factory boot state */
    if (fota_flash_mem_create(&g, &sim) != FOTA_OK ||
        fota_flash_default_layout(fota_flash_sim_dev(sim), SLOT_SIZE, dev.state, dev.slot) !=
            FOTA_OK)
        fz_fail("flash");
    buf = fz_fixture_read("images/a.img", &len);
    if (len > SLOT_SIZE || fota_flash_sim_poke(sim, dev.slot[0].off, buf, len) != FOTA_OK)
        fz_fail("slot");
    free(buf);
    if (fota_image_signer_init(fz_fixture_key("image"), &signer) != FOTA_OK)
        fz_fail("image key");
    key.key = signer.pub;
    memcpy(key.id, signer.id, 32);
    dev.keys = &key;
    dev.n_keys = 1;
    dev.threshold = 1;
    dev.hardware_id = "board-a";
    dev.scratch = scratch;
    dev.scratch_len = sizeof(scratch);

    /* data dir: the fixture root and the fixture device key */
    snprintf(data_dir, sizeof(data_dir), "%s/agent", fz_tmpdir());
    snprintf(path, sizeof(path), "%s/tuf", data_dir);
    if (mkdir(data_dir, 0700) != 0 || mkdir(path, 0700) != 0)
        fz_fail("mkdir");
    snprintf(path, sizeof(path), "%s/tuf/root.json", data_dir);
    if (fz_copy_tree(fz_fixture_path("repo/metadata/1.root.json"), path) != 0)
        fz_fail("root");
    snprintf(path, sizeof(path), "%s/identity.pem", data_dir);
    if (fz_copy_tree(fz_fixture_path("keys/device.pem"), path) != 0)
        fz_fail("identity");

    memset(&cfg, 0, sizeof(cfg));
    cfg.server_url = "http://fuzz.invalid:1";
    cfg.data_dir = data_dir;
    cfg.hardware_id = "board-a";
    cfg.dev = &dev;
    cfg.durable = 0;
    memset(&hooks, 0, sizeof(hooks));
    hooks.reboot = reboot_hook;
    if (getenv("FOTA_FUZZ_VERBOSE") != NULL)
        hooks.log = log_hook;
    err = fota_agent_open(&cfg, &hooks, &agent);
    if (err != FOTA_OK)
        fz_fail("fota_agent_open: %s", fota_strerror(err));
    if (agent_view_load(agent, 0, &view) != FOTA_OK)
        fz_fail("agent_view_load");
    buf = fz_fixture_read("director.json", &len);
    if (fota_director_keys_parse(buf, len, &keyset) != FOTA_OK)
        fz_fail("director.json");
    free(buf);
}

/* The input as each state file, loaded back. */
static void state_files(const uint8_t *data, size_t size)
{
    static const char *const files[] = { "state.json", "download.json", "install.json" };
    struct agent_download d;
    struct agent_install in;

    for (size_t i = 0; i < 3; i++) {
        if (agent_write_file(agent, files[i], data, size, 0600) != FOTA_OK)
            fz_fail("cannot write %s", files[i]);
    }
    (void)agent_state_load(agent);
    if (agent_download_load(agent, &d) == FOTA_OK &&
        (d.slot < 0 || d.slot > 1 || d.offset > d.length ||
         strnlen(d.target, sizeof(d.target)) == sizeof(d.target)))
        fz_fail("download.json loaded out of range");
    if (agent_install_load(agent, &in) == FOTA_OK &&
        (in.slot < 0 || in.slot > 1 || (unsigned)in.stage > STAGE_ROLLED_BACK))
        fz_fail("install.json loaded out of range");
    for (size_t i = 0; i < 3; i++)
        (void)agent_remove_file(agent, files[i]);
}

/* What state.json holds must be what the agent holds (counters are stored
 * before the request that carries them), and counters never go down. */
static void check_counters(struct agent_state *prev)
{
    struct agent_state mem = agent->st;

    if (mem.seq < prev->seq || mem.session_counter < prev->session_counter)
        fz_fail("a counter went down");
    if (agent_state_load(agent) != FOTA_OK || agent->st.seq != mem.seq ||
        agent->st.session_counter != mem.session_counter)
        fz_fail("state.json does not hold the counters in use");
    agent->st = mem;
    *prev = mem;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fota_agent_cycle_info info;
    struct fota_director_decision d;
    struct agent_state prev;

    if (size > INPUT_MAX)
        return 0;
    setup();
    if (size > 0 && data[0] == '{') {
        state_files(data, size);
        return 0;
    }
    parse_answers(data, size);
    memset(&info, 0, sizeof(info));
    memset(&agent->st, 0, sizeof(agent->st));
    if (agent_state_store(agent) != FOTA_OK)
        fz_fail("cannot store state.json");
    fota_wipe(agent->token, sizeof(agent->token));
    agent->token_expires = 0;
    agent->info = &info;
    agent->view = &view;
    prev = agent->st;

    if (agent_ensure_session(agent, &view) == FOTA_OK) {
        check_counters(&prev);
        memset(&d, 0, sizeof(d));
        if (agent_checkin(agent, &view, keyset, &d) == FOTA_OK) {
            if (d.action == FOTA_DIRECTOR_INSTALL ? d.target[0] == '\0'
                                                  : d.action != FOTA_DIRECTOR_STAY ||
                                                        d.target[0] != '\0')
                fz_fail("the agent accepted a decision that does not add up");
        }
    }
    check_counters(&prev);
    fz_note("outcome: %s %s %s", fota_agent_result_name(info.result), fota_strerror(info.reason),
            info.detail);
    (void)agent_report(agent, "downloading", "fw/board-a-2.0.0.img", "2.0.0", NULL, NULL);
    check_counters(&prev);
    agent->info = NULL;
    agent->view = NULL;
    return 0;
}
