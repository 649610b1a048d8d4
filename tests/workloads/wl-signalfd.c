/* wl-signalfd: a signalfd (SFD_NONBLOCK | SFD_CLOEXEC) reading SIGUSR1 and SIGRTMIN+2, both
 * blocked, with SIGUSR1 pending before READY; SIGUSR2 is blocked too but not in its mask.
 * After the trigger: the fd's mask (fdinfo sigmask) and flags are as before; it reads the
 * pending SIGUSR1, then EAGAIN; a SIGRTMIN+2 queued with value 77 is read with that value;
 * a pending SIGUSR2 is not read. */
#include <fcntl.h>
#include <sys/signalfd.h>

#include "wl.h"

static char *fdinfo_mask(int fd)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (!(f = fopen(path, "r")))
		wl_fail("open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "sigmask:", 8)) {
			fclose(f);
			return strdup(line);
		}
	fclose(f);
	wl_fail("%s: no sigmask", path);
}

static int next_sig(int fd, int *value)
{
	struct signalfd_siginfo si;
	ssize_t n = read(fd, &si, sizeof(si));

	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n != sizeof(si))
		wl_fail("signalfd read: %s", n < 0 ? strerror(errno) : "short");
	*value = si.ssi_int;
	return (int)si.ssi_signo;
}

int main(void)
{
	sigset_t mask, blocked;
	union sigval sv = {.sival_int = 77};
	char *before, *after;
	int fd, sig, value = 0;

	wl_init("wl-signalfd");
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGRTMIN + 2);
	blocked = mask;
	sigaddset(&blocked, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &blocked, NULL) < 0)
		wl_fail("sigprocmask: %s", strerror(errno));
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		wl_fail("signalfd: %s", strerror(errno));
	before = fdinfo_mask(fd);
	raise(SIGUSR1);
	wl_ready();
	wl_await_trigger();

	after = fdinfo_mask(fd);
	if (strcmp(before, after))
		wl_fail("mask was %s now %s", before, after);
	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK) || fcntl(fd, F_GETFD) != FD_CLOEXEC)
		wl_fail("flags %#o fd flags %d", fcntl(fd, F_GETFL), fcntl(fd, F_GETFD));
	if ((sig = next_sig(fd, &value)) != SIGUSR1)
		wl_fail("read signal %d, want the pending SIGUSR1", sig);
	if ((sig = next_sig(fd, &value)) != 0)
		wl_fail("read signal %d, want nothing", sig);
	raise(SIGUSR2);
	if (sigqueue(getpid(), SIGRTMIN + 2, sv) < 0)
		wl_fail("sigqueue: %s", strerror(errno));
	if ((sig = next_sig(fd, &value)) != SIGRTMIN + 2 || value != 77)
		wl_fail("read signal %d value %d, want %d value 77", sig, value, SIGRTMIN + 2);
	if ((sig = next_sig(fd, &value)) != 0)
		wl_fail("read signal %d (SIGUSR2 is not in its mask), want nothing", sig);
	wl_pass();
}
