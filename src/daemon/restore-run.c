/* One restore path for the daemon and `restore --no-server` (restore-run.h). */
#include "daemon/restore-run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/cr.h"
#include "engine/engine.h"
#include "job/proc.h"
#include "plugins/plugins.h"
#include "shared/cleanup.h"
#include "shared/fsid.h"
#include "shared/log.h"

static int make_user_dir(const char *scratch, const struct cr_owner *user, cd_err *err)
{
	_cleanup_free_ char *dir = NULL;

	if (asprintf(&dir, "%s/user", scratch) < 0)
		return cd_err_sys(err, ENOMEM, "restore");
	if (mkdir(dir, 0700) < 0 || chown(dir, user->uid, user->gid) < 0)
		return cd_err_sys(err, errno, "restore: scratch directory %s", dir);
	return 0;
}

/* A user's checkpoint is copied (or unpacked) into scratch/user/image, read
 * with the user's own rights, and restored from there: the scratch
 * directory is root's and private, so from the copy on, what is checked is
 * what is restored. A scratch directory root made in the user's directory
 * could be swapped for a link before the unpack writes into it. */
int cr_restore_scratch(const char *path, storage_compression format, const struct cr_owner *user,
                       char **ret, cd_err *err)
{
	_cleanup_free_ char *copy = strdup(path);
	const char *dir = copy ? dirname(copy) : "/tmp";
	char *scratch = NULL;

	*ret = NULL;
	if (format == STORAGE_NONE && !user)
		return 0;
	if (user)
		dir = "/var/tmp";
	else if (access(dir, W_OK | X_OK) < 0)
		dir = "/tmp";
	if (asprintf(&scratch, "%s/.cedana-restore-XXXXXX", dir) < 0)
		return cd_err_sys(err, ENOMEM, "restore");
	if (!mkdtemp(scratch)) {
		int e = errno;

		free(scratch);
		return cd_err_sys(err, e, "restore: scratch directory in %s", dir);
	}
	if (user && make_user_dir(scratch, user, err) < 0) {
		storage_remove(scratch, &(cd_err){0});
		free(scratch);
		return -err->code;
	}
	*ret = scratch;
	return 0;
}

/* Unpacks with the owner's identity into scratch/user/image. The owner may
 * not search root's private scratch directory, so the destination is named
 * relative to the working directory (which this process owns): a path walk
 * from there checks no directory above it. */
static int unpack_as_owner(const struct cr_restore_run *r, const storage_opts *so, cd_err *err)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct fsid_saved saved;
	int rc;

	if (asprintf(&dir, "%s/user", r->scratch) < 0)
		return cd_err_sys(err, ENOMEM, "restore");
	if (chdir(dir) < 0)
		return cd_err_sys(err, errno, "restore: %s", dir);
	rc = fsid_enter(&r->trust->id, &saved, err);
	if (rc == 0) {
		rc = storage_unpack(r->path, "image", so, NULL, NULL, err);
		fsid_leave(&saved);
	}
	if ((cwd >= 0 ? fchdir(cwd) : chdir("/")) < 0 && rc == 0)
		rc = cd_err_sys(err, errno, "restore: back to the working directory");
	return rc;
}

/* The image into the scratch directory, read with the owner's rights for a
 * user's checkpoint; *ret_dir the image directory to restore. */
static int unpack(const struct cr_restore_run *r, char **ret_dir, cd_err *err)
{
	storage_opts so = {.progress = r->unpack_progress, .userdata = r->userdata};
	double t0 = op_now_ms();
	int rc;

	if (asprintf(ret_dir, "%s/%simage", r->scratch, r->trust ? "user/" : "") < 0) {
		*ret_dir = NULL;
		return cd_err_sys(err, ENOMEM, "restore");
	}
	op_phase(r->op, "unpack");
	if (r->trust)
		rc = unpack_as_owner(r, &so, err);
	else
		rc = storage_unpack(r->path, *ret_dir, &so, NULL, NULL, err);
	if (rc < 0)
		return cd_err_wrap(err, "checkpoint %s", r->path);
	op_time(r->op, "unpack (read, decompress, verify)", op_now_ms() - t0);
	return 0;
}

/* Which slot is replaced by what: everything the engine is told about the
 * root's stdio is decided here. */
