/* A checkpoint of a user's job is the user's file: they may have edited any
 * field of its manifest to ask for more than they have. Root restores it
 * only after every field has been checked against what that user may do,
 * on the manifest exactly as the engine decoded it (the engine's check
 * callback), and with the image's paths opened under the user's own
 * filesystem rights (the engine's open_as). */
#pragma once

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "shared/error.h"
#include "shared/fsid.h"

struct image_trust {
	uid_t owner;
	gid_t gid;
	gid_t *groups; /* the owner's, by the group database, gid included */
	size_t ngroups;
	struct cd_fs_identity id; /* the owner's filesystem identity */
	/* what a job of the owner started by the daemon inherits: the daemon's own */
	struct rlimit rlim[RLIM_NLIMITS];
	int nice;
	int oom_floor; /* the lowest oom_score_adj the owner may keep */
};

/* Reads the owner's groups and the daemon's own limits. */
int image_trust_init(struct image_trust *t, uid_t owner, gid_t gid, cd_err *err);
void image_trust_clear(struct image_trust *t);

/* The engine's check callback (userdata: struct image_trust). 0 when every
 * task asks for nothing the owner could not have had on their own: their
 * own uids and gids in every slot, supplementary groups among theirs, no
 * capabilities, hard limits no higher than the daemon's, a nice value and
 * an oom_score_adj an unprivileged process may set, dumpable 0 or 1, / as
 * root, and files, directories and mappings the owner may access as the
 * image uses them. Else -EPERM naming the task and the field. */
int image_trust_check(const struct cd_image *img, void *trust, cd_err *err);
