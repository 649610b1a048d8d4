/* wl-unix-dgram [named]: unconnected datagram sockets with datagrams waiting unread, before
 * READY:
 *   abs   SOCK_DGRAM bound to the abstract name "\0wl-unix-dgq-PID": datagrams of 1, 300 and
 *         70000 bytes, then 6 of 60000 bytes, each from an unbound sender closed since (more
 *         than one sender's send buffer holds; at most net.unix.max_dgram_qlen + 1 datagrams
 *         wait in an unconnected socket's queue, 10 here with "named")
 *   path  SOCK_DGRAM bound to <trigger>.dg, O_NONBLOCK: "first", "second" from one unbound
 *         sender that stays open
 * After the trigger each datagram comes back whole, in order, with no sender name, nothing
 * more is queued, and a new datagram sent to each name arrives.
 * With "named", a datagram from a bound sender also waits in abs's queue: the dump must refuse
 * it, naming the sender, and the workload runs on to PASS. */
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "wl.h"

#define NBULK 6
#define BULK  60000

static socklen_t abstract_addr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t n = strlen(name);
	memcpy(sa->sun_path + 1, name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static socklen_t path_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		wl_fail("path %s too long for a socket", path);
	strcpy(sa->sun_path, path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static int bound(const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (fd < 0 || bind(fd, (const struct sockaddr *)sa, len) < 0)
		wl_fail("socket or bind: %s", strerror(errno));
	return fd;
}

static void send_to(int from, const void *buf, size_t len, const struct sockaddr_un *sa,
                    socklen_t salen)
{
	if (sendto(from, buf, len, MSG_DONTWAIT, (const struct sockaddr *)sa, salen) !=
	    (ssize_t)len)
		wl_fail("sendto %zu bytes: %s", len, strerror(errno));
}

static void send_new(const void *buf, size_t len, const struct sockaddr_un *sa, socklen_t salen)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (fd < 0)
		wl_fail("socket: %s", strerror(errno));
	send_to(fd, buf, len, sa, salen);
	close(fd);
}

/* The next datagram must be buf, from no named sender. */
static void get(int fd, const void *buf, size_t len, const char *what)
{
	static char got[70001];
	struct sockaddr_un from;
	socklen_t flen = sizeof(from);
	ssize_t n = recvfrom(fd, got, sizeof(got), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);

	if (n < 0)
		wl_fail("%s: recv: %s", what, strerror(errno));
	if ((size_t)n != len || memcmp(got, buf, len))
		wl_fail("%s: got %zd bytes, want %zu (or other bytes)", what, n, len);
	if (flen > offsetof(struct sockaddr_un, sun_path))
		wl_fail("%s: from a named sender (%u bytes of address)", what, flen);
}

static void empty(int fd, const char *what)
{
	char c;

	if (recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) >= 0 || errno != EAGAIN)
		wl_fail("%s: more queued", what);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	static char msg70k[70000], bulk[NBULK][BULK];
	char name[64];
	struct sockaddr_un asa, psa, nsa;
	socklen_t alen, plen;
	int abs, path, keep, named = -1;

	wl_init("wl-unix-dgram");
	wl_fill(msg70k, sizeof(msg70k), 5);
	wl_fill(bulk, sizeof(bulk), 6);
	snprintf(name, sizeof(name), "wl-unix-dgq-%d", getpid());
	alen = abstract_addr(&asa, name);
	plen = path_addr(&psa, wl_side_path("dg"));
	abs = bound(&asa, alen);
	path = bound(&psa, plen);
	if (fcntl(path, F_SETFL, O_NONBLOCK) < 0)
		wl_fail("fcntl: %s", strerror(errno));
	send_new("x", 1, &asa, alen);
	send_new(msg70k, 300, &asa, alen);
	send_new(msg70k, sizeof(msg70k), &asa, alen);
	for (int i = 0; i < NBULK; i++)
		send_new(bulk[i], BULK, &asa, alen);
	keep = socket(AF_UNIX, SOCK_DGRAM, 0);
	send_to(keep, "first", 5, &psa, plen);
	send_to(keep, "second", 6, &psa, plen);
	if (!strcmp(mode, "named")) {
		snprintf(name, sizeof(name), "wl-unix-dgs-%d", getpid());
		named = bound(&nsa, abstract_addr(&nsa, name));
		send_to(named, "n", 1, &asa, alen);
	}
	wl_ready();
	wl_await_trigger();
	get(abs, "x", 1, "abs 1");
	get(abs, msg70k, 300, "abs 2");
	get(abs, msg70k, sizeof(msg70k), "abs 3");
	for (int i = 0; i < NBULK; i++)
		get(abs, bulk[i], BULK, "abs bulk");
	if (named >= 0) {
		char c;
		if (recv(abs, &c, 1, MSG_DONTWAIT) != 1 || c != 'n')
			wl_fail("named: the datagram is gone");
	}
	get(path, "first", 5, "path 1");
	get(path, "second", 6, "path 2");
	empty(abs, "abs");
	empty(path, "path");
	if (!(fcntl(path, F_GETFL) & O_NONBLOCK))
		wl_fail("path: O_NONBLOCK lost");
	send_new("new", 3, &asa, alen);
	send_to(keep, "new", 3, &psa, plen);
	get(abs, "new", 3, "abs new");
	get(path, "new", 3, "path new");
	wl_pass();
}