static void stdio_opts(const struct cr_stdio *s, struct cd_restore_opts *o)
{
	o->stdio_fd[0] = o->stdio_fd[1] = o->stdio_fd[2] = -1;
	o->stdio_external_only = 0;
	switch (s->kind) {
	case CR_STDIO_KEEP:
		break;
	case CR_STDIO_OUT:
		/* asked for: stdout and stderr; stdin only where it was ours */
		o->stdio_fd[0] = s->in;
		o->stdio_fd[1] = o->stdio_fd[2] = s->out;
		o->stdio_external_only = 1;
		break;
	case CR_STDIO_LOG:
		/* the job's own log again: what the job put on its stdio stays */
		o->stdio_fd[0] = s->in;
		o->stdio_fd[1] = o->stdio_fd[2] = s->out;
		o->stdio_external_only = 7;
		break;
	case CR_STDIO_TERMINAL:
		o->stdio_fd[0] = o->stdio_fd[1] = o->stdio_fd[2] = s->out;
		break;
	}
}

int cr_restore_run(const struct cr_restore_run *r, pid_t *ret_pid, cd_err *err)
{
	struct cd_restore_stats st = {0};
	struct cd_restore_opts o = {.version = CD_ENGINE_OPTS_VERSION,
	                            .dir = r->path,
	                            .stats = &st,
	                            .progress = r->engine_progress,
	                            .userdata = r->userdata,
	                            .leave_stopped = r->leave_stopped,
	                            .tcp_established = r->tcp_established,
	                            .tcp_close = r->tcp_close,
	                            .lazy = r->lazy};
	_cleanup_free_ char *image = NULL;

	if (r->scratch && unpack(r, &image, err) < 0)
		return -(err->code ? err->code : EIO);
	if (image)
		o.dir = image;
	if (r->trust) {
		o.open_as = &r->trust->id;
		o.check = image_trust_check;
		o.check_userdata = (void *)r->trust;
	}
	stdio_opts(&r->stdio, &o);
	/* after the unpack: no plugin code runs while the owner's files are read */
	double t0 = op_now_ms();
	if (cr_plugins_load(r->plugins_dir, &o.plugins, err) < 0)
		return -(err->code ? err->code : EIO);
	op_time(r->op, "plugins (scan, load)", op_now_ms() - t0);
	/* Until the engine's first progress call (its "verify" of System V
	 * segments' page files, or its "restore" once 4 MiB of pages are in): it
	 * reads and checks the image, opens its files, makes the tree. The
	 * tasks' page files are checksummed during "restore", not here. */
	op_phase(r->op, "prepare");
	int rc = cd_engine_restore(&o, ret_pid, err);
	cd_plugins_free(o.plugins);
	if (rc < 0)
		return rc;
	cr_restore_timings(r->op, &st);
	return 0;
}

/* In the server: serve until the pass ends; what went wrong is reported. */
static _Noreturn void lazy_server(struct cd_lazy *lz, int report_fd)
{
	cd_err err = {0};
	int r = cd_lazy_serve(lz, &err);

	if (r < 0) {
		log_error("%s", err.msg);
		if (report_fd >= 0)
			dprintf(report_fd, "cedana: %s\n", err.msg);
	}
	_exit(r < 0 ? 1 : 0);
}

int cr_lazy_spawn(struct cd_lazy *lz, pid_t root, int report_fd, const int *close_fds,
                  size_t nclose, cd_err *err)
{
	pid_t p = fork();

	if (p == 0) {
		for (size_t i = 0; i < nclose; i++)
			if (close_fds[i] >= 0 && close_fds[i] != report_fd)
				close(close_fds[i]);
		lazy_server(lz, report_fd);
	}
	int e = errno;
	/* ours would keep every fault waiting once the server is gone */
	cd_lazy_free(lz);
	if (p < 0) {
		proc_signal_tree(root, SIGKILL);
		return cd_err_sys(err, e, "lazy restore: start the server");
	}
	return 0;
}

int cr_plugins_load(const char *dir, struct cd_plugins **ret, cd_err *err)
{
	const char *d = dir && dir[0] ? dir : cd_plugins_default_dir();
	int r = cd_plugins_load(d, ret, err);

	if (r < 0)
		return cd_err_wrap(err, "plugins");
	for (size_t i = 0; i < (*ret)->n; i++)
		if ((*ret)->v[i].status == CD_PLUGIN_BROKEN)
			log_warn("plugin %s (%s): %s", (*ret)->v[i].name, (*ret)->v[i].path,
			         (*ret)->v[i].detail);
	return 0;
}
