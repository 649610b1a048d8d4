/* wl-locks: file locks of every kind. On file A: POSIX read lock 0-9 and write lock 20-EOF
 * through fd 10, an OFD write lock 12-14 through fd 11 (its own open file); on file B: an
 * exclusive flock through fd 12, whose open file a child shares. After the trigger a new
 * process (forked then, so outside any checkpoint) finds each lock held exactly as before with
 * F_GETLK and flock, and /proc/locks lists the same locks. */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "wl.h"

#define FD_POSIX 10
#define FD_OFD   11
#define FD_FLOCK 12
#define LOCKS_SZ 4096

struct probe {
	const char *what;
	short type;         /* the lock the checker asks for */
	off_t start, len;   /* of the range it asks about */
	short held;         /* the lock F_GETLK reports, F_UNLCK for none */
	off_t hstart, hlen; /* its range */
	bool ofd;           /* held as an OFD lock: F_GETLK reports pid -1 */
};

static const struct probe probes[] = {
    {"POSIX read lock 0-9 (read)", F_RDLCK, 0, 10, F_UNLCK, 0, 0, false},
    {"POSIX read lock 0-9 (write)", F_WRLCK, 0, 10, F_RDLCK, 0, 10, false},
    {"gap 10-11", F_WRLCK, 10, 2, F_UNLCK, 0, 0, false},
    {"OFD write lock 12-14", F_RDLCK, 13, 1, F_WRLCK, 12, 3, true},
    {"gap 15-19", F_WRLCK, 15, 5, F_UNLCK, 0, 0, false},
    {"POSIX write lock 20-EOF", F_RDLCK, 1000, 1, F_WRLCK, 20, 0, false},
};

static void lock_range(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	if (fcntl(fd, cmd, &fl) < 0)
		wl_fail("lock fd %d %lld+%lld: %s", fd, (long long)start, (long long)len,
		        strerror(errno));
}

static int open_file(const char *path, int at)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	wl_place_fd(fd, at);
	return at;
}

/* The lines of /proc/locks on our two files, without their numbers. */
static void read_locks(const struct stat *a, const struct stat *b, char *out)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256], id[64];
	size_t len = 0;

	if (!f)
		wl_fail("open /proc/locks: %s", strerror(errno));
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		const char *body = strchr(line, ':');
		for (int i = 0; i < 2; i++) {
			const struct stat *st = i ? b : a;
			snprintf(id, sizeof(id), " %02x:%02x:%lu ", major(st->st_dev),
			         minor(st->st_dev), (unsigned long)st->st_ino);
			if (body && strstr(line, id) && len + strlen(body) < LOCKS_SZ) {
				strcpy(out + len, body + 2);
				len += strlen(body + 2);
			}
		}
	}
	fclose(f);
}

static void setup(const char *a, const char *b)
{
	open_file(a, FD_POSIX);
	open_file(a, FD_OFD);
	open_file(b, FD_FLOCK);
	if (ftruncate(FD_POSIX, 100) < 0)
		wl_fail("ftruncate: %s", strerror(errno));
	lock_range(FD_POSIX, F_SETLK, F_RDLCK, 0, 10);
	lock_range(FD_POSIX, F_SETLK, F_WRLCK, 20, 0);
	lock_range(FD_OFD, F_OFD_SETLK, F_WRLCK, 12, 3);
	if (flock(FD_FLOCK, LOCK_EX | LOCK_NB) < 0)
		wl_fail("flock: %s", strerror(errno));
	/* the child shares the flock's open file: fds survive exec-less fork */
	wl_fork_idle_child();
}

/* In a new process: each probe sees the lock it should. */
static int checker(void *arg)
{
	const char **paths = arg;
	int fa = open(paths[0], O_RDWR | O_CLOEXEC), fb = open(paths[1], O_RDWR | O_CLOEXEC);

	if (fa < 0 || fb < 0)
		wl_child_fail("open: %s", strerror(errno));
	for (size_t i = 0; i < WL_ARRAY_SIZE(probes); i++) {
		const struct probe *p = &probes[i];
		struct flock fl = {
		    .l_type = p->type, .l_whence = SEEK_SET, .l_start = p->start, .l_len = p->len};
		if (fcntl(fa, F_GETLK, &fl) < 0)
			wl_child_fail("F_GETLK: %s", strerror(errno));
		if (fl.l_type != p->held)
			wl_child_fail("%s: F_GETLK reports type %d, want %d", p->what, fl.l_type,
			              p->held);
		if (p->held == F_UNLCK)
			continue;
		if (fl.l_start != p->hstart || fl.l_len != p->hlen)
			wl_child_fail("%s: held at %lld+%lld", p->what, (long long)fl.l_start,
			              (long long)fl.l_len);
		if (fl.l_pid != (p->ofd ? -1 : getppid()))
			wl_child_fail("%s: held by pid %d", p->what, (int)fl.l_pid);
	}
	if (flock(fb, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		wl_child_fail("flock on file B is not held");
	return 0;
}

static void check(const char **paths, const char *before, const struct stat *a,
                  const struct stat *b)
{
	char after[LOCKS_SZ];
	int status;

	read_locks(a, b, after);
	if (strcmp(before, after))
		wl_fail("/proc/locks had\n%sand has\n%s", before, after);
	pid_t pid = wl_spawn(checker, paths);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		wl_fail("a lock is not held as it was (see stderr)");
	if (waitpid(wl_children[0], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		wl_fail("the child sharing the flock failed");
}

int main(void)
{
	char before[LOCKS_SZ];
	const char *paths[2];
	struct stat a, b;

	wl_init("wl-locks");
	paths[0] = wl_side_path(".locks-a");
	paths[1] = wl_side_path(".locks-b");
	unlink(paths[0]);
	unlink(paths[1]);
	setup(paths[0], paths[1]);
	if (fstat(FD_POSIX, &a) < 0 || fstat(FD_FLOCK, &b) < 0)
		wl_fail("fstat: %s", strerror(errno));
	read_locks(&a, &b, before);
	if (!*before)
		wl_fail("/proc/locks lists none of our locks");
	wl_ready();
	wl_await_trigger();
	check(paths, before, &a, &b);
	unlink(paths[0]);
	unlink(paths[1]);
	wl_pass();
}
