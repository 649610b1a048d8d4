/* wl-loginuid [UID]: sets its audit login uid (/proc/self/loginuid, default 4242; from unset
 * this needs no privilege, otherwise CAP_AUDIT_CONTROL). After the trigger it must read back
 * the same. */
#include <fcntl.h>

#include "wl.h"

static unsigned long read_loginuid(void)
{
	FILE *f = fopen("/proc/self/loginuid", "re");
	unsigned long v = 0;

	if (!f || fscanf(f, "%lu", &v) != 1)
		wl_fail("read /proc/self/loginuid: %s", strerror(errno));
	fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	const char *want = argc > 1 ? argv[1] : "4242";
	unsigned long v = strtoul(want, NULL, 10), got;
	int fd;

	wl_init("wl-loginuid");
	fd = open("/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, want, strlen(want)) != (ssize_t)strlen(want))
		wl_fail("set loginuid %s: %s", want, strerror(errno));
	close(fd);
	if (read_loginuid() != v)
		wl_fail("loginuid %lu right after setting %lu", read_loginuid(), v);
	wl_ready();
	wl_await_trigger();
	got = read_loginuid();
	if (got != v)
		wl_fail("loginuid %lu, want %lu", got, v);
	wl_pass();
}
