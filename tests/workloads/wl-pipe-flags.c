/* wl-pipe-flags: pipes whose flags and size were changed after creation, at fixed fds:
 *   10, 11  pipe A: read end O_NONBLOCK (F_SETFL), write end plain; size 256 KiB
 *           1000 unread bytes
 *   12, 13  pipe B: read end plain, write end O_NONBLOCK|O_DIRECT (packet mode); size 16 KiB
 *   14      pipe A's read end opened again through /proc/self/fd/10: another open file, blocking
 * After the trigger: the same F_GETFL (status flags) on every fd, the same F_GETPIPE_SZ, pipe A
 * holds its 1000 bytes, and two packets written into pipe B come back one per read().
 * With `packets` the two packets are written before READY and left unread: the engine refuses
 * that dump (it does not keep packet boundaries), and the run goes on to PASS. */
#include <fcntl.h>

#include "wl.h"

#define SIZE_A   (256 * 1024)
#define SIZE_B   (16 * 1024)
#define FLAGS_OF (O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_ASYNC)

static const struct {
	int fd, flags, size;
} want[] = {
    {10, O_NONBLOCK, SIZE_A}, {11, 0, SIZE_A}, {12, 0, SIZE_B}, {13, O_NONBLOCK | O_DIRECT, SIZE_B},
    {14, 0, SIZE_A},
};

static void setfl(int fd, int flags)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | flags) < 0)
		wl_fail("F_SETFL fd %d: %s", fd, strerror(errno));
}

static void check(void)
{
	for (size_t i = 0; i < WL_ARRAY_SIZE(want); i++) {
		int fl = fcntl(want[i].fd, F_GETFL), sz = fcntl(want[i].fd, F_GETPIPE_SZ);
		if (fl < 0)
			wl_fail("fd %d: F_GETFL: %s", want[i].fd, strerror(errno));
		if ((fl & FLAGS_OF) != want[i].flags)
			wl_fail("fd %d: flags %#o, want %#o", want[i].fd, fl & FLAGS_OF,
			        want[i].flags);
		if (sz != want[i].size)
			wl_fail("fd %d: pipe size %d, want %d", want[i].fd, sz, want[i].size);
	}
}

static void write_packets(const char *buf)
{
	if (write(13, buf, 100) != 100 || write(13, buf, 200) != 200)
		wl_fail("write packets: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	bool packets = argc > 1 && !strcmp(argv[1], "packets");
	int p[2];
	char buf[512], path[64];

	wl_init("wl-pipe-flags");
	if (pipe(p) < 0)
		wl_fail("pipe: %s", strerror(errno));
	wl_place_fd(p[0], 10);
	wl_place_fd(p[1], 11);
	if (pipe(p) < 0)
		wl_fail("pipe: %s", strerror(errno));
	wl_place_fd(p[0], 12);
	wl_place_fd(p[1], 13);
	setfl(10, O_NONBLOCK);
	setfl(13, O_NONBLOCK | O_DIRECT);
	if (fcntl(11, F_SETPIPE_SZ, SIZE_A) < 0 || fcntl(12, F_SETPIPE_SZ, SIZE_B) < 0)
		wl_fail("F_SETPIPE_SZ: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", 10);
	wl_place_fd(open(path, O_RDONLY), 14);
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < 2; i++)
		if (write(11, buf, 500) != 500)
			wl_fail("write pipe A: %s", strerror(errno));
	if (packets)
		write_packets(buf);
	check();
	wl_ready();
	wl_await_trigger();
	check();
	if (!packets)
		write_packets(buf);
	/* packet mode: each read() returns one packet */
	if (read(12, buf, sizeof(buf)) != 100 || read(12, buf, sizeof(buf)) != 200)
		wl_fail("pipe B: packets not kept apart");
	char big[2000];
	ssize_t n = read(10, big, sizeof(big));
	if (n != 1000 || read(10, big, sizeof(big)) != -1 || errno != EAGAIN)
		wl_fail("pipe A: %zd bytes unread, want 1000", n);
	wl_pass();
}
