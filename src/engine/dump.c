/* Dump: seize the tree, collect every task's resources through the module
 * table, write the image, then kill the tree or let it run on. Any failure
 * lets the tree run on untouched and removes the image directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/pageio.h"
#include "shared/cleanup.h"

struct dump_state {
	struct cd_image img;
	cd_inject *inj[CD_MAX_TASKS];
	/* per task, a handle for each of its other threads (task's nthreads) */
	cd_inject **thr[CD_MAX_TASKS];
	/* the thread of its parent that made each task (the parent's pid when
	 * its main thread) */
	pid_t parent_tid[CD_MAX_TASKS];
	int tty[CD_MAX_TASKS]; /* controlling terminal of each task, 0 when none */
	int dirfd;
	struct cd_dump_stats stats;
	struct cd_progress progress;
	unsigned external_stdio;
	struct cd_dump_tree *files; /* the open files dumped so far (files.c) */
	struct cd_dump_plugins plugins;
	struct cd_dirty_state dirty; /* incremental dumps (dirty.c) */
	bool tracking;
	uint64_t manifest_hash; /* of the manifest written, once it is */
};

static int check_pid(pid_t pid, cd_err *err)
{
	if (pid <= 0)
		return cd_err_set(err, EINVAL, "invalid pid %d", pid);
	if (pid == getpid())
		return cd_err_set(err, EINVAL, "pid %d: cannot checkpoint the engine itself", pid);
	if (kill(pid, 0) < 0)
		return cd_err_sys(err, errno, "pid %d", pid);
	return 0;
}

/* What only a running task may be: checked before seizing it, since a
 * seized task reads as traced. */
/* A task in other namespaces than ours would be restored into ours. */
static int check_namespaces(pid_t pid, cd_err *err)
{
	static const char *const kinds[] = {"pid", "mnt", "net", "ipc", "uts", "user"};
	char path[64];

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		struct stat ours, theirs;
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kinds[i]);
		if (stat(path, &theirs) < 0)
			return cd_err_sys(err, errno, "pid %d: %s", pid, path);
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kinds[i]);
		if (stat(path, &ours) == 0 && ours.st_ino != theirs.st_ino)
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "pid %d: in another %s namespace; namespaces are not supported", pid,
			    kinds[i]);
	}
	return 0;
}

/* What only a running task may be: checked before seizing it, since a
 * seized task reads as traced. */
static int check_task(pid_t pid, const struct cd_proc_stat *st, cd_err *err)
{
	struct cd_proc_status status;
	int r;

	/* a task that has exited since it was seized: never, as it is stopped */
	if (st->state == 'Z')
		return cd_err_set(err, EOPNOTSUPP, "pid %d: exited while seized", pid);
	if ((r = cd_proc_status(pid, &status, err)) < 0)
		return r;
	/* a stopped task is ours to seize (jobctl.c); a traced one is not */
	if (status.tracer && status.tracer != getpid())
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d (%s): traced by pid %d (ptrace); a task under another "
		                  "tracer is not supported",
		                  pid, st->comm, status.tracer);
	return check_namespaces(pid, err);
}

/* A zombie is recorded, not seized: it has no memory or state left, only
 * its place in the tree and the status its parent's wait will get. */
static int add_zombie(struct dump_state *s, pid_t pid, const struct cd_proc_stat *st, cd_err *err)
{
	if (pid == s->img.root)
		return cd_err_set(err, EOPNOTSUPP, "pid %d: is a zombie", pid);
	/* the restored task could only set the flag by writing a core file */
	if (WIFSIGNALED(st->exit_code) && WCOREDUMP(st->exit_code))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d (%s): a zombie killed by signal %d with a core dump: "
		                  "the core-dump flag of its status cannot be restored",
		                  pid, st->comm, WTERMSIG(st->exit_code));
	struct cd_task *t = &s->img.tasks[s->img.ntasks++];
	t->pid = pid;
	t->ppid = st->ppid;
	t->pgid = st->pgrp;
	t->sid = st->session;
	t->zombie = true;
	t->exit_status = st->exit_code;
	memcpy(t->comm, st->comm, sizeof(t->comm));
	return 0;
}

