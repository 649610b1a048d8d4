#include "daemon/image-trust.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/image.h"
#include "shared/cleanup.h"

/* The groups owner belongs to by the group database, gid included. */
static int owner_groups(uid_t owner, gid_t gid, gid_t **ret, int *ret_n)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n = 64;

	if (getpwuid_r(owner, &pw, buf, sizeof(buf), &res) != 0 || !res) {
		*ret = malloc(sizeof(gid_t));
		if (!*ret)
			return -ENOMEM;
		(*ret)[0] = gid;
		*ret_n = 1;
		return 0;
	}
	for (;;) {
		gid_t *g = malloc((size_t)n * sizeof(gid_t));
		int want = n;

		if (!g)
			return -ENOMEM;
		if (getgrouplist(pw.pw_name, gid, g, &want) >= 0) {
			*ret = g;
			*ret_n = want;
			return 0;
		}
		free(g);
		if (want <= n)
			return -EIO;
		n = want;
	}
}

static bool ids_are(json_t *ids, json_int_t want)
{
	if (!json_is_array(ids) || json_array_size(ids) != 4)
		return false;
	for (size_t i = 0; i < 4; i++) {
		json_t *v = json_array_get(ids, i);

		if (!json_is_integer(v) || (uint32_t)json_integer_value(v) != (uint32_t)want)
			return false;
	}
	return true;
}

static bool groups_allowed(json_t *groups, const gid_t *allowed, int n)
{
	size_t i;
	json_t *v;

	if (!json_is_array(groups))
		return false;
	json_array_foreach(groups, i, v)
	{
		bool found = false;

		if (!json_is_integer(v))
			return false;
		for (int k = 0; k < n && !found; k++)
			found = (uint32_t)json_integer_value(v) == (uint32_t)allowed[k];
		if (!found)
			return false;
	}
	return true;
}

static int check_task(json_t *task, uid_t owner, gid_t gid, const gid_t *groups, int ngroups,
                      cd_err *err)
{
	static const char *const caps[] = {"cap_inh", "cap_prm", "cap_eff", "cap_amb"};
	json_int_t pid = json_integer_value(json_object_get(task, "pid"));

	if (!ids_are(json_object_get(task, "uids"), owner))
		return cd_err_set(err, EPERM, "task %lld: uids are not all %u, the job's owner",
		                  (long long)pid, (unsigned)owner);
	if (!ids_are(json_object_get(task, "gids"), gid))
		return cd_err_set(err, EPERM, "task %lld: gids are not all %u, the job's group",
		                  (long long)pid, (unsigned)gid);
	if (!groups_allowed(json_object_get(task, "groups"), groups, ngroups))
		return cd_err_set(err, EPERM,
		                  "task %lld: supplementary groups the job's owner is not in",
		                  (long long)pid);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		json_t *v = json_object_get(task, caps[i]);

		if (!json_is_integer(v) || json_integer_value(v) != 0)
			return cd_err_set(err, EPERM, "task %lld: %s is not empty", (long long)pid,
			                  caps[i]);
	}
	return 0;
}

/* What the engine opens as root on the task's behalf: every such path with
 * the access (R_OK, W_OK, X_OK) the owner needs for it. */
struct path_need {
	const char *path; /* in the manifest */
	int mode;
};

struct needs {
	struct path_need *v;
	size_t n, cap;
};

