/* Acting on the filesystem as another user while keeping root's other
 * rights: the filesystem uid and gid plus the supplementary groups, which
 * are what the kernel checks when a path is opened. A daemon running as root
 * uses it to open what a user's checkpoint names with that user's rights, so
 * the kernel itself decides what the user may reach (no check-then-open
 * window). Setting a non-zero fsuid drops CAP_DAC_OVERRIDE and the other
 * filesystem capabilities; CAP_SYS_PTRACE, CAP_SYS_ADMIN and the rest stay.
 * For a single-threaded process (credentials are per thread). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "shared/error.h"

struct cd_fs_identity {
	uid_t uid;
	gid_t gid;
	const gid_t *groups; /* supplementary groups, gid need not be among them */
	size_t ngroups;
};

/* What fsid_enter replaced, for fsid_leave. */
struct fsid_saved {
	uid_t fsuid;
	gid_t fsgid;
	gid_t *groups;
	int ngroups;
};

/* Takes on id's filesystem identity; on failure nothing has changed. */
int fsid_enter(const struct cd_fs_identity *id, struct fsid_saved *saved, cd_err *err);
/* Goes back to the identity saved by fsid_enter and frees saved. */
void fsid_leave(struct fsid_saved *saved);

/* The groups user uid belongs to by the group database, with gid; just gid
 * when uid has no passwd entry. The caller frees *ret. */
int fsid_user_groups(uid_t uid, gid_t gid, gid_t **ret, size_t *ret_n);
