/* wl-files: open files of every common kind at fixed fd numbers, with offsets, flags and unread
 * data, in a parent and a child (fd numbers as in the parent unless said):
 *   10  <trigger>.files-rw   O_RDWR|O_APPEND, offset 1000     11  dup of 10 (same offset)
 *   12  <trigger>.files-ro   O_RDONLY, FD_CLOEXEC, offset 4097
 *   13  <trigger>.files-wo   O_WRONLY, offset 500, shared with the child
 *   14  the trigger's directory, O_DIRECTORY
 *   15  /dev/null O_WRONLY   16  /dev/zero O_RDONLY   17  /dev/urandom O_RDONLY|O_NONBLOCK
 *   20  pipe to the child (write end; the child's read end, O_NONBLOCK, is its fd 20), 3000
 *       unread bytes
 *   21  pipe from the child (read end, O_NONBLOCK; the child's write end is its fd 21), 2000
 *       unread bytes
 *   22  <trigger>.fifo read end O_NONBLOCK, 23 its write end; 1500 unread bytes
 * After the trigger: same fd set, flags, FD_CLOEXEC, inodes and offsets as before READY; the
 * files read on from their offsets, the child writes through fd 13 and the parent must see the
 * shared offset move; every pipe and the FIFO hold exactly the unread bytes. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "wl.h"

enum {
	FD_RW = 10,
	FD_RW_DUP,
	FD_RO,
	FD_WO,
	FD_DIR,
	FD_NULL,
	FD_ZERO,
	FD_URANDOM,
	FD_TO_CHILD = 20,
	FD_FROM_CHILD,
	FD_FIFO_R,
	FD_FIFO_W,
	MAX_FD = 64,
};

#define RW_SIZE        10000
#define RW_OFFSET      1000
#define RO_SIZE        (3 * 4096 + 100)
#define RO_OFFSET      4097
#define WO_OFFSET      500
#define TO_CHILD_LEN   3000
#define FROM_CHILD_LEN 2000
#define FIFO_LEN       1500
#define READ_LEN       100

struct fd_rec {
	int fd, fl, fdfl;
	struct stat st;
	off_t off;
	bool pipe;
};

static struct fd_rec recs[MAX_FD];
static unsigned nr_recs;
static bool open_before[MAX_FD];

/* Byte i of every data stream here: easy to check from any offset. */
static unsigned char byte_at(unsigned seed, size_t i)
{
	return (unsigned char)((i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

static void pattern(unsigned char *buf, size_t len, unsigned seed, size_t from)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = byte_at(seed, from + i);
}

static bool is_pattern(const unsigned char *buf, size_t len, unsigned seed, size_t from)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != byte_at(seed, from + i))
			return false;
	return true;
}

/* Puts fd at number want (without FD_CLOEXEC) and closes the original. */
static void place(int fd, int want, const char *what)
{
	if (fd < 0)
		wl_fail("open %s: %s", what, strerror(errno));
	if (fd == want)
		return;
	if (dup2(fd, want) < 0)
		wl_fail("dup2 %s: %s", what, strerror(errno));
	close(fd);
}

static void write_all(int fd, const void *buf, size_t len, const char *what)
{
	if (write(fd, buf, len) != (ssize_t)len)
		wl_fail("write %s: %s", what, strerror(errno));
}

static void make_file(const char *suffix, size_t len, unsigned seed)
{
	char *path = wl_side_path(suffix);
	unsigned char *buf = malloc(len);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || !buf)
		wl_fail("create %s: %s", path, strerror(errno));
	pattern(buf, len, seed, 0);
	write_all(fd, buf, len, path);
	close(fd);
	free(buf);
	free(path);
}

static void open_side(const char *suffix, int flags, int want)
{
	char *path = wl_side_path(suffix);

	place(open(path, flags), want, path);
	free(path);
}