/* Every other thread of t, stopped before anything of t is read; t's
 * thread list gets their tids and names. */
static int seize_threads(struct dump_state *s, struct cd_task *t, cd_err *err)
{
	size_t i = (size_t)(t - s->img.tasks), n;
	char name[64];
	int r = cd_threads_seize(t->pid, t->comm, &s->thr[i], &n, err);

	if (r < 0 || n == 0)
		return r;
	t->threads = calloc(n, sizeof(*t->threads));
	if (!t->threads) {
		cd_threads_free(s->thr[i], n);
		s->thr[i] = NULL;
		return cd_err_set(err, ENOMEM, "out of memory");
	}
	t->nthreads = n;
	for (size_t k = 0; r >= 0 && k < n; k++) {
		_cleanup_free_ char *comm = NULL;
		struct cd_thread *th = &t->threads[k];
		th->tid = cd_inject_pid(s->thr[i][k]);
		snprintf(name, sizeof(name), "task/%d/comm", th->tid);
		r = cd_proc_read_file(t->pid, name, &comm, NULL, err);
		if (r >= 0) {
			comm[strcspn(comm, "\n")] = '\0';
			snprintf(th->comm, sizeof(th->comm), "%s", comm);
		}
	}
	return r;
}

static int seize_task(struct dump_state *s, pid_t pid, cd_err *err)
{
	struct cd_proc_stat st;
	int r;

	if (s->img.ntasks == CD_MAX_TASKS)
		return cd_err_set(err, E2BIG, "more than %d tasks", CD_MAX_TASKS);
	if ((r = cd_proc_stat(pid, &st, err)) < 0)
		return r;
	/* the main thread exited, the others run on: not a zombie yet */
	if (st.state == 'Z' && st.num_threads > 1)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d (%s): its main thread has exited while %d other threads "
		                  "run on; not supported",
		                  pid, st.comm, st.num_threads - 1);
	if (st.state == 'Z')
		return add_zombie(s, pid, &st, err);
	r = check_task(pid, &st, err);
	/* a plugin quiesces the task's devices while it still runs */
	if (r >= 0 && s->plugins.ps &&
	    (r = cd_plugins_dump_pause(&s->plugins, &s->img, pid, err)) < 0)
		return r;
	if (r >= 0)
		r = cd_inject_seize(pid, &s->inj[s->img.ntasks], err);
	/* its parent is stopped: a task that exited meanwhile (its /proc
	 * entries half gone, or not seizable) stays a zombie */
	if (r < 0 && cd_proc_stat(pid, &st, &(cd_err){0}) == 0 && st.state == 'Z')
		return add_zombie(s, pid, &st, err);
	if (r < 0)
		return r;
	struct cd_task *t = &s->img.tasks[s->img.ntasks++];
	t->pid = pid;
	if ((r = seize_threads(s, t, err)) < 0 ||
	    (r = cd_seccomp_suspend(pid, s->inj[s->img.ntasks - 1], s->thr[s->img.ntasks - 1],
	                            t->nthreads, err)) < 0)
		return r;
	/* seized now: the tree cannot change under us */
	if ((r = cd_proc_stat(pid, &st, err)) < 0 || (r = check_task(pid, &st, err)) < 0)
		return r;
	t->ppid = st.ppid;
	t->pgid = st.pgrp;
	t->sid = st.session;
	s->tty[s->img.ntasks - 1] = st.tty_nr;
	t->nice = st.nice;
	t->stop_sig = cd_inject_stop_sig(s->inj[s->img.ntasks - 1]);
	memcpy(t->comm, st.comm, sizeof(t->comm));
	return 0;
}

