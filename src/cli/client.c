#include "cli/client.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "shared/cleanup.h"

/* RFC 3986 unreserved characters stay; every other byte is %XX. */
char *client_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			*o++ = (char)*p;
			continue;
		}
		*o++ = '%';
		*o++ = hex[*p >> 4];
		*o++ = hex[*p & 15];
	}
	*o = '\0';
	return out;
}

/* The hint names the address when it is not the default, so that copying
 * it starts a daemon where this CLI looks. */
static int unreachable(const struct cd_config *cfg, cd_err *err)
{
	bool tcp = strcmp(cfg->protocol, "tcp") == 0;
	bool dflt = !tcp && strcmp(cfg->address, CONFIG_DEFAULT_SOCK) == 0;

	return cd_err_set(err, ECONNREFUSED,
	                  "cannot reach the daemon at %s: is it running? start it with: sudo "
	                  "cedana daemon start%s%s%s",
	                  cfg->address, tcp ? " --protocol tcp" : "", dflt ? "" : " --address ",
	                  dflt ? "" : cfg->address);
}

static int status_errno(long status)
{
	switch (status) {
	case 400:
		return EINVAL;
	case 403:
		return EPERM;
	case 404:
		return ENOENT;
	case 409:
		return EEXIST;
	default:
		return EIO;
	}
}

static int reply_error(long status, json_t *reply, cd_err *err)
{
	const char *msg = json_string_value(json_object_get(reply, "error"));

	if (msg)
		return cd_err_set(err, status_errno(status), "%s", msg);
	return cd_err_set(err, status_errno(status), "the daemon answered HTTP %ld", status);
}

int client_connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

int client_connect_tcp(const char *address)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	_cleanup_free_ char *host = strdup(address);
	char *colon = host ? strrchr(host, ':') : NULL;
	int fd, e;

	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return -EHOSTUNREACH;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	e = fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0 ? errno : 0;
	freeaddrinfo(res);
	if (e) {
		if (fd >= 0)
			close(fd);
		return -e;
	}
	return fd;
}

static int connect_daemon(const struct cd_config *cfg, cd_err *err)
{
	int fd = strcmp(cfg->protocol, "unix") == 0 ? client_connect_unix(cfg->address)
	                                            : client_connect_tcp(cfg->address);

	return fd < 0 ? unreachable(cfg, err) : fd;
}

/* MSG_NOSIGNAL: a daemon that went away is an error, not SIGPIPE. */
static int send_full(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_request(int fd, const char *method, const char *path, const char *body)
{
	size_t len = body ? strlen(body) : 0;
	_cleanup_free_ char *head = NULL;
	int n = asprintf(&head,
	                 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
	                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	                 method, path, len);

	if (n < 0) {
		head = NULL;
		return -1;
	}
	if (send_full(fd, head, (size_t)n) < 0)
		return -1;
	return body ? send_full(fd, body, len) : 0;
}

/* The whole reply (the daemon closes the connection after it), NUL-ended. */
static int read_reply(int fd, char **ret, size_t *ret_len)
{
	size_t len = 0, cap = 8192;
	char *buf = malloc(cap);

	if (!buf)
		return -1;
	for (;;) {
		if (cap - len < 4096) {
			char *grown = realloc(buf, cap * 2);

			if (!grown)
				break;
			buf = grown;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0) {
			buf[len] = '\0';
			*ret = buf;
			*ret_len = len;
			return 0;
		}
		len += (size_t)n;
	}
	free(buf);
	return -1;
}

/* "HTTP/1.1 200 OK\r\n...\r\n\r\nBODY": the status, and the body (up to
 * Content-Length when given). Chunked bodies are not expected: the daemon
 * answers from a buffer. */
static int parse_reply(char *buf, size_t len, long *ret_status, const char **ret_body,
                       size_t *ret_body_len)
{
	char *end = strstr(buf, "\r\n\r\n");
	const char *cl;
	int status;

	if (!end || sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	*end = '\0';
	*ret_body = end + 4;
	*ret_body_len = len - (size_t)(end + 4 - buf);
	cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl) {
		size_t want = strtoul(cl + strlen("\r\nContent-Length:"), NULL, 10);

		if (want < *ret_body_len)
			*ret_body_len = want;
	}
	*ret_status = status;
	return 0;
}

/* One request on its own connection: plain HTTP/1.1 over the socket. It
 * was libcurl, whose load (about 30 libraries: TLS, Kerberos, LDAP, IDN)
 * cost 30-80 ms of every command that talks to the daemon. */
int client_call(const struct cd_config *cfg, const char *method, const char *path, json_t *body,
                json_t **ret, cd_err *err)
{
	_cleanup_free_ char *text = NULL, *buf = NULL;
	_cleanup_close_ int fd = -1;
	json_t *reply = NULL;
	const char *data = NULL;
	size_t len = 0, data_len = 0;
	long status = 0;
	int r = 0;

	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return cd_err_sys(err, ENOMEM, "request");
	fd = connect_daemon(cfg, err);
	if (fd < 0)
		return fd;
	if (send_request(fd, method, path, text) < 0 || read_reply(fd, &buf, &len) < 0)
		return cd_err_sys(err, errno ? errno : EIO, "daemon at %s", cfg->address);
	if (parse_reply(buf, len, &status, &data, &data_len) < 0)
		return cd_err_set(err, EPROTO, "daemon at %s: malformed HTTP reply", cfg->address);
	if (data_len)
		reply = json_loadb(data, data_len, 0, NULL);
	if (status < 200 || status >= 300)
		r = reply_error(status, reply, err);
	else if (data_len && !reply)
		r = cd_err_set(err, EPROTO, "the daemon sent malformed JSON");
	if (r == 0 && ret)
		*ret = TAKE_PTR(reply);
	json_decref(reply);
	return r;
}
