#include "daemon/api.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "daemon/mhd-dl.h"
#include "daemon/check.h"
#include "daemon/cr.h"
#include "daemon/fields.h"
#include "daemon/incr.h"
#include "daemon/op.h"
#include "job/checkpoint.h"
#include "job/codec.h"
#include "shared/cleanup.h"
#include "shared/log.h"

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len;

	json_decref(body);
	if (!text)
		return MHD_NO;
	len = strlen(text);
	/* a trailing newline keeps `curl --unix-socket` output tidy */
	text[len] = '\n';
	resp = MHD_create_response_from_buffer(len + 1, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static unsigned errno_to_status(int code)
{
	switch (code) {
	case ENOENT:
	case ESRCH:
		return MHD_HTTP_NOT_FOUND;
	case EPERM:
	case EACCES:
		return MHD_HTTP_FORBIDDEN;
	case EEXIST:
	case EBUSY:
		return MHD_HTTP_CONFLICT;
	case EINVAL:
	case E2BIG:
	case EPROTO:
		return MHD_HTTP_BAD_REQUEST;
	default:
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

static enum MHD_Result send_error(struct MHD_Connection *conn, const cd_err *err)
{
	unsigned status = errno_to_status(err->code);

	if (status == MHD_HTTP_INTERNAL_SERVER_ERROR)
		log_warn("request failed: %s", err->msg);
	return send_json(conn, status, json_pack("{s:s}", "error", err->msg));
}

static enum MHD_Result send_result(struct MHD_Connection *conn, int r, unsigned status,
                                   json_t *body, const cd_err *err)
{
	if (r < 0) {
		json_decref(body);
		return send_error(conn, err);
	}
	return send_json(conn, status, body);
}

int api_parse_body(const struct api_request *req, json_t **ret, cd_err *err)
{
	json_error_t jerr;
	json_t *body;

	if (req->too_large)
		return cd_err_set(err, E2BIG, "request body larger than %d bytes", API_BODY_MAX);
	body = req->body_len ? json_loadb(req->body, req->body_len, 0, &jerr) : json_object();
	if (!body)
		return cd_err_set(err, EINVAL, "malformed JSON body: %s", jerr.text);
	if (!json_is_object(body)) {
		json_decref(body);
		return cd_err_set(err, EINVAL, "the body must be a JSON object");
	}
	*ret = body;
	return 0;
}

int api_run_opts_from_json(json_t *body, struct job_run_opts *o, cd_err *err)
{
	json_int_t rows = 0, cols = 0;
	int r;

	r = field_strings(body, "args", true, &o->argv, err);
	if (r == 0)
		r = field_strings(body, "env", false, &o->envp, err);
	if (r == 0)
		r = field_string(body, "jid", &o->jid, err);
	if (r == 0)
		r = field_string(body, "cwd", &o->cwd, err);
	if (r == 0)
		r = field_string(body, "out", &o->out, err);
	if (r == 0)
		r = field_bool(body, "attachable", &o->attachable, err);
	if (r == 0)
		r = field_bool(body, "as_root", &o->as_root, err);
	if (r == 0)
		r = field_int(body, "rows", 0, USHRT_MAX, &rows, err);
	if (r == 0)
		r = field_int(body, "cols", 0, USHRT_MAX, &cols, err);
	if (r < 0)
		return r;
	o->rows = (unsigned short)rows;
	o->cols = (unsigned short)cols;
	if (o->cwd && o->cwd[0] != '/')
		return cd_err_set(err, EINVAL, "\"cwd\" must be an absolute path");
	if (o->out && o->out[0] != '/')
		return cd_err_set(err, EINVAL, "\"out\" must be an absolute path");
	return 0;
}

static enum MHD_Result handle_run(struct api *api, struct MHD_Connection *conn,
                                  struct api_request *req)
{
	struct job_run_opts o = {0};
	json_t *body = NULL, *job = NULL;
	static char *empty_env[] = {NULL};
	cd_err err = {0};
	int r;

	r = api_parse_body(req, &body, &err);
	if (r == 0)
		r = api_run_opts_from_json(body, &o, &err);
	if (r == 0) {
		if (!o.envp)
			o.envp = empty_env;
		r = job_manager_run(api->jm, &req->caller, &o, &job, &err);
		if (r == 0)
			log_info("job %s started (pid %d) for uid %u",
			         json_string_value(json_object_get(job, "jid")),
			         (int)json_integer_value(json_object_get(job, "pid")),
			         (unsigned)req->caller.uid);
	}
	free(o.argv);
	if (o.envp != empty_env)
		free(o.envp);
	json_decref(body);
	return send_result(conn, r, MHD_HTTP_CREATED, job, &err);
}

static enum MHD_Result handle_manage(struct api *api, struct MHD_Connection *conn,
                                     struct api_request *req)
{
	json_t *body = NULL, *job = NULL;
	const char *jid = NULL;
	json_int_t pid = 0;
	cd_err err = {0};
	int r;

	r = api_parse_body(req, &body, &err);
	if (r == 0)
		r = field_int_required(body, "pid", 1, INT_MAX, &pid, &err);
	if (r == 0)
		r = field_string(body, "jid", &jid, &err);
	if (r == 0)
		r = job_manager_manage(api->jm, &req->caller, (pid_t)pid, jid, &job, &err);
	json_decref(body);
	return send_result(conn, r, MHD_HTTP_CREATED, job, &err);
}

static enum MHD_Result handle_list(struct api *api, struct MHD_Connection *conn,
                                   struct api_request *req)
{
	json_t *jobs = NULL;
	long long pid = 0;
	cd_err err = {0};
	int r;

	r = query_int(conn, "pid", 1, INT_MAX, &pid, &err);
	if (r == 0)
		r = job_manager_list(api->jm, &req->caller, (pid_t)pid, &jobs, &err);
	return send_result(conn, r, MHD_HTTP_OK, r < 0 ? NULL : json_pack("{s:o}", "jobs", jobs),
	                   &err);
}

static enum MHD_Result handle_kill(struct api *api, struct MHD_Connection *conn,
                                   struct api_request *req, const char *jid)
{
	json_t *body = NULL, *job = NULL;
	json_int_t sig = SIGKILL;
	cd_err err = {0};
	int r;

	r = api_parse_body(req, &body, &err);
	if (r == 0)
		r = field_int(body, "signal", 1, NSIG - 1, &sig, &err);
	if (r == 0)
		r = job_manager_kill(api->jm, &req->caller, jid, (int)sig, &job, &err);
	json_decref(body);
	return send_result(conn, r, MHD_HTTP_OK, job, &err);
}

static void upgraded_close(void *urh)
{
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
	struct api *api = cls;
	struct api_request *req = con_cls;
	struct timeval stuck = {.tv_sec = 10};
	cd_err err = {0};

	/* the relay writes whole frames with blocking writes; a client that
	 * stops reading is dropped rather than stalling the relay */
	fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) & ~O_NONBLOCK);
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &stuck, sizeof(stuck));
	if (job_manager_attach(api->jm, req->jid, sock, extra_in, extra_in_size, upgraded_close,
	                       urh, &err) < 0)
		log_warn("attach %s: %s", req->jid, err.msg);
}