/* Seizes the root, then every descendant, parents before children. */
static int seize_tree(struct dump_state *s, pid_t root, cd_err *err)
{
	int r = seize_task(s, root, err);

	for (size_t i = 0; r >= 0 && i < s->img.ntasks; i++) {
		_cleanup_free_ pid_t *kids = NULL;
		size_t n;
		if (s->img.tasks[i].zombie)
			continue; /* its children, if any, were reparented when it exited */
		/* each thread has its own children (/proc/TID works for a tid) */
		for (size_t th = 0; r >= 0 && th <= s->img.tasks[i].nthreads; th++) {
			pid_t tid = th ? s->img.tasks[i].threads[th - 1].tid : s->img.tasks[i].pid;
			free(kids);
			kids = NULL;
			r = cd_proc_children(tid, &kids, &n, err);
			for (size_t k = 0; r >= 0 && k < n; k++) {
				size_t at = s->img.ntasks;
				if ((r = seize_task(s, kids[k], err)) >= 0 && s->img.ntasks > at)
					s->parent_tid[at] = tid;
			}
		}
	}
	return r;
}

/* A restored task is made by its parent's main thread: a parent-death
 * signal (sent when the parent *thread* exits) would come at another time
 * if another thread made it. Checked once every task's is read. */
static int check_parent_threads(const struct dump_state *s, cd_err *err)
{
	for (size_t i = 1; i < s->img.ntasks; i++) {
		const struct cd_task *t = &s->img.tasks[i];
		if (!t->zombie && t->pdeathsig && s->parent_tid[i] && s->parent_tid[i] != t->ppid)
			return cd_err_set(err, EOPNOTSUPP,
			                  "pid %d (%s): parent-death signal %d, and its parent is "
			                  "thread %d of pid %d, not the main thread: not supported",
			                  t->pid, t->comm, t->pdeathsig, s->parent_tid[i], t->ppid);
	}
	return 0;
}

/* The restored root starts a session of its own, so a job of a shell loses
 * the shell's terminal as its controlling terminal (and the shell's job
 * control): done only when asked (--shell-job). */
static int check_sessions(struct dump_state *s, bool shell_job, cd_err *err)
{
	const struct cd_task *root = &s->img.tasks[0];

	for (size_t i = 0; i < s->img.ntasks && !shell_job && root->sid != root->pid; i++)
		if (s->tty[i] && s->img.tasks[i].sid == root->sid)
			return cd_err_set(err, EOPNOTSUPP,
			                  "pid %d: its controlling terminal belongs to session %d "
			                  "outside the tree, which the restored job would not have "
			                  "(use --shell-job)",
			                  s->img.tasks[i].pid, root->sid);
	return cd_session_plan(&s->img, err);
}

/* What the restore would refuse of the tasks' files, refused now, before
 * anything is injected (dumpcheck.c). */
static int check_tasks(struct dump_state *s, cd_err *err)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < s->img.ntasks; i++)
		if (!s->img.tasks[i].zombie &&
		    (r = cd_dump_check_task(s->img.tasks[i].pid, s->img.tasks[i].comm, err)) >= 0)
			r = cd_threads_check(&s->img.tasks[i], err);
	return r;
}

static int run_modules(struct dump_state *s, struct cd_dump_ctx *ctx, struct cd_task *t,
                       cd_err *err)
{
	int r = 0;

	for (size_t m = 0; r >= 0 && m < cd_dump_modules_n; m++) {
		uint64_t t0 = cd_now_ns();
		r = cd_dump_modules[m]->dump(ctx, t, err);
		*(cd_dump_modules[m] == &cd_mod_files ? &s->stats.files_ns : &s->stats.state_ns) +=
		    cd_now_ns() - t0;
	}
	return r;
}

/* The per-thread halves, for each other thread through its own handle,
 * with the task's scratch page (the same memory). Their injected calls go
 * to one batch per thread: one round trip each (docs/engine.md, "Cost of
 * threads"). */
