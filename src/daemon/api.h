/* Routing and handlers of the HTTP API (documented in docs/api.md). */
#pragma once

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

enum MHD_Result api_dispatch(struct api *api, struct MHD_Connection *conn, const char *method,
                             const char *url, struct api_request *req);
