/* wl-pipe-read: the parent blocks in read() on a pipe (its fd 10) from the moment of READY; the
 * child prints READY once it sees the parent blocked there, polls the trigger, then writes a
 * known message and exits 0. The parent must read exactly that message and reap the child. */
#include <fcntl.h>
#include <sys/syscall.h>

#include "wl.h"

#define PIPE_FD 10

static const char message[] = "wl-pipe-read: the message after the trigger";

static int child_main(void *arg)
{
	int wfd = *(int *)arg;

	if (!wl_wait_blocked(getppid(), SYS_read, SYS_read))
		wl_child_fail("the parent never blocked in read()");
	wl_ready();
	wl_child_await_trigger();
	if (write(wfd, message, sizeof(message)) != (ssize_t)sizeof(message))
		wl_child_fail("write: %s", strerror(errno));
	return 0;
}

int main(void)
{
	char buf[2 * sizeof(message)];
	int p[2];
	pid_t child;
	ssize_t n;

	wl_init("wl-pipe-read");
	if (pipe(p) < 0 || dup2(p[0], PIPE_FD) < 0)
		wl_fail("pipe: %s", strerror(errno));
	close(p[0]);
	child = wl_spawn(child_main, &p[1]);
	close(p[1]);
	/* No handlers here: an EINTR could only come from a broken restore. */
	n = read(PIPE_FD, buf, sizeof(buf));
	if (n < 0)
		wl_fail("read: %s", strerror(errno));
	if (n == 0)
		wl_fail("the pipe was closed with no message");
	if (n != sizeof(message) || memcmp(buf, message, sizeof(message)))
		wl_fail("read %zd bytes \"%.*s\", not the message", n, (int)n, buf);
	wl_expect_exit(child, 0);
	wl_pass();
}