static int need(struct needs *ns, json_t *path, int mode)
{
	if (!json_is_string(path))
		return 0;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 32;
		struct path_need *v = realloc(ns->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	ns->v[ns->n++] = (struct path_need){json_string_value(path), mode};
	return 0;
}

static int access_mode(json_int_t flags)
{
	switch (flags & O_ACCMODE) {
	case O_WRONLY:
		return W_OK;
	case O_RDWR:
		return R_OK | W_OK;
	default:
		return R_OK;
	}
}

static int collect_paths(json_t *task, struct needs *ns)
{
	json_t *v;
	size_t i;
	int r = need(ns, json_object_get(task, "cwd"), X_OK);

	json_array_foreach(json_object_get(task, "fds"), i, v)
	{
		json_int_t kind = json_integer_value(json_object_get(v, "kind"));

		if (r == 0 && (kind == 0 || kind == 1 || kind == 2 || kind == 4))
			r = need(ns, json_object_get(v, "path"),
			         access_mode(json_integer_value(json_object_get(v, "flags"))));
	}
	json_array_foreach(json_object_get(task, "vmas"), i, v)
	{
		json_int_t kind = json_integer_value(json_object_get(v, "kind"));
		json_int_t prot = json_integer_value(json_object_get(v, "prot"));

		if (r == 0 && (kind == 1 || kind == 2))
			r = need(ns, json_object_get(v, "path"),
			         R_OK | (kind == 2 && (prot & 2) ? W_OK : 0));
	}
	return r;
}

/* In a child with the owner's credentials (real ones, which faccessat
 * checks): *ret_idx is the index of the first path the owner may not access
 * as needed, -1 when there is none. */
static int first_denied(const struct needs *ns, uid_t owner, gid_t gid, const gid_t *groups,
                        int ngroups, int *ret_idx, cd_err *err)
{
	int p[2], status = 0;
	int32_t bad = -1;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return cd_err_sys(err, errno, "image check: pipe");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return cd_err_sys(err, errno, "image check: fork");
	}
	if (pid == 0) {
		int32_t i = 0;

		if (setgroups((size_t)ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(owner, owner, owner) < 0)
			_exit(2);
		for (; (size_t)i < ns->n; i++)
			if (faccessat(AT_FDCWD, ns->v[i].path, ns->v[i].mode, 0) < 0)
				break;
		if ((size_t)i < ns->n && write(p[1], &i, sizeof(i)) != sizeof(i))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &bad, sizeof(bad)) != sizeof(bad))
		bad = -1;
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cd_err_set(err, EPERM, "image check: cannot take on uid %u",
		                  (unsigned)owner);
	*ret_idx = bad >= 0 && (size_t)bad < ns->n ? bad : -1;
	return 0;
}

/* 0 when every path is the owner's to use, else -EPERM naming one. */
static int check_paths(json_t *tasks, uid_t owner, gid_t gid, const gid_t *groups, int ngroups,
                       cd_err *err)
{
	struct needs ns = {0};
	json_t *task;
	size_t i;
	int r = 0, idx = -1;

	json_array_foreach(tasks, i, task)
	{
		json_t *root = json_object_get(task, "root");

		/* a user cannot chroot: a task of theirs has / as its root */
		if (json_is_string(root) && strcmp(json_string_value(root), "/") != 0)
			r = cd_err_set(err, EPERM, "task %lld: root directory %s is not /",
			               (long long)json_integer_value(json_object_get(task, "pid")),
			               json_string_value(root));
		if (r == 0 && collect_paths(task, &ns) < 0)
			r = cd_err_sys(err, ENOMEM, "image check");
		if (r < 0)
			break;
	}
	if (r == 0 && ns.n) {
		r = first_denied(&ns, owner, gid, groups, ngroups, &idx, err);
		if (r == 0 && idx >= 0)
			r = cd_err_set(err, EPERM, "uid %u may not %s %s", (unsigned)owner,
			               ns.v[idx].mode == X_OK   ? "enter"
			               : ns.v[idx].mode == R_OK ? "read"
			               : ns.v[idx].mode == W_OK ? "write"
			                                        : "read and write",
			               ns.v[idx].path);
	}
	free(ns.v);
	return r;
}

/* Read as the engine reads it: whole, bounded, no link followed (issue 11). */
static int load_manifest(const char *dir, json_t **ret, cd_err *err)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dirfd < 0)
		return cd_err_sys(err, errno, "open");
	return cd_image_load_manifest(dirfd, ret, err);
}

int image_trust_check(const char *dir, uid_t owner, gid_t gid, cd_err *err)
{
	_cleanup_free_ gid_t *groups = NULL;
	_cleanup_free_ char *path = NULL;
	json_t *m = NULL, *tasks, *task;
	size_t i;
	int ngroups = 0, r = 0;

	if (owner == 0)
		return 0;
	if (asprintf(&path, "%s/manifest.json", dir) < 0) {
		path = NULL;
		return cd_err_sys(err, ENOMEM, "image %s", dir);
	}
	r = owner_groups(owner, gid, &groups, &ngroups);
	if (r < 0)
		return cd_err_sys(err, r, "image %s: groups of uid %u", dir, (unsigned)owner);
	r = load_manifest(dir, &m, err);
	if (r < 0)
		return cd_err_wrap(err, "image %s", dir);
	tasks = json_object_get(m, "tasks");
	if (!json_is_array(tasks) || json_array_size(tasks) == 0)
		r = cd_err_set(err, EINVAL, "image %s: no tasks", path);
	json_array_foreach(tasks, i, task)
	{
		r = check_task(task, owner, gid, groups, ngroups, err);
		if (r < 0)
			break;
	}
	if (r == 0)
		r = check_paths(tasks, owner, gid, groups, ngroups, err);
	json_decref(m);
	if (r < 0)
		return cd_err_wrap(err,
		                   "refused: the checkpoint of a job of uid %u asks for more than "
		                   "that user has (%s)",
		                   (unsigned)owner, path);
	return 0;
}
