/* The CLI's side of the API: one JSON request to the daemon (HTTP/1.1 over
 * the unix socket, or tcp), and the attach stream. */
#pragma once

#include <jansson.h>

#include "shared/config.h"
#include "shared/error.h"

/* Sends body (may be NULL; not consumed) and returns the parsed JSON reply
 * in *ret (may be NULL). An error reply's message becomes err, with ENOENT,
 * EPERM, EEXIST or EINVAL for 404, 403, 409 and 400. */
int client_call(const struct cd_config *cfg, const char *method, const char *path, json_t *body,
                json_t **ret, cd_err *err);

/* A connected socket to a unix socket path or host:port, or -errno. */
int client_connect_unix(const char *path);
int client_connect_tcp(const char *address);

/* A job id made safe for a URL path (malloc'd). */
char *client_escape(const char *s);

/* Attaches the terminal to a job. Returns 0 with *ret_exit set to the
 * job's exit code when it ends, or 0 with *ret_detached when the user
 * detached with Ctrl-C. */
int client_attach(const struct cd_config *cfg, const char *jid, int *ret_exit, bool *ret_detached,
                  cd_err *err);