static int run_thread_modules(struct dump_state *s, struct cd_dump_ctx *ctx, struct cd_task *t,
                              cd_err *err)
{
	cd_inject **thr = s->thr[t - s->img.tasks];
	uint64_t t0 = cd_now_ns();
	struct cd_batch b;
	int r = 0;

	for (size_t k = 0; r >= 0 && k < t->nthreads; k++) {
		struct cd_dump_ctx tctx = *ctx;
		tctx.inj = thr[k];
		tctx.batch = &b;
		cd_batch_init(&b, thr[k], ctx->batch_code, ctx->scratch);
		snprintf(b.call_ctx, sizeof(b.call_ctx), "pid %d: thread %d", t->pid,
		         t->threads[k].tid);
		cd_inject_set_syscall_site(thr[k], cd_inject_syscall_site(ctx->inj));
		for (size_t m = 0; r >= 0 && m < cd_dump_modules_n; m++)
			if (cd_dump_modules[m]->dump_thread)
				r = cd_dump_modules[m]->dump_thread(&tctx, t, &t->threads[k], err);
		if (r >= 0)
			r = cd_call_batch(&b, err);
	}
	s->stats.state_ns += cd_now_ns() - t0;
	return r;
}

static int dump_memory(struct dump_state *s, struct cd_dump_ctx *ctx, struct cd_task *t,
                       cd_err *err)
{
	uint64_t t0 = cd_now_ns(), io0 = s->stats.write_ns + s->stats.fsync_ns;
	int r = cd_mod_mem.dump(ctx, t, err);

	s->stats.mem_scan_ns += cd_now_ns() - t0 - (s->stats.write_ns + s->stats.fsync_ns - io0);
	return r;
}

static struct cd_dump_ctx task_ctx(struct dump_state *s, size_t i, bool shell_job)
{
	return (struct cd_dump_ctx){.parent_pm_fd = -1,
	                            .img = &s->img,
	                            .inj = s->inj[i],
	                            .dirfd = s->dirfd,
	                            .shell_job = shell_job,
	                            .external_stdio = s->external_stdio,
	                            .tree = s->files,
	                            .stats = &s->stats,
	                            .progress = &s->progress,
	                            .plugins = s->plugins.ps ? &s->plugins : NULL,
	                            .dirty_state = s->tracking ? &s->dirty : NULL};
}

/* A page with the batch runner (cd_call_batch), executable and never
 * writable by the task (a task that refuses writable code, PR_SET_MDWE,
 * takes it too); written through /proc/PID/mem. Without it (batch_code 0)
 * batches run one call at a time. */
static void map_batch_runner(struct cd_dump_ctx *ctx)
{
	const size_t len = (size_t)(cd_inject_batch_code_end - cd_inject_batch_code);
	cd_err ignored = {0};
	long addr, ret;

	ctx->batch_code = 0;
	if (cd_call_ok(ctx->inj, "mmap batch runner page", SYS_mmap, 0, CD_PAGE_SIZE,
	               PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &addr,
	               &ignored) < 0)
		return;
	if (cd_inject_write_mem(ctx->inj, (uint64_t)addr, cd_inject_batch_code, len, &ignored) <
	    0) {
		cd_call(ctx->inj, SYS_munmap, (uint64_t)addr, CD_PAGE_SIZE, 0, 0, 0, 0, &ret,
		        &ignored);
		return;
	}
	ctx->batch_code = (uint64_t)addr;
}

/* Where the scratch page is asked for (a hint: the kernel puts it
 * elsewhere when that is taken or below vm.mmap_min_addr). Low, below the
 * program's memory: mm.c reads smaps only as far as it for its flags, and
 * the kernel walks no page table of the mappings after it. */
#define SCRATCH_HINT 0x10000

