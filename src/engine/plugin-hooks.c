/* The plugin hook points of the dump and the restore (docs/plugins.md):
 * which hook runs when, for which task, and what the image records of it. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "engine/image-fields.h"
#include "engine/internal.h"
#include "plugins/plugins.h"
#include "shared/log.h"

#define HOOK_TIMEOUT_MS 10000

/* Only the first 64 plugins of a directory take part: the masks below. */
#define MAX_SLOTS 64

static size_t nslots(const struct cd_plugins *ps)
{
	return ps ? (ps->n < MAX_SLOTS ? ps->n : MAX_SLOTS) : 0;
}

static int record(struct cd_image *img, const char *name, pid_t pid, cd_err *err)
{
	struct cd_image_plugin *p = cd_image_plugin_get(img, name);

	if (!p)
		return cd_err_set(err, ENOMEM, "plugin %s: cannot record it in the image", name);
	for (size_t k = 0; k < p->npids; k++)
		if (p->pids[k] == pid)
			return 0;
	pid_t *v = realloc(p->pids, (p->npids + 1) * sizeof(*v));
	if (!v)
		return cd_err_set(err, ENOMEM, "out of memory");
	p->pids = v;
	p->pids[p->npids++] = pid;
	return 0;
}

static struct cd_plugin_ctx dump_ctx(const struct cd_dump_plugins *dp, pid_t pid)
{
	return (struct cd_plugin_ctx){.pid = pid,
	                              .image_dir = dp->dir,
	                              .timeout_ms = HOOK_TIMEOUT_MS,
	                              .leave_running = dp->leave_running};
}

bool cd_plugins_dump_claim(struct cd_dump_plugins *dp, struct cd_image *img,
                           const struct cd_plugin_object *obj)
{
	struct cd_plugin_ctx ctx = dump_ctx(dp, obj->pid);
	const char *name = cd_plugins_claim(dp->ps, &ctx, obj);
	cd_err ignored = {0};

	if (!name)
		return false;
	if (obj->fd >= 0)
		log_debug("pid %d: fd %d (%s): claimed by plugin %s", obj->pid, obj->fd, obj->path,
		          name);
	else
		log_debug("pid %d: mapping %" PRIx64 "-%" PRIx64 " (%s): claimed by plugin %s",
		          obj->pid, obj->start, obj->end, obj->path, name);
	/* out of memory: the object is still refused */
	return record(img, name, obj->pid, &ignored) == 0;
}

int cd_plugins_dump_pause(struct cd_dump_plugins *dp, struct cd_image *img, pid_t pid, cd_err *err)
{
	uint64_t mask = 0;
	int r = 0;

	for (size_t i = 0; i < nslots(dp->ps); i++) {
		struct cd_plugin_ctx ctx = dump_ctx(dp, pid);
		r = cd_plugin_call(dp->ps, &dp->ps->v[i], CD_HOOK_PAUSE_DEVICES, &ctx, err);
		if (r < 0)
			break;
		if (r == CD_PLUGIN_OK) {
			mask |= 1ull << i;
			if ((r = record(img, dp->ps->v[i].name, pid, err)) < 0)
				break;
		}
	}
	/* the ones that paused are resumed, even when a later one failed */
	if (mask) {
		dp->paused[dp->npaused].pid = pid;
		dp->paused[dp->npaused++].mask = mask;
	}
	return r < 0 ? cd_err_wrap(err, "pid %d", pid) : 0;
}

int cd_plugins_dump_checkpoint(struct cd_dump_plugins *dp, struct cd_image *img, cd_err *err)
{
	for (size_t t = 0; t < img->ntasks; t++) {
		pid_t pid = img->tasks[t].pid;
		if (img->tasks[t].zombie)
			continue;
		for (size_t i = 0; i < nslots(dp->ps); i++) {
			struct cd_plugin_ctx ctx = dump_ctx(dp, pid);
			int r = cd_plugin_call(dp->ps, &dp->ps->v[i], CD_HOOK_CHECKPOINT_DEVICES,
			                       &ctx, err);
			if (r == CD_PLUGIN_OK)
				r = record(img, dp->ps->v[i].name, pid, err);
			if (r < 0)
				return cd_err_wrap(err, "pid %d", pid);
		}
	}
	return 0;
}

