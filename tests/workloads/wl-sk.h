/* Sockets of a workload's tree. Messages (wl-unix-conn, wl-unix-shared): sent whole at once,
 * read back whole and compared; a task sets wl_in_child once it is a child of the workload, so
 * that its failures are the child's (wl_child_fail), not the tree's. A holder outside the tree
 * (wl-inet, wl-tcp-pair): what the dump must refuse. */
#ifndef WL_SK_H
#define WL_SK_H

#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wl.h"

/* The longest message a workload reads with wl_sk_get. */
#define WL_SK_MAX 8192

__attribute__((unused)) static bool wl_in_child;

#define WL_FAIL(...) (wl_in_child ? wl_child_fail(__VA_ARGS__) : wl_fail(__VA_ARGS__))

/* Sends buf as one message (or all of it, for a stream) without waiting. */
static inline void wl_sk_put(int fd, const void *buf, size_t len, const char *what)
{
	if (send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
		WL_FAIL("%s: send %zu bytes: %s", what, len, strerror(errno));
}

/* Waits (bounded) until fd has something to read. */
static inline void wl_sk_readable(int fd, const char *what)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, 10000) != 1)
		WL_FAIL("%s: nothing to read", what);
}

/* The next message (or, for a stream, len bytes) must be buf; a longer message fails too
 * (read into a buffer larger than any message sent). */
static inline void wl_sk_get(int fd, bool stream, const void *buf, size_t len, const char *what)
{
	static char got[WL_SK_MAX + 1];
	size_t off = 0;

	if (len > WL_SK_MAX)
		WL_FAIL("%s: %zu bytes is more than %d", what, len, WL_SK_MAX);
	do {
		wl_sk_readable(fd, what);
		ssize_t n = recv(fd, got + off, stream ? len - off : sizeof(got), MSG_DONTWAIT);
		if (n <= 0)
			WL_FAIL("%s: recv after %zu of %zu bytes: %s", what, off, len,
			        n ? strerror(errno) : "end");
		off += (size_t)n;
	} while (stream && off < len);
	if (off != len || memcmp(got, buf, len))
		WL_FAIL("%s: read %zu bytes that are not the %zu sent", what, off, len);
}

/* A process outside the tree (its parent exits, it starts a session of its own) that holds fd,
 * and no other fd of ours, until the trigger. */
static inline void wl_hold_outside(int fd)
{
	pid_t k = fork();

	if (k < 0)
		wl_fail("fork: %s", strerror(errno));
	if (k == 0) {
		if (fork() == 0 && setsid() >= 0) {
			for (int i = 3; i < 64; i++)
				if (i != fd)
					close(i);
			for (unsigned long i = 0; i < wl_max_polls() && !wl_triggered(); i++)
				wl_nap_ms(WL_POLL_MS);
			_exit(0);
		}
		_exit(0);
	}
	waitpid(k, NULL, 0);
}

#endif
