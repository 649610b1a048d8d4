/* Checking a dump directory with the caller's credentials rather than the
 * daemon's. A child process does it: changing uid or groups in the daemon
 * itself would affect all its threads. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/cleanup.h"
#include "storage/internal.h"

char *storage_dest_path(const char *dir, const char *name, storage_compression c, cd_err *err)
{
	char *path = NULL;

	if (asprintf(&path, "%s/%s%s", dir, name, storage_compression_suffix(c)) < 0) {
		cd_err_sys(err, ENOMEM, "%s/%s", dir, name);
		return NULL;
	}
	return path;
}

/* Supplementary groups of uid, looked up before fork (NSS is not safe to use
 * in the child of a threaded process). */
static int groups_of(uid_t uid, gid_t gid, gid_t **ret, int *ret_n)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	int n = 32;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || !found) {
		*ret = NULL; /* unknown user: primary group only */
		*ret_n = 0;
		return 0;
	}
	for (;;) {
		gid_t *g = malloc((size_t)n * sizeof(*g));
		int want = n;

		if (!g)
			return -ENOMEM;
		if (getgrouplist(found->pw_name, gid, g, &want) >= 0) {
			*ret = g;
			*ret_n = want;
			return 0;
		}
		free(g);
		n = want > n ? want : n * 2;
	}
}

static void child_check(const char *dir, uid_t uid, gid_t gid, const gid_t *groups, int n)
{
	if (setgroups((size_t)n, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		_exit(2);
	_exit(access(dir, W_OK | X_OK) == 0 ? 0 : errno == EACCES || errno == EPERM ? 1 : 3);
}

int storage_check_writable(const char *dir, uid_t uid, gid_t gid, cd_err *err)
{
	_cleanup_free_ gid_t *groups = NULL;
	int n = 0, status, r;
	pid_t pid;

	if (access(dir, F_OK) < 0)
		return cd_err_sys(err, errno, "%s", dir);
	if (uid == 0)
		return 0;
	r = groups_of(uid, gid, &groups, &n);
	if (r < 0)
		return cd_err_sys(err, r, "groups of uid %u", (unsigned)uid);
	pid = fork();
	if (pid < 0)
		return cd_err_sys(err, errno, "fork");
	if (pid == 0)
		child_check(dir, uid, gid, groups, n);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cd_err_sys(err, errno, "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 2 || WEXITSTATUS(status) == 3)
		return cd_err_set(err, EIO, "%s: could not check access for uid %u", dir,
		                  (unsigned)uid);
	if (WEXITSTATUS(status) == 1)
		return cd_err_set(err, EACCES, "%s: not writable by uid %u: Permission denied", dir,
		                  (unsigned)uid);
	return 0;
}
