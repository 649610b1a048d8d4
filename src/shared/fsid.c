#include "shared/fsid.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <unistd.h>

/* setfsuid reports the previous id, never an error: asking again with an
 * impossible id (-1) tells whether the change took. */
static int set_fs_ids(uid_t uid, gid_t gid)
{
	setfsgid(gid);
	setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid)
		return -EPERM;
	return 0;
}

static int save_groups(struct fsid_saved *s)
{
	int n = getgroups(0, NULL);

	if (n < 0)
		return -errno;
	s->groups = malloc(((size_t)n + 1) * sizeof(gid_t));
	if (!s->groups)
		return -ENOMEM;
	s->ngroups = getgroups(n, s->groups);
	if (s->ngroups < 0) {
		free(s->groups);
		s->groups = NULL;
		return -errno;
	}
	return 0;
}

int fsid_enter(const struct cd_fs_identity *id, struct fsid_saved *saved, cd_err *err)
{
	int r;

	saved->fsuid = (uid_t)setfsuid((uid_t)-1);
	saved->fsgid = (gid_t)setfsgid((gid_t)-1);
	r = save_groups(saved);
	if (r < 0)
		return cd_err_sys(err, -r, "act as uid %u: save groups", (unsigned)id->uid);
	if (setgroups(id->ngroups, id->groups) < 0) {
		r = cd_err_sys(err, errno, "act as uid %u: setgroups", (unsigned)id->uid);
		free(saved->groups);
		saved->groups = NULL;
		return r;
	}
	if (set_fs_ids(id->uid, id->gid) < 0) {
		fsid_leave(saved);
		return cd_err_set(err, EPERM, "cannot act as uid %u", (unsigned)id->uid);
	}
	return 0;
}

void fsid_leave(struct fsid_saved *saved)
{
	set_fs_ids(saved->fsuid, saved->fsgid);
	if (saved->groups)
		setgroups((size_t)saved->ngroups, saved->groups);
	free(saved->groups);
	saved->groups = NULL;
}

int fsid_user_groups(uid_t uid, gid_t gid, gid_t **ret, size_t *ret_n)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n = 64;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res) {
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
			*ret_n = (size_t)want;
			return 0;
		}
		free(g);
		if (want <= n)
			return -EIO;
		n = want;
	}
}