static void setup_files(void)
{
	char *dir = wl_side_path("");
	unsigned char buf[WO_OFFSET];

	make_file(".files-rw", RW_SIZE, 1);
	make_file(".files-ro", RO_SIZE, 2);
	open_side(".files-rw", O_RDWR | O_APPEND, FD_RW);
	lseek(FD_RW, RW_OFFSET, SEEK_SET);
	place(dup(FD_RW), FD_RW_DUP, "dup");
	open_side(".files-ro", O_RDONLY, FD_RO);
	fcntl(FD_RO, F_SETFD, FD_CLOEXEC);
	lseek(FD_RO, RO_OFFSET, SEEK_SET);
	open_side(".files-wo", O_WRONLY | O_CREAT | O_TRUNC, FD_WO);
	pattern(buf, sizeof(buf), 3, 0);
	write_all(FD_WO, buf, sizeof(buf), "files-wo");
	place(open(dirname(dir), O_RDONLY | O_DIRECTORY), FD_DIR, "the trigger's directory");
	free(dir);
	place(open("/dev/null", O_WRONLY), FD_NULL, "/dev/null");
	place(open("/dev/zero", O_RDONLY), FD_ZERO, "/dev/zero");
	place(open("/dev/urandom", O_RDONLY | O_NONBLOCK), FD_URANDOM, "/dev/urandom");
}

static void setup_fifo(void)
{
	char *path = wl_side_path(".fifo");
	unsigned char buf[FIFO_LEN];

	if (mkfifo(path, 0600) < 0)
		wl_fail("mkfifo %s: %s", path, strerror(errno));
	place(open(path, O_RDONLY | O_NONBLOCK), FD_FIFO_R, path);
	place(open(path, O_WRONLY), FD_FIFO_W, path);
	free(path);
	pattern(buf, sizeof(buf), 4, 0);
	write_all(FD_FIFO_W, buf, sizeof(buf), "fifo");
}

/* Reads everything there is without blocking; the count, or -1 on an error but EAGAIN. */
static ssize_t drain(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len && (n = read(fd, buf + got, len - got)) > 0)
		got += (size_t)n;
	if (got < len && n < 0 && errno != EAGAIN)
		return -1;
	return (ssize_t)got;
}

/* Exactly len pattern bytes are waiting in fd, nothing more. Returns NULL or what is wrong. */
static const char *check_unread(int fd, size_t len, unsigned seed)
{
	unsigned char buf[8192];
	ssize_t n = drain(fd, buf, sizeof(buf));

	if (n < 0)
		return "read failed";
	if ((size_t)n != len)
		return n < (ssize_t)len ? "fewer bytes than written" : "more bytes than written";
	if (!is_pattern(buf, len, seed, 0))
		return "other bytes than written";
	return NULL;
}

static int child_main(void *arg)
{
	unsigned char buf[FROM_CHILD_LEN];
	const char *why;

	fcntl(FD_TO_CHILD, F_SETFL, O_NONBLOCK);
	pattern(buf, sizeof(buf), 5, 0);
	if (write(FD_FROM_CHILD, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		wl_child_fail("write to the parent: %s", strerror(errno));
	wl_child_await_trigger();
	if (!(fcntl(FD_TO_CHILD, F_GETFL) & O_NONBLOCK))
		wl_child_fail("the pipe from the parent lost O_NONBLOCK");
	why = check_unread(FD_TO_CHILD, TO_CHILD_LEN, 6);
	if (why)
		wl_child_fail("pipe from the parent: %s", why);
	if (lseek(FD_WO, 0, SEEK_CUR) != WO_OFFSET)
		wl_child_fail("files-wo offset is not %d", WO_OFFSET);
	pattern(buf, READ_LEN, 3, WO_OFFSET);
	if (write(FD_WO, buf, READ_LEN) != READ_LEN)
		wl_child_fail("write files-wo: %s", strerror(errno));
	return 0;
}

/* The child keeps stdio, fd 13 and its ends of the pipes, at the same numbers. */
static pid_t setup_child(void)
{
	int to[2], from[2];
	pid_t pid;

	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
		wl_fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(to[0], FD_TO_CHILD);
		dup2(from[1], FD_FROM_CHILD);
		for (int fd = 3; fd < MAX_FD; fd++)
			if (fd != FD_WO && fd != FD_TO_CHILD && fd != FD_FROM_CHILD)
				close(fd);
		_exit(child_main(NULL));
	}
	wl_children[wl_nr_children++] = pid;
	place(to[1], FD_TO_CHILD, "pipe");
	place(from[0], FD_FROM_CHILD, "pipe");
	close(to[0]);
	close(from[1]);
	fcntl(FD_FROM_CHILD, F_SETFL, O_NONBLOCK);
	return pid;
}

static void setup_pipes(void)
{
	unsigned char buf[TO_CHILD_LEN];
	int n = 0;

	pattern(buf, sizeof(buf), 6, 0);
	write_all(FD_TO_CHILD, buf, sizeof(buf), "pipe to the child");
	for (int i = 0; n < FROM_CHILD_LEN; i++) {
		if (i > 100 * (int)wl_timeout_s())
			wl_fail("the child wrote %d bytes, not %d", n, FROM_CHILD_LEN);
		wl_nap_ms(WL_POLL_MS);
		if (ioctl(FD_FROM_CHILD, FIONREAD, &n) < 0)
			wl_fail("FIONREAD: %s", strerror(errno));
	}
}

static void list_fds(bool open_fds[MAX_FD])
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		wl_fail("opendir /proc/self/fd: %s", strerror(errno));
	memset(open_fds, 0, MAX_FD * sizeof(bool));
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && fd != dirfd(d) && fd < MAX_FD)
			open_fds[fd] = true;
	}
	closedir(d);
}