static enum MHD_Result handle_attach(struct api *api, struct MHD_Connection *conn,
                                     struct api_request *req, const char *jid)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	cd_err err = {0};

	if (job_manager_attach_check(api->jm, &req->caller, jid, &err) < 0)
		return send_error(conn, &err);
	if (!MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE)) {
		cd_err_set(&err, EINVAL,
		           "attach needs \"Connection: Upgrade\" and "
		           "\"Upgrade: cedana-attach\" headers");
		return send_error(conn, &err);
	}
	snprintf(req->jid, sizeof(req->jid), "%s", jid);
	resp = MHD_create_response_for_upgrade(on_upgraded, api);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "cedana-attach");
	ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle_health(struct api *api, struct MHD_Connection *conn)
{
	bool full = false;
	json_t *checks;
	cd_err err = {0};

	if (query_bool(conn, "full", &full, &err) < 0)
		return send_error(conn, &err);
	checks = check_run(api->jm, api->cfg, api->recovered, full);
	return send_json(conn, MHD_HTTP_OK,
	                 json_pack("{s:s, s:i, s:o}", "version", CEDANA_VERSION, "pid",
	                           (int)getpid(), "checks", checks));
}

/* POST /v1/dump and /v1/restore: a JSON body in, a JSON object out. */
static enum MHD_Result handle_cr(struct api *api, struct MHD_Connection *conn,
                                 struct api_request *req, bool dump)
{
	json_t *body = NULL, *reply = NULL;
	cd_err err = {0};
	int r;

	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	int client_fd = ci ? ci->connect_fd : -1;

	r = api_parse_body(req, &body, &err);
	if (r == 0 && dump)
		r = cr_dump(api, &req->caller, client_fd, body, &reply, &err);
	else if (r == 0)
		r = cr_restore(api, &req->caller, client_fd, body, &reply, &err);
	json_decref(body);
	return send_result(conn, r, dump ? MHD_HTTP_OK : MHD_HTTP_CREATED, reply, &err);
}

static enum MHD_Result handle_checkpoints(struct api *api, struct MHD_Connection *conn,
                                          struct api_request *req, const char *jid)
{
	json_t *list = NULL;
	cd_err err = {0};
	int r;

	r = job_manager_checkpoints(api->jm, &req->caller, jid, &list, &err);
	return send_result(conn, r, MHD_HTTP_OK,
	                   r < 0 ? NULL : json_pack("{s:o}", "checkpoints", list), &err);
}

/* /v1/checkpoints/ID: GET shows one, DELETE removes files and record. */
static enum MHD_Result dispatch_checkpoint(struct api *api, struct MHD_Connection *conn,
                                           const char *method, const char *id,
                                           struct api_request *req)
{
	struct db_checkpoint cp;
	json_t *reply = NULL;
	cd_err err = {0};
	int r;

