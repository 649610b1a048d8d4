/* The client end of attach: an HTTP upgrade on a plain socket, then frames
 * both ways. */
#include "cli/client.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "job/frame.h"
#include "shared/cleanup.h"
#include "shared/fdio.h"

#define CTRL_C 0x03

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t got_winch;

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else
		got_signal = 1;
}

/* Reads the response head byte by byte, so nothing of the stream is consumed. */
static int read_head(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EPROTO;
		n++;
		buf[n] = '\0';
		if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
			return 0;
	}
	return -EPROTO;
}

/* A refused upgrade is an ordinary JSON error reply. */
static int refused(int fd, const char *head, int status, cd_err *err)
{
	const char *cl = strcasestr(head, "\r\nContent-Length:");
	size_t want = cl ? strtoul(cl + strlen("\r\nContent-Length:"), NULL, 10) : 0;
	char body[4096] = "";
	size_t got = 0;
	json_t *reply;
	const char *msg;

	while (got < want && got + 1 < sizeof(body)) {
		ssize_t n = read(fd, body + got, sizeof(body) - 1 - got);

		if (n <= 0)
			break;
		got += n;
	}
	body[got] = '\0';
	reply = json_loads(body, 0, NULL);
	msg = json_string_value(json_object_get(reply, "error"));
	cd_err_set(err,
	           status == 404   ? ENOENT
	           : status == 403 ? EPERM
	                           : EINVAL,
	           "%s", msg ? msg : "attach refused by the daemon");
	json_decref(reply);
	return -err->code;
}

static int upgrade(const struct cd_config *cfg, const char *jid, cd_err *err)
{
	_cleanup_free_ char *esc = client_escape(jid);
	_cleanup_close_ int fd = -1;
	char req[1024], head[8192];
	int status = 0;

	if (strcmp(cfg->protocol, "unix") == 0)
		fd = client_connect_unix(cfg->address);
	else
		fd = client_connect_tcp(cfg->address);
	if (fd < 0)
		return cd_err_set(err, ECONNREFUSED,
		                  "cannot reach the daemon at %s: is it running? start it with: "
		                  "sudo cedana daemon start",
		                  cfg->address);
	snprintf(req, sizeof(req),
	         "GET /v1/jobs/%s/attach HTTP/1.1\r\nHost: localhost\r\n"
	         "Connection: Upgrade\r\nUpgrade: cedana-attach\r\n\r\n",
	         esc ? esc : jid);
	if (fd_write_full(fd, req, strlen(req)) < 0 || read_head(fd, head, sizeof(head)) < 0 ||
	    sscanf(head, "HTTP/1.%*d %d", &status) != 1)
		return cd_err_set(err, EPROTO, "attach %s: bad reply from the daemon", jid);
	if (status != 101)
		return refused(fd, head, status, err);
	return TAKE_FD(fd);
}

struct term {
	bool raw;
	struct termios saved;
};

static void term_raw(struct term *t)
{
	struct termios raw;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &t->saved) < 0)
		return;
	raw = t->saved;
	cfmakeraw(&raw);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
		t->raw = true;
}

static void term_restore(struct term *t)
{
	if (t->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	t->raw = false;
}

static void send_size(int sock)
{
	struct winsize ws;
	unsigned char p[4];

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
		return;
	p[0] = ws.ws_row >> 8;
	p[1] = ws.ws_row & 0xff;
	p[2] = ws.ws_col >> 8;
	p[3] = ws.ws_col & 0xff;
	frame_write(sock, FRAME_RESIZE, p, sizeof(p));
}

/* Forwards stdin; returns 1 when the user pressed Ctrl-C (detach). */
static int pump_stdin(int sock, bool tty, bool *stdin_open)
{
	char buf[4096];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	char *stop;

	if (n <= 0) {
		if (n == 0 || errno != EINTR)
			*stdin_open = false;
		return 0;
	}
	stop = tty ? memchr(buf, CTRL_C, n) : NULL;
	if (stop)
		n = stop - buf;
	if (n > 0 && frame_write(sock, FRAME_INPUT, buf, n) < 0)
		return -EPIPE;
	return stop ? 1 : 0;
}

/* Handles frames from the daemon; returns 1 when the job's exit code came. */
static int pump_sock(int sock, struct frame_reader *rd, int *ret_exit)
{
	static unsigned char data[FRAME_MAX_DATA];
	char buf[16384], type;
	size_t room = frame_reader_room(rd);
	ssize_t n = read(sock, buf, room < sizeof(buf) ? room : sizeof(buf));
	size_t len;
	int r;

	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0 || frame_feed(rd, buf, n) < 0)
		return -EPIPE;
	while ((r = frame_next(rd, &type, data, &len)) > 0) {
		if (type == FRAME_OUTPUT && fd_write_full(STDOUT_FILENO, (char *)data, len) < 0)
			return -EPIPE;
		if (type == FRAME_EXIT && len == 4) {
			*ret_exit = (int)frame_u32(data);
			return 1;
		}
	}
	return r < 0 ? -EPROTO : 0;
}

static int relay(int sock, bool tty, int *ret_exit, bool *ret_detached)
{
	struct frame_reader *rd = calloc(1, sizeof(*rd));
	bool stdin_open = true;
	int r = 0;

	if (!rd)
		return -ENOMEM;
	if (tty)
		send_size(sock);
	while (r == 0) {
		struct pollfd p[2] = {{.fd = sock, .events = POLLIN},
		                      {.fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN}};

		if (got_signal) {
			*ret_detached = true;
			break;
		}
		if (got_winch) {
			got_winch = 0;
			send_size(sock);
		}
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (p[0].revents)
			r = pump_sock(sock, rd, ret_exit);
		if (r == 0 && p[1].revents) {
			r = pump_stdin(sock, tty, &stdin_open);
			if (r == 1)
				*ret_detached = true;
		}
	}
	free(rd);
	return r < 0 ? r : 0;
}

int client_attach(const struct cd_config *cfg, const char *jid, int *ret_exit, bool *ret_detached,
                  cd_err *err)
{
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: poll must wake */
	struct term t = {0};
	int sock, r;

	*ret_exit = 0;
	*ret_detached = false;
	sock = upgrade(cfg, jid, err);
	if (sock < 0)
		return sock;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	term_raw(&t);
	r = relay(sock, t.raw, ret_exit, ret_detached);
	term_restore(&t);
	close(sock);
	if (r < 0)
		return cd_err_set(err, -r, "attach %s: the connection to the daemon was lost", jid);
	if (*ret_detached)
		fprintf(stderr, "\ndetached from job %s; it keeps running (cedana job attach %s)\n",
		        jid, jid);
	return 0;
}