/* An anonymous pipe: restored as a new pipe, so its inode number may change. */
static bool is_pipe(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	return n > 5 && !strncmp(target, "pipe:", 5);
}

static void record(struct fd_rec *r, int fd)
{
	r->fd = fd;
	r->fl = fcntl(fd, F_GETFL);
	r->fdfl = fcntl(fd, F_GETFD);
	if (r->fl < 0 || r->fdfl < 0 || fstat(fd, &r->st) < 0)
		wl_fail("fd %d: %s", fd, strerror(errno));
	r->off = lseek(fd, 0, SEEK_CUR);
	r->pipe = is_pipe(fd);
}

static void record_all(void)
{
	list_fds(open_before);
	for (int fd = 3; fd < MAX_FD; fd++)
		if (open_before[fd])
			record(&recs[nr_recs++], fd);
}

static void check_all_recorded(void)
{
	bool open_now[MAX_FD];
	struct fd_rec now;

	list_fds(open_now);
	for (int fd = 0; fd < MAX_FD; fd++)
		if (open_now[fd] != open_before[fd])
			wl_fail("fd %d is %s", fd, open_now[fd] ? "open, was not" : "gone");
	for (unsigned i = 0; i < nr_recs; i++) {
		const struct fd_rec *r = &recs[i];

		record(&now, r->fd);
		if (now.fl != r->fl)
			wl_fail("fd %d: F_GETFL %#o, was %#o", r->fd, now.fl, r->fl);
		if (now.fdfl != r->fdfl)
			wl_fail("fd %d: F_GETFD %d, was %d", r->fd, now.fdfl, r->fdfl);
		if (now.pipe != r->pipe || now.st.st_mode != r->st.st_mode)
			wl_fail("fd %d: another kind of file than before", r->fd);
		if (!r->pipe && (now.st.st_dev != r->st.st_dev || now.st.st_ino != r->st.st_ino ||
		                 now.st.st_rdev != r->st.st_rdev))
			wl_fail("fd %d: another file than before", r->fd);
		/* The child moves fd 13's offset; check_shared_with_child() checks it. */
		if (now.off != r->off && r->fd != FD_WO)
			wl_fail("fd %d: offset %lld, was %lld", r->fd, (long long)now.off,
			        (long long)r->off);
	}
}