int cd_plugins_dump_resume(struct cd_dump_plugins *dp, bool failed, cd_err *err)
{
	int ret = 0;

	/* every one is tried; the first failure is reported */
	for (size_t k = 0; k < dp->npaused; k++)
		for (size_t i = 0; i < nslots(dp->ps); i++) {
			if (!(dp->paused[k].mask & (1ull << i)))
				continue;
			struct cd_plugin_ctx ctx = dump_ctx(dp, dp->paused[k].pid);
			cd_err e = {0};
			ctx.failed = failed;
			int r =
			    cd_plugin_call(dp->ps, &dp->ps->v[i], CD_HOOK_RESUME_DEVICES, &ctx, &e);
			if (r < 0 && ret == 0) {
				*err = e;
				ret = cd_err_wrap(err, "pid %d", dp->paused[k].pid);
			}
		}
	dp->npaused = 0;
	return ret;
}

int cd_plugins_restore_check(struct cd_plugins *ps, const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->nplugins; i++) {
		const char *name = img->plugins[i].name;
		const struct cd_plugin_slot *s = cd_plugins_find(ps, name);
		if (!s || !s->inited)
			return cd_err_set(err, ENOENT, "image needs plugin %s, which is not loaded",
			                  name);
		if (!cd_plugin_slot_ready(s))
			return cd_err_set(err, ENODEV,
			                  "image needs plugin %s, which is not ready: %s", name,
			                  s->detail);
	}
	return 0;
}

int cd_plugins_restore_prepare(struct cd_plugins *ps, const struct cd_image *img, const char *dir,
                               cd_err *err)
{
	for (size_t i = 0; i < img->nplugins; i++) {
		struct cd_plugin_ctx ctx = {.image_dir = dir, .timeout_ms = HOOK_TIMEOUT_MS};
		int r = cd_plugin_call(ps, cd_plugins_find(ps, img->plugins[i].name),
		                       CD_HOOK_RESTORE_PREPARE, &ctx, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int cd_plugins_restore_devices(struct cd_plugins *ps, const struct cd_image *img, const char *dir,
                               cd_err *err)
{
	for (size_t i = 0; i < img->nplugins; i++) {
		const struct cd_image_plugin *p = &img->plugins[i];
		for (size_t k = 0; k < p->npids; k++) {
			struct cd_plugin_ctx ctx = {
			    .pid = p->pids[k], .image_dir = dir, .timeout_ms = HOOK_TIMEOUT_MS};
			int r = cd_plugin_call(ps, cd_plugins_find(ps, p->name),
			                       CD_HOOK_RESTORE_DEVICES, &ctx, err);
			if (r < 0)
				return cd_err_wrap(err, "pid %d", p->pids[k]);
		}
	}
	return 0;
}

/* ---- host->thread_run / thread_stop on the engine's ptrace hold ---- */

int cd_plugins_thread_run(struct cd_thread_hold *h, pid_t tid, char *msg, size_t len)
{
	uint64_t all = ~0ull;

	if (h->running) {
		snprintf(msg, len, "thread %d: another thread runs already", tid);
		return -EBUSY;
	}
	if (!h->held(h->held_ctx, tid)) {
		snprintf(msg, len, "thread %d: not a thread the engine holds", tid);
		return -ESRCH;
	}
	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(h->saved_mask), &h->saved_mask) < 0 ||
	    ptrace(PTRACE_SETSIGMASK, tid, sizeof(all), &all) < 0 ||
	    ptrace(PTRACE_CONT, tid, 0, 0) < 0) {
		int e = errno;
		snprintf(msg, len, "thread %d: ptrace: %s", tid, strerror(e));
		return -e;
	}
	h->running = tid;
	return 0;
}

int cd_plugins_thread_stop(struct cd_thread_hold *h, pid_t tid, char *msg, size_t len)
{
	int status;

	if (h->running != tid) {
		snprintf(msg, len, "thread %d: not running", tid);
		return -EINVAL;
	}
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) {
		int e = errno;
		snprintf(msg, len, "thread %d: PTRACE_INTERRUPT: %s", tid, strerror(e));
		return -e;
	}
	/* every signal is blocked: the stop that comes is ours */
	for (;;) {
		if (waitpid(tid, &status, __WALL) < 0) {
			int e = errno;
			snprintf(msg, len, "thread %d: wait: %s", tid, strerror(e));
			return -e;
		}
		if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP)
			break;
		if (!WIFSTOPPED(status)) {
			snprintf(msg, len, "thread %d: exited while running", tid);
			return -ESRCH;
		}
		ptrace(PTRACE_CONT, tid, 0, 0);
	}
	h->running = 0;
	if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(h->saved_mask), &h->saved_mask) < 0) {
		int e = errno;
		snprintf(msg, len, "thread %d: PTRACE_SETSIGMASK: %s", tid, strerror(e));
		return -e;
	}
	return 0;
}
