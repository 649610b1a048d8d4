/* Threads: seizing every thread of a task at dump, checking what must be
 * the same in all of them, and recreating each one with its tid at
 * restore. Each thread's own state is collected and put back by the
 * modules' per-thread halves (cpu.c, signals.c, attrs.c, creds.c). */
#include <dirent.h>
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

/* Threads of pid that are not in seen[0..n) (nor pid itself). */
static int list_new_tids(pid_t pid, cd_inject **seen, size_t n, pid_t **ret, size_t *ret_n,
                         cd_err *err)
{
	char path[64];
	struct dirent *de;
	size_t cap = 0;

	*ret = NULL;
	*ret_n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	_cleanup_closedir_ DIR *d = opendir(path);
	if (!d)
		return cd_err_sys(err, errno, "pid %d: open %s", pid, path);
	while ((de = readdir(d))) {
		pid_t tid = (pid_t)strtol(de->d_name, NULL, 10);
		bool known = tid <= 0 || tid == pid;
		for (size_t i = 0; !known && i < n; i++)
			known = cd_inject_pid(seen[i]) == tid;
		if (known)
			continue;
		if (*ret_n == cap) {
			cap = cap ? 2 * cap : 16;
			pid_t *nv = realloc(*ret, cap * sizeof(**ret));
			if (!nv)
				return cd_err_set(err, ENOMEM, "out of memory");
			*ret = nv;
		}
		(*ret)[(*ret_n)++] = tid;
	}
	return 0;
}

void cd_threads_free(cd_inject **thr, size_t n)
{
	for (size_t i = 0; thr && i < n; i++)
		cd_inject_free(thr[i]);
	free(thr);
}

/* Interrupts every thread of a round, then waits for each: the stops
 * overlap. One that exited meanwhile is left out. */
static int seize_round(pid_t pid, const char *comm, const pid_t *tids, size_t ntids,
                       cd_inject **thr, size_t *n, cd_err *err)
{
	size_t first = *n, k = *n;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < ntids; i++) {
		cd_err e = {0};
		if (cd_inject_seize_start(tids[i], &thr[k], &e) >= 0)
			k++;
		else if (e.code != ESRCH)
			r = cd_err_set(err, e.code, "pid %d (%s): thread %d: %s", pid, comm,
			               tids[i], e.msg);
	}
	/* each interrupted one is waited for, even after a failure: only a
	 * stopped tracee can be let go (and then as it was) */
	for (size_t i = first; i < k; i++) {
		cd_err e = {0}, ignored = {0};
		int fr = cd_inject_seize_finish(thr[i], &e);
		if (fr >= 0 && r >= 0) {
			thr[(*n)++] = thr[i];
			continue;
		}
		if (fr >= 0)
			cd_inject_release(thr[i], &ignored);
		else if (r >= 0 && e.code != ESRCH)
			r = cd_err_set(err, e.code, "pid %d (%s): thread %d: %s", pid, comm,
			               cd_inject_pid(thr[i]), e.msg);
		cd_inject_free(thr[i]);
	}
	return r;
}

/* A round finds the threads not yet seized; when one finds none, every
 * thread is stopped and no new one can appear. */
int cd_threads_seize(pid_t pid, const char *comm, cd_inject ***ret, size_t *ret_n, cd_err *err)
{
	cd_inject **thr = NULL;
	size_t n = 0;
	int r = 0;

	for (;;) {
		_cleanup_free_ pid_t *tids = NULL;
		size_t ntids;
		if ((r = list_new_tids(pid, thr, n, &tids, &ntids, err)) < 0 || ntids == 0)
			break;
		if (n + ntids > CD_MAX_THREADS) {
			r = cd_err_set(err, E2BIG, "pid %d (%s): more than %d threads", pid, comm,
			               CD_MAX_THREADS + 1);
			break;
		}
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		cd_inject **nt = realloc(thr, (n + ntids) * sizeof(*thr));
		if (!nt) {
			r = cd_err_set(err, ENOMEM, "out of memory");
			break;
		}
		thr = nt;
		r = seize_round(pid, comm, tids, ntids, thr, &n, err);
		if (r < 0)
			break;
	}
	if (r < 0) {
		cd_threads_free(thr, n);
		return r;
	}
	*ret = thr;
	*ret_n = n;
	return 0;
}

/* The lines of a thread's status that hold what is per thread in the
 * kernel but the same in every thread of the restored task. */
static const char *const same_lines[] = {
    "Uid:",    "Gid:",    "Groups:",     "CapInh:",  "CapPrm:",         "CapEff:",
    "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:", "Seccomp_filters:"};

static const char *status_line(const char *status, const char *key, size_t *len)
{
	for (const char *p = status; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, strlen(key))) {
			const char *nl = strchr(p, '\n');
			*len = nl ? (size_t)(nl - p) : strlen(p);
			return p;
		}
	*len = 0;
	return "";
}

int cd_threads_check(const struct cd_task *t, cd_err *err)
{
	_cleanup_free_ char *main_st = NULL;
	char name[64];
	int r = cd_proc_read_file(t->pid, "status", &main_st, NULL, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < t->nthreads; i++) {
		_cleanup_free_ char *st = NULL;
		snprintf(name, sizeof(name), "task/%d/status", t->threads[i].tid);
		if ((r = cd_proc_read_file(t->pid, name, &st, NULL, err)) < 0)
			return r;
		for (size_t k = 0; k < ARRAY_SIZE(same_lines); k++) {
			size_t la, lb;
			const char *a = status_line(main_st, same_lines[k], &la);
			const char *b = status_line(st, same_lines[k], &lb);
			if (la != lb || memcmp(a, b, la) != 0)
				return cd_err_set(
				    err, EOPNOTSUPP,
				    "pid %d (%s): thread %d (%s): its %.*s differs from "
				    "the main thread's; per-thread credentials are not "
				    "supported",
				    t->pid, t->comm, t->threads[i].tid, t->threads[i].comm,
				    (int)strlen(same_lines[k]) - 1, same_lines[k]);
		}
	}
	return 0;
}

/* The flags of a thread made by pthread_create, minus what only concerns
 * its start (settls, the tid words): those are in its registers and in
 * the clear-tid address set later. */
#define THREAD_FLAGS                                                                               \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)

int cd_thread_create(struct cd_restore_ctx *ctx, const struct cd_task *t,
                     const struct cd_thread *th, cd_inject **ret, cd_err *err)
{
	const uint64_t set_tid_at = ctx->data + sizeof(struct clone_args);
	const pid_t set_tid[1] = {th->tid};
	struct clone_args args = {
	    .flags = THREAD_FLAGS,
	    .set_tid = set_tid_at,
	    .set_tid_size = 1,
	};
	int r;

	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, &args, sizeof(args), err)) < 0 ||
	    (r = cd_inject_write_mem(ctx->inj, set_tid_at, set_tid, sizeof(set_tid), err)) < 0)
		return r;
	r = cd_inject_clone_thread(ctx->inj, ctx->data, sizeof(args), ret, err);
	if (r < 0)
		return cd_err_wrap(err, "pid %d: thread %d", t->pid, th->tid);
	if (cd_inject_pid(*ret) != th->tid)
		return cd_err_set(err, EPROTO, "pid %d: thread %d came back as %d", t->pid, th->tid,
		                  cd_inject_pid(*ret));
	return 0;
}
