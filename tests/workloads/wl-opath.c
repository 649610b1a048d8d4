/* wl-opath: O_PATH fds of every kind of path:
 *   10  <trigger>.opath       a regular file, O_PATH
 *   11  the trigger's directory, O_PATH|O_DIRECTORY
 *   12  <trigger>.opath-link  a symlink to fd 10's file, O_PATH|O_NOFOLLOW (the link itself)
 *   13  <trigger>.opath-fifo  a FIFO, O_PATH (no reader or writer is opened)
 *   14  /dev/null, O_PATH, FD_CLOEXEC
 * After the trigger every fd is O_PATH, names the same path and inode (fstat through the fd)
 * and the same FD_CLOEXEC; openat() through fd 11 finds fd 10's file, and /proc/self/fd/10 can
 * be opened for reading (what O_PATH fds are for). */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#include "wl.h"

static struct {
	int fd, fdfl;
	char path[PATH_MAX];
	struct stat st;
} rec[5];

static void record(int i, int fd)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, rec[i].path, sizeof(rec[i].path) - 1);
	if (n < 0 || fstatat(fd, "", &rec[i].st, AT_EMPTY_PATH) < 0)
		wl_fail("fd %d: %s", fd, strerror(errno));
	rec[i].path[n] = 0;
	rec[i].fd = fd;
	rec[i].fdfl = fcntl(fd, F_GETFD);
}

static void check(int i)
{
	char link[64], path[PATH_MAX];
	struct stat st;
	int fd = rec[i].fd, fl = fcntl(fd, F_GETFL);
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0 || fl < 0 || fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		wl_fail("fd %d: %s", fd, strerror(errno));
	path[n] = 0;
	if (!(fl & O_PATH))
		wl_fail("fd %d: not O_PATH (flags %#o)", fd, fl);
	if (strcmp(path, rec[i].path))
		wl_fail("fd %d: now %s, was %s", fd, path, rec[i].path);
	if (st.st_dev != rec[i].st.st_dev || st.st_ino != rec[i].st.st_ino ||
	    (st.st_mode & S_IFMT) != (rec[i].st.st_mode & S_IFMT))
		wl_fail("fd %d: another inode or file type", fd);
	if (fcntl(fd, F_GETFD) != rec[i].fdfl)
		wl_fail("fd %d: FD_CLOEXEC %d, was %d", fd, fcntl(fd, F_GETFD), rec[i].fdfl);
}

int main(void)
{
	char *file, *link, *fifo, *dir, *base;
	int fd;

	wl_init("wl-opath");
	file = wl_side_path(".opath");
	link = wl_side_path(".opath-link");
	fifo = wl_side_path(".opath-fifo");
	dir = strdup(file);
	base = strdup(file);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "opath", 5) != 5 || close(fd) < 0 || symlink(file, link) < 0 ||
	    mkfifo(fifo, 0600) < 0)
		wl_fail("setup: %s", strerror(errno));
	wl_place_fd(open(file, O_PATH), 10);
	wl_place_fd(open(dirname(dir), O_PATH | O_DIRECTORY), 11);
	wl_place_fd(open(link, O_PATH | O_NOFOLLOW), 12);
	wl_place_fd(open(fifo, O_PATH), 13);
	wl_place_fd(open("/dev/null", O_PATH | O_CLOEXEC), 14);
	for (int i = 0; i < 5; i++)
		record(i, 10 + i);
	if (!S_ISLNK(rec[2].st.st_mode) || !S_ISFIFO(rec[3].st.st_mode))
		wl_fail("setup: fd 12 not the link or fd 13 not the FIFO");
	wl_ready();
	wl_await_trigger();
	for (int i = 0; i < 5; i++)
		check(i);
	char buf[8] = {0};
	fd = openat(11, basename(base), O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf)) != 5 || strcmp(buf, "opath"))
		wl_fail("openat through fd 11: %s", strerror(errno));
	close(fd);
	fd = open("/proc/self/fd/10", O_RDONLY);
	if (fd < 0)
		wl_fail("open /proc/self/fd/10: %s", strerror(errno));
	wl_pass();
}