static int dump_task(struct dump_state *s, size_t i, bool shell_job, cd_err *err)
{
	struct cd_task *t = &s->img.tasks[i];
	struct cd_dump_ctx ctx = task_ctx(s, i, shell_job);
	uint64_t t0 = cd_now_ns();
	long addr, ignored;
	int r;

	cd_mem_forget(t);
	if ((r = cd_mem_collect(t->pid, t, &s->img, ctx.plugins, err)) < 0)
		return r;
	if ((r = cd_inject_find_vdso_site(ctx.inj, err)) < 0)
		return r;
	r = cd_call_ok(ctx.inj, "mmap scratch page", SYS_mmap, SCRATCH_HINT, CD_PAGE_SIZE,
	               PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &addr,
	               err);
	if (r < 0)
		return r;
	ctx.scratch = (uint64_t)addr;
	map_batch_runner(&ctx);
	s->stats.state_ns += cd_now_ns() - t0;
	r = run_modules(s, &ctx, t, err);
	if (r >= 0)
		r = run_thread_modules(s, &ctx, t, err);
	t0 = cd_now_ns();
	/* the scratch page goes even when a module failed */
	int r2 = cd_call(ctx.inj, SYS_munmap, ctx.scratch, CD_PAGE_SIZE, 0, 0, 0, 0, &ignored,
	                 r < 0 ? &(cd_err){0} : err);
	if (r2 >= 0 && ctx.batch_code)
		r2 = cd_call(ctx.inj, SYS_munmap, ctx.batch_code, CD_PAGE_SIZE, 0, 0, 0, 0,
		             &ignored, r < 0 ? &(cd_err){0} : err);
	s->stats.state_ns += cd_now_ns() - t0;
	if (r < 0)
		return r;
	if (r2 < 0)
		return r2;
	if (cd_fault("dump-memory"))
		return cd_err_set(err, EIO, "pid %d: injected fault dump-memory", t->pid);
	return dump_memory(s, &ctx, t, err);
}

/* The page data to come, for the progress: one pagemap pass over the
 * frozen tree, parents first (a child's pages shared with its parent are
 * not its own). */
static int count_pages(struct dump_state *s, cd_err *err)
{
	uint64_t t0 = cd_now_ns();
	int r = 0;

	for (size_t i = 0; r >= 0 && i < s->img.ntasks; i++) {
		struct cd_task *t = &s->img.tasks[i];
		struct cd_dump_ctx ctx = task_ctx(s, i, false);
		if (t->zombie)
			continue;
		r = cd_mem_collect(t->pid, t, &s->img, ctx.plugins, err);
		if (r >= 0)
			r = cd_mem_count(&ctx, t, &s->progress.total, err);
	}
	s->stats.mem_scan_ns += cd_now_ns() - t0;
	return r;
}

static void remove_dir(const char *dir, int dirfd)
{
	_cleanup_closedir_ DIR *d = fdopendir(dup(dirfd));
	struct dirent *de;

	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd, de->d_name, 0);
	rmdir(dir);
}

/* After a failed commit: the caller may have moved the image directory
 * (packing it as a directory renames it) and then the descriptor would
 * lead to the caller's result; only what is still at the path is ours. */
static void remove_dir_by_path(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0)
		remove_dir(dir, fd);
}

static bool task_lingers(pid_t pid, bool zombie_ok)
{
	struct cd_proc_stat st;
	cd_err ignored;

	if (cd_proc_stat(pid, &st, &ignored) < 0)
		return false;
	return !(zombie_ok && st.state == 'Z');
}

/* Makes a parent in the tree ignore SIGCHLD so the kernel reaps its dying
 * children at once, rather than leaving zombies for init to collect. Its
 * image is written, so its state may change now. Best effort. */
static void autoreap_children(cd_inject *inj)
{
	const uint64_t act[4] = {(uint64_t)(uintptr_t)SIG_IGN, 0, 0, 0};
	uint64_t at = (cd_inject_orig_regs(inj)->rsp - 1024) & ~(uint64_t)15;
	cd_err ignored;
	long ret;

	if (cd_inject_write_mem(inj, at, act, sizeof(act), &ignored) == 0)
		cd_call(inj, SYS_rt_sigaction, SIGCHLD, at, 0, 8, 0, 0, &ret, &ignored);
}

