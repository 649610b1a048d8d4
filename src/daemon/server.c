#include "daemon/daemon.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/mhd-dl.h"
#include "daemon/api.h"
#include "daemon/recover.h"
#include "daemon/conn-deadline.h"
#include "daemon/conn-limit.h"
#include "daemon/shutdown.h"
#include "shared/cleanup.h"
#include "shared/log.h"

extern char **environ;

/* Refuses to take over a socket another daemon is still serving; removes a stale one. */
static int unix_claim(const struct sockaddr_un *sa, cd_err *err)
{
	_cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (probe >= 0 && connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return cd_err_set(err, EADDRINUSE, "a daemon is already listening on %s",
		                  sa->sun_path);
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return cd_err_sys(err, errno, "remove stale socket %s", sa->sun_path);
	return 0;
}

static int listen_unix(const char *path, cd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return cd_err_set(err, ENAMETOOLONG, "socket path %s is longer than %zu bytes",
		                  path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	r = unix_claim(&sa, err);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cd_err_sys(err, errno, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return cd_err_sys(err, errno, "bind %s", path);
	/* every local user may connect; each request is authorised by SO_PEERCRED */
	if (chmod(path, 0666) < 0 || listen(fd, 64) < 0) {
		r = cd_err_sys(err, errno, "listen on %s", sa.sun_path);
		unlink(path);
		return r;
	}
	return TAKE_FD(fd);
}

static int listen_tcp(const char *address, cd_err *err)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	_cleanup_free_ char *host = strdup(address);
	struct addrinfo *res;
	char *colon;
	int fd, one = 1, rc;

	if (!host)
		return cd_err_sys(err, ENOMEM, "address");
	colon = strrchr(host, ':');
	if (!colon)
		return cd_err_set(err, EINVAL, "tcp address %s: expected HOST:PORT", address);
	*colon = '\0';
	rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (rc != 0)
		return cd_err_set(err, EINVAL, "tcp address %s: %s", address, gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return cd_err_sys(err, e, "listen on %s", address);
	}
	freeaddrinfo(res);
	return fd;
}

/* unix sockets carry the caller's credentials; tcp ones do not, and tcp
 * callers act as root (see docs/api.md). -EPERM when a unix socket's
 * credentials cannot be read: the caller is then nobody we may act for. */
/* The supplementary groups the peer had when it connected; malloc'd. */
static int peer_groups(int fd, gid_t **ret, int *ret_n)
{
	socklen_t len = 0;
	gid_t *groups;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, NULL, &len) == 0 || errno != ERANGE) {
		*ret = NULL;
		*ret_n = 0;
		return 0; /* none */
	}
	groups = malloc(len ? len : 1);
	if (!groups)
		return -ENOMEM;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		int e = errno;

		free(groups);
		return -e;
	}
	*ret = groups;
	*ret_n = (int)(len / sizeof(gid_t));
	return 0;
}

static int peer_caller(struct MHD_Connection *conn, struct api_request *req)
{
	struct job_caller *caller = &req->caller;
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	memset(caller, 0, sizeof(*caller));
	if (!info || getsockname(info->connect_fd, (struct sockaddr *)&sa, &salen) < 0)
		return -EPERM;
	if (sa.ss_family != AF_UNIX)
		return 0;
	if (getsockopt(info->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -EPERM;
	caller->uid = cred.uid;
	caller->gid = cred.gid;
	caller->pid = cred.pid;
	if (peer_groups(info->connect_fd, &req->groups, &caller->ngroups) < 0)
		return -EPERM;
	caller->groups = req->groups;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct api_request *req = *con_cls;
	struct api *api = cls;

	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		if (peer_caller(conn, req) < 0) {
			log_warn("%s %s: cannot read the caller's credentials: refused", method,
			         url);
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		char *grown;

		*upload_data_size = 0;
		if (req->too_large || req->body_len + n > API_BODY_MAX) {
			req->too_large = true;
			return MHD_YES;
		}
		grown = realloc(req->body, req->body_len + n);
		if (!grown)
			return MHD_NO;
		memcpy(grown + req->body_len, upload_data, n);
		req->body = grown;
		req->body_len += n;
		return MHD_YES;
	}
	log_debug("%s %s from uid %u", method, url, (unsigned)req->caller.uid);
	/* the idle timeout and the deadline are for reading a request, never
	 * for running one */
	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
	conn_deadline_arm(api->deadline, conn, false);
	return api_dispatch(api, conn, method, url, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
	struct api_request *req = *con_cls;
	struct api *api = cls;

	/* waiting for the next request on a kept-alive connection is idle
	 * again, and that request is read under a deadline; an attach stream
	 * (jid set) is neither */
	if (code == MHD_REQUEST_TERMINATED_COMPLETED_OK && !(req && req->jid[0])) {
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
		                          (unsigned)CONN_IDLE_TIMEOUT_S);
		conn_deadline_arm(api->deadline, conn, true);
	}
	if (req) {
		free(req->groups);
		free(req->body);
		free(req);
		*con_cls = NULL;
	}
}

/* "%00" would decode to a NUL that cuts the URL or a query value short
 * ("/v1/jobs/a%00b" would act on job a): a string holding it is left as
 * it came, which api_dispatch and the strict query parsers refuse. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	if (strstr(s, "%00"))
		return strlen(s);
	return MHD_http_unescape(s);
}

/* Who may connect (conn_limit), and how long they may take to send a request. */
struct conn_watch {
	struct conn_limit limit;
	struct conn_deadline deadline;
};

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct conn_watch *w = cls;

	conn_limit_notify(&w->limit, conn, socket_context, toe);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		conn_deadline_add(&w->deadline, conn);
	else
		conn_deadline_remove(&w->deadline, conn);
}

static int signals_block(int *ret_fd, cd_err *err)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	/* blocked before any thread starts, so every thread inherits the mask */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return cd_err_sys(err, errno, "sigprocmask");
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "signalfd");
	signal(SIGPIPE, SIG_IGN);
	*ret_fd = fd;
	return 0;
}