	if (strcmp(method, "GET") == 0) {
		r = job_manager_checkpoint_get(api->jm, &req->caller, id, &cp, &err);
		if (r == 0) {
			reply = job_checkpoint_to_json(&cp);
			db_checkpoint_clear(&cp);
		}
		return send_result(conn, r, MHD_HTTP_OK, reply, &err);
	}
	if (strcmp(method, "DELETE") == 0) {
		r = cr_checkpoint_delete(api, &req->caller, id, &err);
		if (r == 0)
			log_info("checkpoint %s deleted", id);
		return send_result(conn, r, MHD_HTTP_OK, json_pack("{s:s}", "deleted", id), &err);
	}
	return MHD_NO;
}

/* GET /v1/ops/ID: progress of a dump or restore in flight. */
static enum MHD_Result handle_op(struct MHD_Connection *conn, const char *id)
{
	json_t *p = op_progress_json(id);
	cd_err err = {0};

	if (!p) {
		cd_err_set(&err, ENOENT, "no operation %s in flight", id);
		return send_error(conn, &err);
	}
	return send_json(conn, MHD_HTTP_OK, p);
}

/* /v1/jobs/JID[/ACTION]: splits into jid and action (NULL when none). */
static bool split_job_url(const char *url, char *jid, size_t len, const char **ret_action)
{
	const char *rest = url + strlen("/v1/jobs/");
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);

	if (n == 0 || n >= len)
		return false;
	memcpy(jid, rest, n);
	jid[n] = '\0';
	*ret_action = slash ? slash + 1 : NULL;
	return true;
}

static enum MHD_Result dispatch_job(struct api *api, struct MHD_Connection *conn,
                                    const char *method, const char *url, struct api_request *req)
{
	const char *action;
	char jid[128];
	json_t *job = NULL;
	cd_err err = {0};
	int r;

	if (!split_job_url(url, jid, sizeof(jid), &action))
		return MHD_NO;
	if (!action && strcmp(method, "GET") == 0) {
		r = job_manager_get(api->jm, &req->caller, jid, &job, &err);
		return send_result(conn, r, MHD_HTTP_OK, job, &err);
	}
	if (!action && strcmp(method, "DELETE") == 0) {
		r = job_manager_delete(api->jm, &req->caller, jid, &err);
		if (r == 0)
			incr_drop(jid); /* its dirty-page trackers, if any */
		if (r == 0)
			log_info("job %s deleted", jid);
		return send_result(conn, r, MHD_HTTP_OK, json_pack("{s:s}", "deleted", jid), &err);
	}
	if (action && strcmp(action, "kill") == 0 && strcmp(method, "POST") == 0)
		return handle_kill(api, conn, req, jid);
	if (action && strcmp(action, "attach") == 0 && strcmp(method, "GET") == 0)
		return handle_attach(api, conn, req, jid);
	if (action && strcmp(action, "checkpoints") == 0 && strcmp(method, "GET") == 0)
		return handle_checkpoints(api, conn, req, jid);
	return MHD_NO;
}

static enum MHD_Result route(struct api *api, struct MHD_Connection *conn, const char *method,
                             const char *url, struct api_request *req)
{
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

	if (strcmp(url, "/v1/health") == 0 && get)
		return handle_health(api, conn);
	if (strcmp(url, "/v1/jobs") == 0 && get)
		return handle_list(api, conn, req);
	if (strcmp(url, "/v1/jobs") == 0 && post)
		return handle_run(api, conn, req);
	if (strcmp(url, "/v1/manage") == 0 && post)
		return handle_manage(api, conn, req);
	if (strncmp(url, "/v1/jobs/", strlen("/v1/jobs/")) == 0)
		return dispatch_job(api, conn, method, url, req);
	if (strcmp(url, "/v1/dump") == 0 && post)
		return handle_cr(api, conn, req, true);
	if (strcmp(url, "/v1/restore") == 0 && post)
		return handle_cr(api, conn, req, false);
	if (strncmp(url, "/v1/checkpoints/", strlen("/v1/checkpoints/")) == 0 &&
	    url[strlen("/v1/checkpoints/")])
		return dispatch_checkpoint(api, conn, method, url + strlen("/v1/checkpoints/"),
		                           req);
	if (strncmp(url, "/v1/ops/", strlen("/v1/ops/")) == 0 && get)
		return handle_op(conn, url + strlen("/v1/ops/"));
	return MHD_NO;
}

enum MHD_Result api_dispatch(struct api *api, struct MHD_Connection *conn, const char *method,
                             const char *url, struct api_request *req)
{
	cd_err err = {0};

	/* left undecoded by the server's unescaper: see there */
	if (strstr(url, "%00")) {
		cd_err_set(&err, EINVAL, "the URL must not hold %%00 (a NUL byte)");
		return send_error(conn, &err);
	}
	if (route(api, conn, method, url, req) == MHD_YES)
		return MHD_YES;
	cd_err_set(&err, ENOENT, "no such endpoint: %s %s", method, url);
	return send_error(conn, &err);
}