static void kill_tree(struct dump_state *s)
{
	for (size_t i = 0; i < s->img.ntasks; i++)
		for (size_t k = 0; k < s->img.ntasks; k++)
			if (s->img.tasks[k].ppid == s->img.tasks[i].pid) {
				autoreap_children(s->inj[i]);
				break;
			}
	/* children before parents (tasks are in tree order), each collected
	 * while its parent still lives */
	for (size_t i = s->img.ntasks; i-- > 0;) {
		kill(s->img.tasks[i].pid, SIGKILL);
		/* its traced threads first: the main thread is reported only
		 * once the others are gone */
		for (size_t k = 0; k < s->img.tasks[i].nthreads; k++)
			waitpid(s->img.tasks[i].threads[k].tid, NULL, __WALL);
		cd_threads_free(s->thr[i], s->img.tasks[i].nthreads);
		s->thr[i] = NULL;
		waitpid(s->img.tasks[i].pid, NULL, __WALL);
		cd_inject_free(s->inj[i]);
		s->inj[i] = NULL;
	}
	/* Tasks whose parent was in the tree are reaped by their new parent a
	 * moment later; wait (up to 5 s) so their pids are free on return. The
	 * root stays a zombie until our caller, its parent, reaps it. */
	for (size_t i = 0; i < s->img.ntasks; i++) {
		pid_t pid = s->img.tasks[i].pid;
		for (int tries = 0; tries < 500 && task_lingers(pid, pid == s->img.root); tries++)
			usleep(10000);
	}
}

static void release_threads(struct dump_state *s, size_t i)
{
	for (size_t k = 0; s->thr[i] && k < s->img.tasks[i].nthreads; k++) {
		cd_err ignored = {0};
		cd_inject_release(s->thr[i][k], &ignored);
	}
	cd_threads_free(s->thr[i], s->img.tasks[i].nthreads);
	s->thr[i] = NULL;
}

static void release_tree(struct dump_state *s)
{
	for (size_t i = 0; i < s->img.ntasks; i++) {
		release_threads(s, i);
		if (!s->inj[i])
			continue;
		cd_err ignored = {0};
		cd_inject_release(s->inj[i], &ignored);
		cd_inject_free(s->inj[i]);
		s->inj[i] = NULL;
	}
}

/* Resumes what the plugins paused. After a failure, r's error stays the
 * one reported; after a --leave-running dump, a failing resume fails it
 * (the image is written, but the devices are not back). */
static int resume_devices(struct dump_state *s, int r, cd_err *err)
{
	cd_err ignored = {0};

	if (!s->plugins.npaused)
		return r;
	if (r < 0) {
		cd_plugins_dump_resume(&s->plugins, true, &ignored);
		return r;
	}
	return cd_plugins_dump_resume(&s->plugins, false, err);
}

/* What plugins wrote into the image (plugin-NAME*): regular files, made
 * private like the rest of it (0600) and durable before the manifest. */
static int seal_plugin_files(struct dump_state *s, const char *dir, cd_err *err)
{
	_cleanup_closedir_ DIR *d = fdopendir(dup(s->dirfd));
	struct dirent *de;

	if (!d)
		return cd_err_sys(err, errno, "%s", dir);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "plugin-", 7) != 0)
			continue;
		_cleanup_close_ int fd =
		    openat(s->dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return cd_err_sys(err, errno, "%s/%s", dir, de->d_name);
		if (!S_ISREG(st.st_mode))
			return cd_err_set(err, EINVAL,
			                  "%s/%s: a plugin's file that is not a regular file", dir,
			                  de->d_name);
		if (fchmod(fd, 0600) < 0 || fsync(fd) < 0)
			return cd_err_sys(err, errno, "%s/%s", dir, de->d_name);
	}
	return 0;
}

static unsigned tcp_flags(const struct cd_dump_opts *opts)
{
	if (opts->version < 6)
		return 0;
	return (opts->tcp_established ? CD_TCP_ESTABLISHED : 0) |
	       (opts->tcp_close ? CD_TCP_CLOSE : 0);
}

/* The page data layout asked for, checked before the tree is touched. */
static int page_layout(struct dump_state *s, const struct cd_dump_opts *opts, cd_err *err)
{
	s->img.pages = (struct cd_page_layout){.streams = 1, .codec = CD_CODEC_NONE};
	if (opts->version < 7)
		return 0;
	s->img.pages.streams = opts->streams ? opts->streams : 1;
	s->img.pages.codec = (enum cd_page_codec)opts->page_codec;
	return cd_page_layout_check(&s->img.pages, err);
}