static void serve(int sigfd, struct job_manager *jm)
{
	struct signalfd_siginfo si;

	job_manager_reap(jm);
	for (;;) {
		ssize_t n = read(sigfd, &si, sizeof(si));

		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(si)) {
			log_error("signalfd: %m");
			return;
		}
		if (si.ssi_signo == SIGCHLD) {
			job_manager_reap(jm);
			continue;
		}
		log_info("received %s: shutting down, jobs keep running", strsignal(si.ssi_signo));
		return;
	}
}

static int open_listener(const struct cd_config *cfg, cd_err *err)
{
	if (strcmp(cfg->protocol, "tcp") == 0)
		return listen_tcp(cfg->address, err);
	return listen_unix(cfg->address, err);
}

static int conn_watch_start(struct conn_watch *w, cd_err *err)
{
	unsigned seconds;
	int r;

	r = conn_deadline_seconds(environ, &seconds, err);
	if (r == 0)
		r = conn_deadline_start(&w->deadline, seconds, err);
	if (r == 0)
		conn_limit_init(&w->limit);
	return r;
}

static void conn_watch_stop(struct conn_watch *w)
{
	conn_deadline_stop(&w->deadline);
	conn_limit_destroy(&w->limit);
}

static struct MHD_Daemon *start_http(struct api *api, struct conn_watch *w, int fd)
{
	/* a thread per connection: a dump or restore takes seconds and must not
	 * hold up ps, or the progress polls of its own client */
	return MHD_start_daemon(
	    MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	        MHD_USE_ITC | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG,
	    0, NULL, NULL, on_request, api, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, api, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, w, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_IDLE_TIMEOUT_S,
	    MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
}

int daemon_run(const struct cd_config *cfg, cd_err *err)
{
	struct api api = {.cfg = cfg};
	struct conn_watch watch;
	_cleanup_close_ int sigfd = -1;
	struct MHD_Daemon *mhd;
	int fd, r;

	r = daemon_mhd_load(err);
	if (r == 0)
		r = signals_block(&sigfd, err);
	if (r < 0)
		return r;
	/* restored process trees and orphaned job children become ours to reap */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return cd_err_sys(err, errno, "PR_SET_CHILD_SUBREAPER");
	r = job_manager_new(cfg->db_path, cfg->job_log_dir, &api.jm, err);
	if (r < 0)
		return r;
	api.recovered = recover_inflight(api.jm);
	fd = open_listener(cfg, err);
	if (fd >= 0 && (r = conn_watch_start(&watch, err)) < 0) {
		close(fd);
		fd = r;
	}
	if (fd < 0) {
		job_manager_free(api.jm);
		json_decref(api.recovered);
		return fd;
	}
	api.deadline = &watch.deadline;
	mhd = start_http(&api, &watch, fd);
	if (!mhd) {
		conn_watch_stop(&watch);
		close(fd);
		job_manager_free(api.jm);
		json_decref(api.recovered);
		return cd_err_set(err, EIO, "start the HTTP server on %s", cfg->address);
	}
	log_info("cedana daemon %s listening on %s (%s), db %s", CEDANA_VERSION, cfg->address,
	         cfg->protocol, cfg->db_path);
	if (strcmp(cfg->protocol, "tcp") == 0)
		log_warn("tcp carries no credentials: EVERY client that reaches %s acts as ROOT; "
		         "listen on a loopback address or a trusted network only",
		         cfg->address);
	serve(sigfd, api.jm);
	job_manager_detach_all(api.jm);
	daemon_shutdown(mhd, sigfd, api.jm);
	if (strcmp(cfg->protocol, "unix") == 0)
		unlink(cfg->address);
	job_manager_free(api.jm);
	json_decref(api.recovered);
	conn_watch_stop(&watch);
	log_info("daemon stopped");
	return 0;
}
