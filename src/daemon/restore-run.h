/* One restore path for the daemon's worker (POST /v1/restore) and the CLI's
 * `restore --no-server` (crun style: the CLI only parses flags): where an
 * archive is unpacked, which of the root's std slots are replaced and by
 * what, the engine call, and the timings. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "daemon/image-trust.h"
#include "daemon/op.h"
#include "engine/engine.h"
#include "shared/error.h"
#include "storage/storage.h"

/* What the restore caller asked for the root's stdio. The one place that
 * turns it into the engine's replacements (docs/engine.md, "External
 * stdio"): only what was asked for is replaced, the rest comes back as the
 * object it was. */
enum cr_stdio_kind {
	CR_STDIO_KEEP, /* nothing asked: external slots take the caller's own fds 0-2 */
	CR_STDIO_OUT,  /* --out: stdout and stderr go to out; in (if >= 0) to an external stdin */
	CR_STDIO_LOG,  /* the daemon's own log of a job: in, out, out, external slots only */
	CR_STDIO_TERMINAL, /* --attach, --attachable: every slot is the terminal */
};

struct cr_stdio {
	enum cr_stdio_kind kind;
	int in, out; /* the caller's; out is the terminal for CR_STDIO_TERMINAL */
};

struct cr_restore_run {
	const char *path;           /* the checkpoint: an image directory or an archive */
	storage_compression format; /* cr_image_format's */
	/* where an archive (or a user's checkpoint) is unpacked: a private
	 * directory the caller made with cr_restore_scratch, and removes */
	const char *scratch;
	const struct image_trust *trust; /* a user's checkpoint; NULL: root's */
	struct cr_stdio stdio;
	bool leave_stopped;
	/* the engine's tcp_established and tcp_close (engine.h) */
	bool tcp_established, tcp_close;
	/* progress of the unpack and of the engine's stages; timings go to op */
	storage_progress_fn unpack_progress;
	cd_progress_fn engine_progress;
	void *userdata;
	struct op_shared *op;
	const char *plugins_dir; /* config's plugins.dir; NULL or "": the default */
	/* Lazy restore (engine.h's lazy): non-NULL, *lazy gets the server the
	 * caller must start at once (cr_lazy_spawn); NULL when none is needed. */
	struct cd_lazy **lazy;
};

/* The scratch directory for a restore of path (*ret NULL when none is
 * needed: a directory of root's): beside an archive when we may write
 * there, else in /tmp; a user's checkpoint (user not NULL) always in the
 * sticky, root-owned /var/tmp, with a subdirectory "user" the user owns. */
struct cr_owner {
	uid_t uid;
	gid_t gid;
};
int cr_restore_scratch(const char *path, storage_compression format, const struct cr_owner *user,
                       char **ret, cd_err *err);

/* Unpacks (as the owner for a user's checkpoint), restores, records the
 * timings. The tree is the caller's child, running (stopped with
 * leave_stopped); *ret_pid its root. */
int cr_restore_run(const struct cr_restore_run *r, pid_t *ret_pid, cd_err *err);

/* Starts the server of a lazy restore in a child process of its own, which
 * outlives the caller (a daemon's worker, the CLI): it answers the tree's
 * page faults and loads the rest, then exits. A read error or bad checksum
 * kills the tree (root: the restored root) and is written to report_fd
 * (the job's log, the CLI's stderr; -1: none) and the log. The caller's
 * copies of the server's fds are closed (they must not outlive it), lz is
 * freed; close[] (nclose of them) are closed in the server. */
int cr_lazy_spawn(struct cd_lazy *lz, pid_t root, int report_fd, const int *close_fds,
                  size_t nclose, cd_err *err);

/* The plugins of dir (NULL or "": cd_plugins_default_dir()), for a dump or
 * restore in this process; the set lives until the process exits. A plugin
 * that fails to load is kept as broken and logged, never fatal. */
struct cd_plugins;
int cr_plugins_load(const char *dir, struct cd_plugins **ret, cd_err *err);