static int do_dump(struct dump_state *s, const struct cd_dump_opts *opts, cd_err *err)
{
	struct utsname u;
	int r = page_layout(s, opts, err);

	if (r < 0)
		return r;
	s->img.version = CD_IMAGE_VERSION;
	s->img.root = opts->pid;
	s->img.shell_job = opts->shell_job;
	s->external_stdio = opts->version >= 4 ? opts->external_stdio & 7 : 7;
	uname(&u);
	snprintf(s->img.kernel, sizeof(s->img.kernel), "%s", u.release);
	uint64_t t0 = cd_now_ns();
	cd_tcp_dump_begin(tcp_flags(opts) & CD_TCP_ESTABLISHED);
	/* the plugins' devices are saved before anything of the tree is read:
	 * their state moves into the tasks' memory, their fds and mappings go */
	if ((r = seize_tree(s, opts->pid, err)) < 0 ||
	    (s->plugins.ps && (r = cd_plugins_dump_checkpoint(&s->plugins, &s->img, err)) < 0))
		return r;
	/* from here on the mappings change only by our own calls (proc.c) */
	cd_proc_maps_cache_begin();
	if ((r = check_sessions(s, opts->shell_job, err)) < 0 ||
	    (r = cd_jobctl_check(&s->img, err)) < 0 ||
	    (r = cd_dump_check_sharing(&s->img, err)) < 0 ||
	    (r = cd_sysv_dump(&s->img, s->dirfd, err)) < 0 || (r = check_tasks(s, err)) < 0)
		return r;
	s->stats.freeze_ns = cd_now_ns() - t0;
	if (s->progress.fn && (r = count_pages(s, err)) < 0)
		return r;
	if (!(s->files = cd_dump_tree_new()))
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < s->img.ntasks; i++)
		if ((r = cd_check_cancel(err)) < 0 ||
		    (!s->img.tasks[i].zombie && (r = dump_task(s, i, opts->shell_job, err)) < 0))
			return r;
	if ((r = cd_unix_resolve_rights(&s->img, err)) < 0 ||
	    (r = cd_dump_check_fds(&s->img, err)) < 0 ||
	    (r = cd_tcp_check_peers(&s->img, s->dirfd, tcp_flags(opts), err)) < 0 ||
	    (r = check_parent_threads(s, err)) < 0)
		return r;
	t0 = cd_now_ns();
	if (s->tracking && s->dirty.used) {
		if (!(s->img.parent = strdup(s->dirty.parent)))
			return cd_err_set(err, ENOMEM, "out of memory");
		s->img.parent_hash = s->dirty.parent_hash;
	}
	if ((s->img.nplugins && (r = seal_plugin_files(s, opts->dir, err)) < 0) ||
	    (r = cd_image_write_manifest(&s->img, s->dirfd, &s->manifest_hash, err)) < 0)
		return r;
	if (fsync(s->dirfd) < 0)
		return cd_err_sys(err, errno, "fsync %s", opts->dir);
	s->stats.fsync_ns += cd_now_ns() - t0;
	cd_progress_end(&s->progress);
	return 0;
}

/* Incremental dumps: tracking from this dump on needs the tree to run on
 * afterwards; the caller's old trackers are used or released here. */
static int start_tracking(struct dump_state *s, const struct cd_dump_opts *opts, cd_err *err)
{
	if (opts->version < 6 || !opts->track)
		return 0;
	if (!opts->leave_running) {
		cd_track_clear(opts->track);
		return 0;
	}
	s->tracking = true;
	return cd_dirty_init(&s->dirty, opts->parent, opts->track, err);
}

/* The image is whole: this dump's trackers replace the caller's, tied to
 * this image by its manifest's checksum (of the bytes written: reading
 * the manifest back and decoding it cost as much as writing it). */
static void hand_trackers(struct dump_state *s, const struct cd_dump_opts *opts)
{
	cd_track_clear(opts->track);
	*opts->track = s->dirty.next;
	s->dirty.next = (struct cd_track){0};
	opts->track->image_hash = s->manifest_hash;
	opts->track->incremental = s->dirty.used;
}

