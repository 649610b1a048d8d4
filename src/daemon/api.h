/* Routing and handlers of the HTTP API (documented in docs/api.md). */
#pragma once

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>

#include "job/manager.h"
#include "shared/config.h"

#define API_BODY_MAX (1 << 20)

struct conn_deadline;

struct api {
	struct job_manager *jm;
	const struct cd_config *cfg;
	struct conn_deadline *deadline; /* for reading requests; NULL: none */
	json_t *recovered;              /* what the start-up cleaned (recover.h), for check */
};

/* Per-request state, kept in MHD's con_cls. */
struct api_request {
	struct job_caller caller;
	gid_t *groups; /* caller.groups */
	char *body;
	size_t body_len;
	bool too_large;
	char jid[128]; /* for attach: the job the upgraded socket goes to */
};

/* The request body as a JSON object (an empty body is {}). Like the decoder
 * below, callable without a server (tests/fuzz/fuzz_api_body.c). */
int api_parse_body(const struct api_request *req, json_t **ret, cd_err *err);
/* The body of POST /run: options borrowing the body's strings; the caller
 * frees o->argv and o->envp. */
int api_run_opts_from_json(json_t *body, struct job_run_opts *o, cd_err *err);

enum MHD_Result api_dispatch(struct api *api, struct MHD_Connection *conn, const char *method,
                             const char *url, struct api_request *req);
