/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_DEVICES_H
#define FOTA_SERVER_DEVICES_H

/*
 * The device endpoints, /device/v1/ (server/devices.c). The protocol, with
 * every body, status code and check a device must make, is
 * docs/device-protocol.md. In short:
 *
 *   POST /device/v1/enrol         envelope signed by the key it enrols
 *        -> 202 {"device":id,"status":"pending"} | 200 "accepted"
 *   POST /device/v1/session       envelope signed by an accepted device
 *        -> 200 {"token":..,"expires":iso}
 *   POST /device/v1/checkin       Bearer token; -> 200 the signed Director document
 *   POST /device/v1/report        Bearer token; -> 204
 *   GET  /device/v1/director-key  -> 200 {"keys":{keyid:key},"threshold":1}
 *
 * Every refusal is a JSON error (http.h fota_resp_error) and stores nothing.
 * The handlers follow the http.h contract; the route table (routes.c) maps
 * method and path to them, so they are not called for other methods.
 */

#include <stdint.h>

#include "http.h"

struct fota_server;

void fota_dev_enrol(struct fota_req *req, struct fota_resp *resp);
void fota_dev_session(struct fota_req *req, struct fota_resp *resp);
void fota_dev_checkin(struct fota_req *req, struct fota_resp *resp);
void fota_dev_report(struct fota_req *req, struct fota_resp *resp);
void fota_dev_director_key(struct fota_req *req, struct fota_resp *resp);

/*
 * 1 when a device whose last answered check-in was at last_fresh counts as
 * fresh at now: it has checked in at least once (last_fresh != 0) and not
 * longer than the configured freshness_max_age ago. 0 otherwise: the device
 * is "possibly frozen" (an attacker holding back its answers, or a dead
 * device). Listings (api.c) use this for their "fresh" field and filter.
 */
int fota_device_is_fresh(int64_t last_fresh, int64_t now, const struct fota_server *srv);

#endif