static int dump_main(const struct cd_dump_opts *opts, cd_err *err)
{
	_cleanup_free_ struct dump_state *s = calloc(1, sizeof(*s));
	bool commit_failed = false;
	int r;

	if (!s || !(s->img.tasks = calloc(CD_MAX_TASKS, sizeof(struct cd_task))))
		return cd_err_set(err, ENOMEM, "dump: out of memory");
	if (opts->version >= 5 && opts->plugins) {
		s->plugins = (struct cd_dump_plugins){
		    .ps = opts->plugins, .dir = opts->dir, .leave_running = opts->leave_running};
		s->plugins.paused = calloc(CD_MAX_TASKS, sizeof(*s->plugins.paused));
		if (!s->plugins.paused) {
			cd_image_free(&s->img);
			return cd_err_set(err, ENOMEM, "dump: out of memory");
		}
	}
	if ((r = check_pid(opts->pid, err)) < 0 || (r = cd_probe_require(CD_PROBE_DUMP, err)) < 0)
		goto out;
	if (mkdir(opts->dir, 0700) < 0) {
		r = cd_err_sys(err, errno, "image directory %s", opts->dir);
		goto out;
	}
	s->dirfd = open(opts->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		r = cd_err_sys(err, errno, "open %s", opts->dir);
		rmdir(opts->dir);
		goto out;
	}
	if (opts->version >= 2) {
		s->progress.stage = "dump";
		s->progress.fn = opts->progress;
		s->progress.userdata = opts->userdata;
	}
	r = start_tracking(s, opts, err);
	if (r >= 0)
		r = do_dump(s, opts, err);
	/* the tree's listings are of no use once it may run again */
	cd_proc_maps_cache_end();
	if (r >= 0 && s->tracking)
		hand_trackers(s, opts);
	/* the tree stays stopped until the caller has made the image final */
	if (r >= 0 && opts->version >= 3 && opts->commit &&
	    ((r = cd_fault_stall("dump-stall", err)) < 0 || (r = cd_check_cancel(err)) < 0 ||
	     (r = opts->commit(opts->commit_userdata, err)) < 0))
		commit_failed = true;
	uint64_t t0 = cd_now_ns();
	/* a connection killed in repair mode closes without a packet; one that
	 * runs on leaves repair before its task runs */
	cd_tcp_dump_end(r >= 0 && !opts->leave_running);
	if (r < 0) {
		release_tree(s);
		if (commit_failed)
			remove_dir_by_path(opts->dir);
		else
			remove_dir(opts->dir, s->dirfd);
	} else if (opts->leave_running) {
		release_tree(s);
	} else {
		kill_tree(s);
		/* the tree's SysV objects went into the image with it */
		cd_sysv_dump_release(&s->img);
		s->plugins.npaused = 0; /* gone: nothing to resume */
	}
	/* the tree runs again (or is gone): its devices come back */
	if (r < 0 || opts->leave_running)
		r = resume_devices(s, r, err);
	/* a failed dump may have re-protected pages it did not save */
	if (r < 0 && opts->version >= 6 && opts->track)
		cd_track_clear(opts->track);
	s->stats.release_ns = cd_now_ns() - t0;
	s->stats.tasks = s->img.ntasks;
	if (r >= 0 && opts->version >= 2 && opts->stats)
		*opts->stats = s->stats;
	close(s->dirfd);
out:
	cd_dirty_state_free(&s->dirty);
	release_tree(s);
	r = resume_devices(s, r, err);
	free(s->plugins.paused);
	cd_dump_tree_free(s->files);
	cd_image_free(&s->img);
	return r < 0 ? cd_err_wrap(err, "dump") : 0;
}

int cd_engine_dump(const struct cd_dump_opts *opts, cd_err *err)
{
	struct sigaction saved;
	uint64_t t0 = cd_now_ns();

	if (opts->version < 1 || opts->version > CD_ENGINE_OPTS_VERSION)
		return cd_err_set(err, EINVAL, "dump: options version %d is not supported (1-%d)",
		                  opts->version, CD_ENGINE_OPTS_VERSION);
	cd_sigchld_default(&saved);
	int r = dump_main(opts, err);
	if (r >= 0 && opts->version >= 2 && opts->stats)
		opts->stats->total_ns = cd_now_ns() - t0;
	cd_sigchld_restore(&saved);
	return r;
}
