/* wl-procfile [outside|cwd-deleted]: /proc files of tasks of the tree, in a parent with a child:
 *   10  /proc/self/status (the kernel names it /proc/PID/status), FD_CLOEXEC
 *   11  /proc/CHILD/stat, read up to the comm: "CHILD " (offset: its length)
 *   12  /proc/self/task, O_DIRECTORY
 * After the trigger each names the same path, fd 10 reads our own status (Pid: line), fd 11 is
 * at the same offset and reads the
 * child's stat on from there (its parent: us), fd 12 lists our pid as a thread.
 * With `outside` fd 13 is /proc/PPID/stat (our parent: not in the checkpoint); with
 * `cwd-deleted` the working directory is <trigger>.cwd, removed. The engine refuses either
 * dump, naming it, and the run goes on to PASS. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "wl.h"

static char names[3][PATH_MAX];
static off_t stat_off;

static void name_of(int fd, char *buf)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, PATH_MAX - 1);
	if (n < 0)
		wl_fail("fd %d: readlink: %s", fd, strerror(errno));
	buf[n] = 0;
}

static void check(pid_t child)
{
	char buf[4096], want[64], path[PATH_MAX];
	ssize_t n;

	for (int i = 0; i < 3; i++) {
		name_of(10 + i, path);
		if (strcmp(path, names[i]))
			wl_fail("fd %d: now %s, was %s", 10 + i, path, names[i]);
	}
	if (fcntl(10, F_GETFD) != FD_CLOEXEC)
		wl_fail("fd 10: FD_CLOEXEC lost");
	n = pread(10, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "\nPid:\t%d\n", (int)getpid());
	if (!strstr(buf, want))
		wl_fail("fd 10: not our status");
	if (lseek(11, 0, SEEK_CUR) != stat_off)
		wl_fail("fd 11: offset %lld, want %lld", (long long)lseek(11, 0, SEEK_CUR),
		        (long long)stat_off);
	n = read(11, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	/* the text after the offset is made again at the seek (by the restore), so only what
	 * was already so then is checked: the child's parent is us */
	char *end = strrchr(buf, ')'), state;
	int ppid;
	if (n <= 0 || buf[0] != '(' || !end || sscanf(end + 1, " %c %d", &state, &ppid) != 2 ||
	    ppid != getpid())
		wl_fail("fd 11: does not read on through the child's stat: %.40s", buf);
	DIR *d = fdopendir(dup(12));
	struct dirent *de;
	bool found = false;
	snprintf(want, sizeof(want), "%d", (int)getpid());
	while (d && (de = readdir(d)))
		found |= !strcmp(de->d_name, want);
	if (!found)
		wl_fail("fd 12: our pid is not in the task directory");
}

int main(int argc, char **argv)
{
	bool outside = argc > 1 && !strcmp(argv[1], "outside");
	bool cwd_deleted = argc > 1 && !strcmp(argv[1], "cwd-deleted");
	char path[64], buf[16];
	pid_t child;

	wl_init("wl-procfile");
	child = wl_fork_idle_child();
	wl_place_fd(open("/proc/self/status", O_RDONLY), 10);
	fcntl(10, F_SETFD, FD_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)child);
	wl_place_fd(open(path, O_RDONLY), 11);
	stat_off = snprintf(buf, sizeof(buf), "%d ", (int)child);
	if (read(11, buf, (size_t)stat_off) != stat_off)
		wl_fail("read %s: %s", path, strerror(errno));
	wl_place_fd(open("/proc/self/task", O_RDONLY | O_DIRECTORY), 12);
	for (int i = 0; i < 3; i++)
		name_of(10 + i, names[i]);
	if (outside) {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)getppid());
		wl_place_fd(open(path, O_RDONLY), 13);
	}
	if (cwd_deleted) {
		char *dir = wl_side_path(".cwd");
		if (mkdir(dir, 0700) < 0 || chdir(dir) < 0 || rmdir(dir) < 0)
			wl_fail("deleted cwd %s: %s", dir, strerror(errno));
	}
	wl_ready();
	wl_await_trigger();
	check(child);
	wl_expect_exit(child, 0);
	wl_pass();
}