/* What each fd must be, independent of what was recorded. */
static void check_expected(void)
{
	static const struct {
		int fd, fl, fdfl;
		off_t off;
	} want[] = {
	    {FD_RW, O_RDWR | O_APPEND, 0, RW_OFFSET},
	    {FD_RW_DUP, O_RDWR | O_APPEND, 0, RW_OFFSET},
	    {FD_RO, O_RDONLY, FD_CLOEXEC, RO_OFFSET},
	    {FD_WO, O_WRONLY, 0, -2},
	    {FD_DIR, O_RDONLY | O_DIRECTORY, 0, 0},
	    {FD_URANDOM, O_RDONLY | O_NONBLOCK, 0, -2},
	    {FD_FROM_CHILD, O_RDONLY | O_NONBLOCK, 0, -1},
	    {FD_FIFO_R, O_RDONLY | O_NONBLOCK, 0, -1},
	    {FD_FIFO_W, O_WRONLY, 0, -1},
	};
	static const struct {
		int fd;
		unsigned major, minor;
	} devs[] = {{FD_NULL, 1, 3}, {FD_ZERO, 1, 5}, {FD_URANDOM, 1, 9}};
	int mask = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECTORY;
	struct stat st;

	for (size_t i = 0; i < WL_ARRAY_SIZE(want); i++) {
		int fd = want[i].fd;
		off_t off = lseek(fd, 0, SEEK_CUR);

		if ((fcntl(fd, F_GETFL) & mask) != want[i].fl)
			wl_fail("fd %d: flags %#o, want %#o", fd, fcntl(fd, F_GETFL) & mask,
			        want[i].fl);
		if (fcntl(fd, F_GETFD) != want[i].fdfl)
			wl_fail("fd %d: FD_CLOEXEC is %s", fd, want[i].fdfl ? "off" : "on");
		if (want[i].off != -2 && off != want[i].off)
			wl_fail("fd %d: offset %lld, want %lld", fd, (long long)off,
			        (long long)want[i].off);
	}
	for (size_t i = 0; i < WL_ARRAY_SIZE(devs); i++)
		if (fstat(devs[i].fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
		    st.st_rdev != makedev(devs[i].major, devs[i].minor))
			wl_fail("fd %d is not the character device %u:%u", devs[i].fd,
			        devs[i].major, devs[i].minor);
	if (fstat(FD_DIR, &st) < 0 || !S_ISDIR(st.st_mode))
		wl_fail("fd %d is not a directory", FD_DIR);
}

/* The files read and write on from where they were. */
static void check_io(void)
{
	unsigned char buf[READ_LEN];
	struct stat st;

	if (read(FD_RW_DUP, buf, READ_LEN) != READ_LEN || !is_pattern(buf, READ_LEN, 1, RW_OFFSET))
		wl_fail("files-rw does not read on at offset %d", RW_OFFSET);
	if (lseek(FD_RW, 0, SEEK_CUR) != RW_OFFSET + READ_LEN)
		wl_fail("fds %d and %d no longer share their offset", FD_RW, FD_RW_DUP);
	if (write(FD_RW, "tail", 4) != 4 || fstat(FD_RW, &st) < 0 || st.st_size != RW_SIZE + 4)
		wl_fail("files-rw does not append");
	if (read(FD_RO, buf, READ_LEN) != READ_LEN || !is_pattern(buf, READ_LEN, 2, RO_OFFSET))
		wl_fail("read-only file content at offset %d differs", RO_OFFSET);
	if (read(FD_ZERO, buf, READ_LEN) != READ_LEN || buf[0] ||
	    memcmp(buf, buf + 1, READ_LEN - 1))
		wl_fail("/dev/zero does not read zeros");
	if (write(FD_NULL, buf, READ_LEN) != READ_LEN)
		wl_fail("/dev/null does not take writes");
	if (read(FD_URANDOM, buf, 16) != 16)
		wl_fail("/dev/urandom does not read");
}

static void check_streams(void)
{
	const char *why = check_unread(FD_FROM_CHILD, FROM_CHILD_LEN, 5);

	if (why)
		wl_fail("pipe from the child: %s", why);
	why = check_unread(FD_FIFO_R, FIFO_LEN, 4);
	if (why)
		wl_fail("fifo: %s", why);
}

static void check_shared_with_child(void)
{
	unsigned char buf[WO_OFFSET + READ_LEN];
	char *path = wl_side_path(".files-wo");
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	free(path);
	if (lseek(FD_WO, 0, SEEK_CUR) != WO_OFFSET + READ_LEN)
		wl_fail("fd %d no longer shares its offset with the child", FD_WO);
	if (fd < 0 || read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
	    !is_pattern(buf, sizeof(buf), 3, 0))
		wl_fail("files-wo does not hold what parent and child wrote");
	close(fd);
}

int main(void)
{
	pid_t child;

	wl_init("wl-files");
	setup_files();
	child = setup_child();
	setup_pipes();
	setup_fifo();
	record_all();
	wl_ready();

	wl_await_trigger();
	check_all_recorded();
	check_expected();
	check_streams();
	check_io();
	wl_expect_exit(child, 0);
	check_shared_with_child();
	wl_pass();
}
