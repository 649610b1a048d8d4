#include "daemon/image-trust.h"

#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

int image_trust_check(const char *dir, uid_t owner, gid_t gid, cd_err *err)
{
	_cleanup_free_ gid_t *groups = NULL;
	_cleanup_free_ char *path = NULL;
	json_error_t jerr;
	json_t *m, *tasks, *task;
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
	m = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!m)
		return cd_err_set(err, EINVAL, "image %s: %s", path, jerr.text);
	tasks = json_object_get(m, "tasks");
	if (!json_is_array(tasks) || json_array_size(tasks) == 0)
		r = cd_err_set(err, EINVAL, "image %s: no tasks", path);
	json_array_foreach(tasks, i, task)
	{
		r = check_task(task, owner, gid, groups, ngroups, err);
		if (r < 0)
			break;
	}
	json_decref(m);
	if (r < 0)
		return cd_err_wrap(err,
		                   "refused: the checkpoint of a job of uid %u asks for more than "
		                   "that user has (%s)",
		                   (unsigned)owner, path);
	return 0;
}
