/* wl-reg-flags: regular files with status flags as opened and as set later, and offsets:
 *   10  <trigger>.append  O_WRONLY|O_APPEND, 300 bytes written
 *   11  <trigger>.nb      O_RDWR, then O_NONBLOCK by F_SETFL; offset 123
 *   12  <trigger>.direct  O_RDONLY|O_DIRECT (without O_DIRECT where the file system refuses it,
 *                         said on stderr); offset 4096
 *   13  <trigger>.noatime O_RDONLY|O_NOATIME (our own file); offset 7
 *   14  <trigger>.late    O_RDWR, then O_APPEND by F_SETFL; offset 50
 * After the trigger every fd has the same status flags and offset, and a write through fd 10
 * and fd 14 still lands at the end of the file. */
#include <fcntl.h>
#include <sys/stat.h>

#include "wl.h"

#define FLAGS_OF (O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_ASYNC | O_ACCMODE)
#define FILE_LEN 8192

static struct {
	int fd, flags;
	off_t off;
} want[5];

static void place(int fd, int at)
{
	if (fd < 0 || (fd != at && (dup2(fd, at) < 0 || close(fd) < 0)))
		wl_fail("place fd %d: %s", at, strerror(errno));
}

static int open_side(const char *suffix, int flags)
{
	char *path = wl_side_path(suffix);
	static char buf[FILE_LEN];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf) || close(fd) < 0)
		wl_fail("create %s: %s", path, strerror(errno));
	fd = open(path, flags);
	if (fd < 0 && (flags & O_DIRECT) && errno == EINVAL) {
		fprintf(stderr, "wl-reg-flags: %s: no O_DIRECT here\n", path);
		fd = open(path, flags & ~O_DIRECT);
	}
	free(path);
	return fd;
}

static void check(void)
{
	for (size_t i = 0; i < WL_ARRAY_SIZE(want); i++) {
		int fl = fcntl(want[i].fd, F_GETFL);
		off_t off = lseek(want[i].fd, 0, SEEK_CUR);
		if ((fl & FLAGS_OF) != want[i].flags)
			wl_fail("fd %d: flags %#o, want %#o", want[i].fd, fl & FLAGS_OF,
			        want[i].flags);
		if (off != want[i].off)
			wl_fail("fd %d: offset %lld, want %lld", want[i].fd, (long long)off,
			        (long long)want[i].off);
	}
}

int main(void)
{
	char buf[300] = {0};
	struct stat st;

	wl_init("wl-reg-flags");
	place(open_side(".append", O_WRONLY | O_APPEND), 10);
	if (write(10, buf, sizeof(buf)) != sizeof(buf))
		wl_fail("write fd 10: %s", strerror(errno));
	place(open_side(".nb", O_RDWR), 11);
	fcntl(11, F_SETFL, O_NONBLOCK);
	lseek(11, 123, SEEK_SET);
	place(open_side(".direct", O_RDONLY | O_DIRECT), 12);
	lseek(12, 4096, SEEK_SET);
	place(open_side(".noatime", O_RDONLY | O_NOATIME), 13);
	lseek(13, 7, SEEK_SET);
	place(open_side(".late", O_RDWR), 14);
	fcntl(14, F_SETFL, O_APPEND);
	lseek(14, 50, SEEK_SET);
	for (int i = 0; i < 5; i++) {
		want[i].fd = 10 + i;
		want[i].flags = fcntl(10 + i, F_GETFL) & FLAGS_OF;
		want[i].off = lseek(10 + i, 0, SEEK_CUR);
	}
	if (want[0].off != FILE_LEN + 300 || !(want[1].flags & O_NONBLOCK) ||
	    !(want[3].flags & O_NOATIME) || !(want[4].flags & O_APPEND))
		wl_fail("setup: flags or offsets not as set");
	wl_ready();
	wl_await_trigger();
	check();
	if (write(10, buf, 10) != 10 || write(14, buf, 10) != 10 || fstat(14, &st) < 0 ||
	    lseek(10, 0, SEEK_CUR) != FILE_LEN + 310 || lseek(14, 0, SEEK_CUR) != st.st_size)
		wl_fail("O_APPEND writes do not land at the end");
	wl_pass();
}
