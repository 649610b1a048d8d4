/* Restore: validate the whole image, recreate the tree with clone3(set_tid)
 * (each new task prepares what it can do itself, then waits), transplant
 * every task by injected syscalls from a trampoline page, and release the
 * tasks together. Any failure kills every task created so far. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/pageio.h"
#include "plugins/plugins.h"
#include "shared/cleanup.h"

#define TRAMP_LEN (16 * CD_PAGE_SIZE)
#define VTMP_LEN  (256 * CD_PAGE_SIZE)
/* the batch runner (cd_call_batch) in the trampoline's code page */
#define TRAMP_BATCH 16
/* the premapped area starts on a huge page (areas are placed on 256 MiB) */
#define PREMAP_ALIGN (2u << 20)
_Static_assert(TRAMP_LEN + CD_PAGE_SIZE + VTMP_LEN <= PREMAP_ALIGN,
               "the premapped area follows the trampoline and the vDSO scratch area");
#define USER_TOP 0x7ffffffff000ULL /* 4-level paging, as cd_layout_unmap_rest */

/* What a new task reports on the status pipe once prepared (or failed). */
struct ready_msg {
	pid_t pid;
	int code;
	int status_fd;            /* the task's end of the status pipe, closed after this */
	bool fill;                /* not ready: asks for its premapped data (fill_premapped) */
	struct cd_csum_part csum; /* what the task read of its page file */
	char msg[CD_ERR_MSG_MAX];
};
_Static_assert(sizeof(struct ready_msg) <= PIPE_BUF, "a ready message is one atomic write");

struct restore_state {
	struct cd_image img;
	int dirfd;
	struct cd_file_objs *objs;
	struct cd_shm *shm;
	size_t nshm;
	uint64_t tramp, vtmp;
	struct cd_premap premap;
	struct cd_csum_part *pages_csum; /* per task: what it read premapping */
	/* premapped data, per task, in memory shared with the tasks: 0 until
	 * the controller wrote its part, then 1 (2: failed); and with a plain
	 * page file the counter of the steps both take (cd_mem_premap_read) */
	uint32_t *filled, *steps;
	size_t filled_len;
	int *status_fds; /* per task: its end of the status pipe (report) */
	int status_w;
	pid_t root;
	bool leave_stopped;
	const struct cd_fs_identity *open_as;
	struct cd_restore_stats stats;
	struct cd_progress progress;
	struct cd_plugins *plugins; /* NULL: none */
	const char *dir;
	unsigned tcp_flags;     /* CD_TCP_ESTABLISHED, CD_TCP_CLOSE */
	struct cd_chain *chain; /* the image's parents (parent.c); NULL: none */
	struct cd_lazy *lazy;   /* lazy restore (lazy.c); NULL: eager */
};

/* ---- checks before any process exists ---- */

/* Says who holds pid: a zombie keeps its pid until its parent reaps it,
 * which the user can act on (reap or kill the parent). */
static int pid_in_use(pid_t pid, cd_err *err)
{
	struct cd_proc_stat st;
	cd_err ignored;

	if (cd_proc_stat(pid, &st, &ignored) == 0 && st.state == 'Z')
		return cd_err_set(err, EBUSY,
		                  "pid %d is in use by a zombie (not yet reaped by its parent %d)",
		                  pid, st.ppid);
	return cd_err_set(err, EBUSY, "pid %d is in use", pid);
}

static int check_pids_free(const struct cd_image *img, cd_err *err)
{
	char path[32];
	long pid_max = 32768;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");

	if (f) {
		if (fscanf(f, "%ld", &pid_max) != 1)
			pid_max = 32768;
		fclose(f);
	}
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t k = 0; k <= img->tasks[i].nthreads; k++) {
			pid_t pid = k ? img->tasks[i].threads[k - 1].tid : img->tasks[i].pid;
			if (pid >= pid_max)
				return cd_err_set(err, EINVAL, "pid %d is above pid_max %ld", pid,
				                  pid_max);
			snprintf(path, sizeof(path), "/proc/%d", pid);
			if (access(path, F_OK) == 0 || kill(pid, 0) == 0 || errno != ESRCH)
				return pid_in_use(pid, err);
		}
	return 0;
}

/* Mapped files and executables must still be there: checked before any
 * task exists, so a missing library does not leave a half-made tree. */
static int check_mapped_files(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		if (t->zombie)
			continue;
		if (faccessat(AT_FDCWD, t->mm.exe, X_OK, AT_EACCESS) < 0)
			return cd_err_sys(err, errno, "pid %d: executable %s", t->pid, t->mm.exe);
		for (size_t j = 0; j < t->nvmas; j++) {
			const struct cd_vma *v = &t->vmas[j];
			struct stat st;
			/* a memfd's name is no path (layout.c), nor a deleted file's
			 * (fd-deleted.c) */
			if (cd_vma_deleted(v) || cd_vma_memfd(v))
				continue;
			if (v->kind != CD_VMA_ANON_SHARED && v->path && stat(v->path, &st) < 0)
				return cd_err_sys(err, errno, "pid %d: mapped file %s", t->pid,
				                  v->path);
			/* pages we did not store come from this file: it must be the same */
			if (v->kind == CD_VMA_FILE &&
			    ((uint64_t)st.st_size != v->fsize ||
			     (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec !=
			         v->mtime_ns))
				return cd_err_set(err, ESTALE,
				                  "pid %d: mapped file %s changed since the dump",
				                  t->pid, v->path);
		}
	}
	return 0;
}

static bool range_free(const struct cd_image *img, const struct cd_proc_map *self, size_t nself,
                       uint64_t start, uint64_t len)
{
	uint64_t end = start + len;

	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nvmas; j++) {
			const struct cd_vma *v = &img->tasks[i].vmas[j];
			/* keep a gap so a growsdown stack keeps its guard */
			if (start < v->end + (1 << 20) && v->start < end + (1 << 20))
				return false;
		}
	for (size_t i = 0; i < nself; i++)
		if (start < self[i].end && self[i].start < end)
			return false;
	return true;
}

/* Places the trampoline, the vDSO scratch area and the premapped area
 * (aligned like the slots in it) where neither the image nor this process
 * has anything mapped. */
static int place_areas(struct restore_state *s, cd_err *err)
{
	_cleanup_free_ struct cd_proc_map *self = NULL;
	/* on a huge page, with room for the trampoline and vDSO scratch
	 * area and a gap before it */
	const uint64_t premap_at = 2 * PREMAP_ALIGN;
	size_t n;
	int r = cd_proc_maps(getpid(), &self, &n, err);

	if (r < 0)
		return r;
	s->tramp = s->vtmp = 0;
	for (uint64_t a = 0x10000000ULL; a < 0x7f0000000000ULL; a += 0x10000000ULL) {
		if (a + premap_at + s->premap.len > USER_TOP)
			break;
		if (!range_free(&s->img, self, n, a, premap_at + s->premap.len))
			continue;
		s->tramp = a;
		s->vtmp = a + TRAMP_LEN + CD_PAGE_SIZE;
		s->premap.base = a + premap_at;
		return 0;
	}
	return cd_err_set(err, ENOMEM,
	                  "no free address range for the restore trampoline and premapped memory");
}

/* ---- inside a new task ---- */

static void report(int fd, pid_t pid, int code, const struct cd_csum_part *csum, const char *msg)
{
	struct ready_msg m = {.pid = pid, .code = code, .status_fd = fd};

	if (csum)
		m.csum = *csum;
	snprintf(m.msg, sizeof(m.msg), "%s", msg);
	if (write(fd, &m, sizeof(m)) != sizeof(m))
		_exit(127);
}

static pid_t clone_task(pid_t pid)
{
	pid_t set_tid[1] = {pid};
	struct clone_args args = {
	    .exit_signal = SIGCHLD,
	    .set_tid = (uint64_t)(uintptr_t)set_tid,
	    .set_tid_size = 1,
	};

	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static int set_limits(const struct cd_task *t, cd_err *err)
{
	for (int i = 0; i < CD_NRLIMIT && i < RLIM_NLIMITS; i++) {
		struct rlimit rl = {t->rlim[i][0], t->rlim[i][1]}, cur;
		if (getrlimit(i, &cur) == 0 && cur.rlim_cur == rl.rlim_cur &&
		    cur.rlim_max == rl.rlim_max)
			continue;
		if (setrlimit(i, &rl) < 0)
			return cd_err_sys(err, errno, "setrlimit %d", i);
	}
	return 0;
}

static int map_trampoline(const struct restore_state *s, cd_err *err)
{
	uint8_t *p = mmap((void *)s->tramp, TRAMP_LEN, PROT_READ | PROT_WRITE | PROT_EXEC,
	                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return cd_err_sys(err, errno, "map trampoline at %" PRIx64, s->tramp);
	p[0] = 0x0f; /* syscall */
	p[1] = 0x05;
	p[2] = 0xcc; /* int3: never reached, we stop at syscall exit */
	memcpy(p + TRAMP_BATCH, cd_inject_batch_code,
	       (size_t)(cd_inject_batch_code_end - cd_inject_batch_code));
	return 0;
}

static void prepare_task(struct restore_state *s, const struct cd_task *t, pid_t parent);

/* Dies the way the zombie did, so its parent's wait gets the same status.
 * A signal that dumps core must not: the recorded status has no core flag
 * (the dump refuses one), and the core file would be ours. */
static void exit_as(int status)
{
	struct rlimit no_core = {0, 0};
	sigset_t set;
	int sig = WTERMSIG(status);

	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	_exit(127);
}

/* Runs in the new task: enters its session and group (a group may live on
 * through other members), reports, exits. */
static void become_zombie(struct restore_state *s, const struct cd_task *t)
{
	cd_err err = {0};
	int r = cd_session_enter(t, &err);

	report(s->status_w, getpid(), r < 0 ? -r : 0, NULL, err.msg);
	close(s->status_w);
	if (r < 0)
		_exit(127);
	exit_as(t->exit_status);
}

/* Asks the controller to write t's premapped data, or its part of it
 * (fill_premapped). The controller's threads do the decoding and writing:
 * this task was made by a raw clone3, with no fork handlers run, so its
 * libc state (malloc's locks, the thread list) is not one to start threads
 * from (docs/engine.md, "Parallel streams"). */
static int ask_fill(struct restore_state *s, cd_err *err)
{
	struct ready_msg m = {.pid = getpid(), .fill = true};

	if (write(s->status_w, &m, sizeof(m)) != sizeof(m))
		return cd_err_sys(err, errno, "ask for the premapped data");
	return 0;
}

/* Waits until the controller has written its part of t's data. */
static int wait_filled(struct restore_state *s, const struct cd_task *t, cd_err *err)
{
	uint32_t *w = &s->filled[t - s->img.tasks], v;

	while (!(v = __atomic_load_n(w, __ATOMIC_ACQUIRE)))
		syscall(SYS_futex, w, FUTEX_WAIT, 0, NULL, NULL, 0);
	if (v != 1)
		return cd_err_set(err, EIO, "the premapped data could not be written");
	return 0;
}

/* Maps t's premapped memory and fills it (mem.c) before t clones its
 * children, which inherit it copy-on-write. Streamed data is written in by
 * the controller while this task faults the pages in ahead of it (where
 * the streams leave a core spare, cd_page_fill_spare), but for the records
 * stored as they are that a record index places, which this task and the
 * controller read in steps first (cd_mem_premap_read_stored); a plain
 * page file is read by this task and the controller at once, in steps
 * (cd_mem_premap_read), each summing what it read into its part of the
 * checksum, which the controller checks before the task runs (mem.c). The
 * page file was opened with the controller's rights; the mapped files are
 * opened with the owner's (open_as). */
static int premap_memory(struct restore_state *s, const struct cd_task *t, int pages_fd,
                         struct cd_csum_part *csum, cd_err *err)
{
	size_t k = (size_t)(t - s->img.tasks);
	bool ask = pages_fd < 0 || cd_mem_premap_has_data(&s->premap, &s->img, t);
	int r = cd_mem_premap(&s->premap, &s->img, t, err);

	if (r < 0 || !ask || (r = ask_fill(s, err)) < 0)
		ask = false;
	/* for the tests: a child whose parent fails takes no step of its own,
	 * so that the controller writes to it once it is gone */
	bool own_steps = ask && !(cd_fault("restore-prepare-orphan") && t->ppid != s->img.root);
	if (r >= 0 && pages_fd >= 0 && own_steps)
		r = cd_mem_premap_read(&s->premap, &s->img, t, pages_fd, &s->steps[k], csum, err);
	else if (r >= 0 && own_steps)
		/* records stored as they are: read here, as a plain file's steps */
		r = cd_mem_premap_read_stored(&s->premap, &s->img, t, &s->steps[k], csum, err);
	if (r >= 0 && pages_fd < 0 && ask && cd_page_fill_spare(&s->img.pages))
		cd_mem_premap_populate(&s->premap, &s->img, t, &s->filled[k]);
	if (pages_fd >= 0)
		close(pages_fd);
	/* even after an error of its own: the controller may still be
	 * writing into this task */
	if (ask) {
		cd_err werr = {0};
		int w = wait_filled(s, t, &werr);
		if (r >= 0 && w < 0) {
			r = w;
			*err = werr;
		}
	}
	return r;
}

/* t's plain page file (-1: streamed, written by the controller). */
static int open_pages(struct restore_state *s, const struct cd_task *t, int *ret_fd, cd_err *err)
{
	*ret_fd = -1;
	if (!cd_page_layout_plain(&s->img.pages))
		return 0;
	*ret_fd = openat(s->dirfd, t->pages_file, O_RDONLY | O_CLOEXEC);
	if (*ret_fd < 0)
		return cd_err_sys(err, errno, "open %s", t->pages_file);
	return 0;
}

static int prepare_steps(struct restore_state *s, const struct cd_task *t,
                         struct cd_csum_part *csum, cd_err *err)
{
	struct fsid_saved unused;
	int pages_fd;
	int r = open_pages(s, t, &pages_fd, err);

	if (r < 0)
		return r;
	/* for good: cwd, root, and what the task opens later by injected calls
	 * (mapped files, its executable) are reached with the owner's rights;
	 * the credentials module sets the image's ids at the end */
	if (s->open_as) {
		if ((r = fsid_enter(s->open_as, &unused, err)) < 0) {
			if (pages_fd >= 0)
				close(pages_fd);
			return r;
		}
		free(unused.groups);
	}
	if ((r = premap_memory(s, t, pages_fd, csum, err)) < 0 ||
	    (r = cd_session_enter(t, err)) < 0)
		return r;
	for (size_t i = 0; i < s->img.ntasks; i++) {
		const struct cd_task *c = &s->img.tasks[i];
		if (c->ppid != t->pid || c == t)
			continue;
		pid_t self = getpid(), pid = clone_task(c->pid);
		if (pid < 0)
			return cd_err_sys(err, errno, "clone3 pid %d", c->pid);
		if (pid == 0)
			prepare_task(s, c, self);
	}
	if (cd_fault("restore-prepare") && t->pid != s->img.root)
		return cd_err_set(err, EIO, "injected fault restore-prepare");
	if (cd_fault("restore-prepare-orphan") && t->pid != s->img.root &&
	    cd_image_has_child(&s->img, t->pid)) {
		/* its children have asked for their data by then */
		usleep(200000);
		return cd_err_set(err, EIO, "injected fault restore-prepare-orphan");
	}
	if ((r = cd_files_install(&s->img, t, s->objs, &s->status_w, err)) < 0)
		return r;
	/* the root comes later (fsroot.c): every path is the dumper's */
	if (chdir(t->cwd) < 0)
		return cd_err_sys(err, errno, "chdir %s", t->cwd);
	umask(t->umask);
	if ((r = set_limits(t, err)) < 0)
		return r;
	return map_trampoline(s, err);
}

/* Runs in the new task: never returns. */
static void prepare_task(struct restore_state *s, const struct cd_task *t, pid_t parent)
{
	struct cd_csum_part csum = {0};
	cd_err err = {0};
	int r;

	/* Until it is complete, a new task dies with its parent: a restore
	 * whose controller is killed leaves no half-made task to run on once
	 * ptrace lets go (transplant clears it again). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	if (t->zombie)
		become_zombie(s, t);
	r = prepare_steps(s, t, &csum, &err);

	report(s->status_w, getpid(), r < 0 ? -r : 0, &csum, err.msg);
	close(s->status_w);
	if (r < 0)
		_exit(127);
	for (;;)
		pause();
}

/* ---- in the controller ---- */

/* Writes task k's premapped data while it waits, in one thread per stream
 * (mem.c, cd_mem_premap_fill), or with a plain page file the steps the
 * task does not take itself (cd_mem_premap_help); then lets it go on. */
static int fill_premapped(struct restore_state *s, size_t k, pid_t pid, cd_err *err)
{
	const struct cd_task *t = &s->img.tasks[k];
	int r = cd_page_layout_plain(&s->img.pages)
	            ? cd_mem_premap_help(&s->premap, &s->img, s->dirfd, t, pid, &s->steps[k],
	                                 &s->pages_csum[k], err)
	            : cd_mem_premap_fill(&s->premap, &s->img, s->dirfd, t, pid, &s->steps[k],
	                                 &s->pages_csum[k], err);

	__atomic_store_n(&s->filled[k], r < 0 ? 2 : 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &s->filled[k], FUTEX_WAKE, 1, NULL, NULL, 0);
	return r;
}

/* For the tests (restore-prepare-orphan): until pid is gone or a zombie,
 * at most 5 s. */
static void wait_task_gone(pid_t pid)
{
	for (int i = 0; i < 500; i++) {
		struct cd_proc_stat st;
		cd_err ignored;
		if (cd_proc_stat(pid, &st, &ignored) < 0 || st.state == 'Z')
			return;
		usleep(10000);
	}
}

/* The failure a task reported, as the restore's error. */
static int task_failed(const struct ready_msg *m, cd_err *err)
{
	return cd_err_set(err, m->code, "pid %d: %s", m->pid, m->msg);
}

/* A task that fails exits after its report, and its children, made
 * already, die with it (their parent-death signal): writing one of those
 * its data then fails with ESRCH. The failure that explains it is in the
 * pipe by then (written before that exit): its message replaces ours. */
static int prefer_task_failure(int status_r, int r, cd_err *err)
{
	struct pollfd pfd = {.fd = status_r, .events = POLLIN};
	struct ready_msg m;

	while (err->code == ESRCH && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) &&
	       read(status_r, &m, sizeof(m)) == sizeof(m))
		if (m.code)
			return task_failed(&m, err);
	return r;
}

static int wait_ready(struct restore_state *s, int status_r, cd_err *err)
{
	for (size_t i = 0; i < s->img.ntasks;) {
		struct ready_msg m;
		ssize_t n = read(status_r, &m, sizeof(m));
		size_t k = 0;
		if (n != sizeof(m))
			return cd_err_set(err, EIO, "a new task died while being prepared");
		if (m.code)
			return task_failed(&m, err);
		while (k < s->img.ntasks && s->img.tasks[k].pid != m.pid)
			k++;
		if (k == s->img.ntasks)
			return cd_err_set(err, EIO, "a message from unknown pid %d", m.pid);
		if (m.fill) {
			if (!s->filled)
				return cd_err_set(err, EIO, "pid %d asks for data", m.pid);
			if (cd_fault("restore-prepare-orphan") &&
			    s->img.tasks[k].ppid != s->img.root)
				wait_task_gone(m.pid);
			int r = fill_premapped(s, k, m.pid, err);
			if (r < 0)
				return prefer_task_failure(status_r, r, err);
			continue;
		}
		/* what the task summed itself, beside what fill_premapped did */
		cd_csum_part_merge(&s->pages_csum[k], &m.csum);
		s->status_fds[k] = m.status_fd;
		i++;
	}
	return 0;
}

/* Runs the steps of phase TASK (memory's time apart) in the main thread. */
static int run_task_phase(struct restore_state *s, struct cd_restore_ctx *ctx,
                          const struct cd_task *t, uint64_t *t0, cd_err *err)
{
	for (size_t m = 0; m < cd_restore_steps_n; m++) {
		const struct cd_module *mod = cd_restore_steps[m].mod;
		uint64_t t1 = cd_now_ns();
		if (cd_restore_steps[m].phase != CD_PHASE_TASK)
			continue;
		if (mod->restore(ctx, t, err) < 0)
			return cd_err_wrap(err, "%s", mod->name);
		/* memory has its own figure; the rest is state */
		if (mod == &cd_mod_mem) {
			uint64_t spent = cd_now_ns() - t1;
			s->stats.mem_ns += spent;
			*t0 += spent;
		}
	}
	return 0;
}

/* Runs the per-thread halves of phase TASK's steps in thread k: their
 * injected calls go to one batch, run in one round trip (docs/engine.md,
 * "Cost of threads"); an error names the module of its call. */
static int run_thread_steps(struct cd_restore_ctx *ctx, cd_inject *thr, const struct cd_task *t,
                            size_t k, cd_err *err)
{
	struct cd_restore_ctx tctx = *ctx;
	struct cd_batch b;

	tctx.inj = thr;
	tctx.batch = &b;
	cd_batch_init(&b, thr, ctx->batch_code, ctx->data);
	for (size_t m = 0; m < cd_restore_steps_n; m++) {
		const struct cd_module *mod = cd_restore_steps[m].mod;
		if (cd_restore_steps[m].phase != CD_PHASE_TASK || !mod->restore_thread)
			continue;
		b.prefix = mod->name;
		if (mod->restore_thread(&tctx, t, &t->threads[k], err) < 0)
			return cd_err_wrap(err, "thread %d", t->threads[k].tid);
	}
	if (cd_call_batch(&b, err) < 0)
		return cd_err_wrap(err, "thread %d", t->threads[k].tid);
	return 0;
}

/* Phase THREAD: each other thread is made and given its own state. */
static int make_threads(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_inject **thr,
                        cd_err *err)
{
	for (size_t k = 0; k < t->nthreads; k++) {
		/* half the threads made, the rest not: all must go */
		if (k == t->nthreads / 2 && cd_fault("restore-thread"))
			return cd_err_set(err, EIO, "injected fault restore-thread");
		int r = cd_thread_create(ctx, t, &t->threads[k], &thr[k], err);
		if (r < 0 || (r = run_thread_steps(ctx, thr[k], t, k, err)) < 0)
			return r;
	}
	return 0;
}

/* Phases DROP and LATE: every thread, then the main one. */
static int run_late_phases(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_inject **thr,
                           cd_err *err)
{
	for (size_t m = 0; m < cd_restore_steps_n; m++) {
		const struct cd_module *mod = cd_restore_steps[m].mod;
		enum cd_phase phase = cd_restore_steps[m].phase;
		if (phase == CD_PHASE_TASK)
			continue;
		for (size_t k = 0; mod->restore_thread && k < t->nthreads; k++) {
			struct cd_restore_ctx tctx = *ctx;
			tctx.inj = thr[k];
			if (mod->restore_thread(&tctx, t, &t->threads[k], err) < 0)
				return cd_err_wrap(err, "thread %d: %s", t->threads[k].tid,
				                   mod->name);
		}
		if (mod->restore(ctx, t, err) < 0)
			return cd_err_wrap(err, "%s", mod->name);
	}
	return 0;
}

/* Each thread's last stop: its registers, XSAVE area and signal mask. */
static int threads_final(const struct cd_task *t, cd_inject **thr, cd_err *err)
{
	for (size_t k = 0; k < t->nthreads; k++) {
		int r = cd_cpu_restore_thread_final(thr[k], &t->threads[k], err);
		if (r < 0)
			return cd_err_wrap(err, "thread %d", t->threads[k].tid);
	}
	return 0;
}

/* A task closes its end of the status pipe right after its report, but the
 * controller, woken by that report, may seize it before the close: the
 * transplant never returns to it, and the restored task would keep the
 * pipe at that fd. So the controller closes it too; nothing of the image
 * is at that number yet (it is above every fd the task installed, and the
 * fds the task opens itself come later), and EBADF says the task was
 * first. */
static int close_status_pipe(cd_inject *inj, int fd, cd_err *err)
{
	long ret;
	int r = cd_call(inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ret, err);

	if (r < 0)
		return r;
	if (ret < 0 && ret != -EBADF)
		return cd_err_sys(err, (int)-ret, "close status pipe (fd %d)", fd);
	return 0;
}

static int transplant(struct restore_state *s, const struct cd_task *t, cd_inject *inj,
                      cd_inject **thr, cd_err *err)
{
	struct cd_restore_ctx ctx = {
	    .img = &s->img,
	    .inj = inj,
	    .dirfd = s->dirfd,
	    .tramp = s->tramp,
	    .tramp_len = TRAMP_LEN,
	    .data = s->tramp + CD_PAGE_SIZE,
	    .data_len = TRAMP_LEN - CD_PAGE_SIZE,
	    .batch_code = s->tramp + TRAMP_BATCH,
	    .vtmp = s->vtmp,
	    .shm = s->shm,
	    .nshm = s->nshm,
	    .progress = &s->progress,
	    .premap_base = s->premap.base,
	    .premap_len = s->premap.len,
	    .premap = s->premap.task[t - s->img.tasks],
	    .objs = s->objs,
	    .pages_csum = &s->pages_csum[t - s->img.tasks],
	    .chain = s->chain,
	    .lazy = s->lazy,
	};
	uint64_t t0 = cd_now_ns();
	long ignored;
	int r;

	cd_inject_set_syscall_site(inj, s->tramp);
	if (cd_fault("restore-transplant") && t->pid != s->img.root)
		return cd_err_set(err, EIO, "injected fault restore-transplant");
	if ((r = close_status_pipe(inj, s->status_fds[t - s->img.tasks], err)) < 0 ||
	    (r = cd_attrs_reset(inj, err)) < 0 || (r = run_task_phase(s, &ctx, t, &t0, err)) < 0 ||
	    (r = make_threads(&ctx, t, thr, err)) < 0 ||
	    (r = run_late_phases(&ctx, t, thr, err)) < 0)
		return r;
	/* The last injected calls: the task no longer dies with its parent
	 * (prepare_task) but gets its own parent-death signal (after the
	 * credentials, which clear it), then the trampoline goes; the task is then at that
	 * call's exit stop and runs no instruction from it. */
	if ((r = cd_call_ok(inj, "prctl(PR_SET_PDEATHSIG)", SYS_prctl, PR_SET_PDEATHSIG,
	                    (uint64_t)t->pdeathsig, 0, 0, 0, 0, &ignored, err)) < 0 ||
	    (r = cd_call_ok(inj, "munmap trampoline", SYS_munmap, s->tramp, TRAMP_LEN, 0, 0, 0, 0,
	                    &ignored, err)) < 0)
		return r;
	r = cd_cpu_restore_final(inj, t, err);
	if (r >= 0)
		r = threads_final(t, thr, err);
	s->stats.state_ns += cd_now_ns() - t0;
	return r;
}

/* With leave_stopped, a task of several threads stops as a whole: the
 * main thread takes its SIGSTOP and starts the group stop, which the other
 * threads join as soon as they are let go, before an instruction of their
 * own; so they are let go only once the main thread has stopped. */
static int wait_stopped(pid_t pid, cd_err *err)
{
	for (int tries = 0; tries < 5000; tries++) {
		struct cd_proc_stat st;
		int r = cd_proc_stat(pid, &st, err);
		if (r < 0)
			return r;
		if (st.state == 'T')
			return 0;
		usleep(1000);
	}
	return cd_err_set(err, ETIMEDOUT, "pid %d: did not stop (SIGSTOP)", pid);
}

static int detach_threads(const struct cd_task *t, cd_inject **thr, cd_err *err)
{
	int r = 0;

	for (size_t k = 0; thr && r >= 0 && k < t->nthreads; k++)
		if (thr[k])
			r = cd_inject_detach(thr[k], err);
	return r;
}

/* Lets every task run, or with leave_stopped, stop at once: SIGSTOP is
 * queued while the task is still in our stop, so it stops on its way back
 * to user space, before an instruction of its own. */
static int release_all(struct restore_state *s, cd_inject **inj, cd_inject ***thr, cd_err *err)
{
	uint64_t t0 = cd_now_ns();
	int r = cd_jobctl_release(&s->img, inj, thr, err);

	for (size_t i = 0; i < s->img.ntasks && r >= 0; i++) {
		pid_t pid = s->img.tasks[i].pid;
		if (s->leave_stopped && !s->img.tasks[i].zombie && !s->img.tasks[i].stop_sig &&
		    syscall(SYS_tgkill, pid, pid, SIGSTOP) < 0)
			r = cd_err_sys(err, errno, "pid %d: queue SIGSTOP", pid);
	}
	for (size_t i = 0; i < s->img.ntasks && r >= 0; i++) {
		const struct cd_task *t = &s->img.tasks[i];
		if (!inj[i])
			continue;
		r = cd_inject_detach(inj[i], err);
		if (r >= 0 && s->leave_stopped && t->nthreads)
			r = wait_stopped(t->pid, err);
		if (r >= 0)
			r = detach_threads(t, thr[i], err);
	}
	s->stats.release_ns = cd_now_ns() - t0;
	return r;
}

static void kill_created(const struct restore_state *s);

/* What the plugins' thread_run may let run: a thread of a restored task
 * the engine holds. */
struct held_tree {
	const struct restore_state *s;
	cd_inject **inj;
	cd_inject ***thr;
};

static bool tree_holds(void *ctx, pid_t tid)
{
	const struct held_tree *h = ctx;

	for (size_t i = 0; i < h->s->img.ntasks; i++) {
		const struct cd_task *t = &h->s->img.tasks[i];
		if (h->inj[i] && t->pid == tid)
			return true;
		for (size_t k = 0; h->thr[i] && k < t->nthreads; k++)
			if (h->thr[i][k] && cd_inject_pid(h->thr[i][k]) == tid)
				return true;
	}
	return false;
}

static int host_thread_run(void *ctx, pid_t tid, char *msg, size_t len)
{
	return cd_plugins_thread_run(ctx, tid, msg, len);
}

static int host_thread_stop(void *ctx, pid_t tid, char *msg, size_t len)
{
	return cd_plugins_thread_stop(ctx, tid, msg, len);
}

/* The plugins bring the tasks' devices back while the whole tree is held;
 * a thread a plugin let run is stopped again before the release. */
static int restore_devices(struct restore_state *s, cd_inject **inj, cd_inject ***thr, cd_err *err)
{
	struct held_tree tree = {.s = s, .inj = inj, .thr = thr};
	struct cd_thread_hold hold = {.held = tree_holds, .held_ctx = &tree};
	struct cd_plugin_host saved = s->plugins->host;
	char msg[256];

	s->plugins->host.thread_run = host_thread_run;
	s->plugins->host.thread_stop = host_thread_stop;
	s->plugins->host.host_ctx = &hold;
	int r = cd_plugins_restore_devices(s->plugins, &s->img, s->dir, err);
	if (hold.running && cd_plugins_thread_stop(&hold, hold.running, msg, sizeof(msg)) < 0 &&
	    r >= 0)
		r = cd_err_set(err, EIO, "after restore_devices: %s", msg);
	s->plugins->host = saved;
	return r;
}

/* A task we seized is ours: killed, and its threads, traced by us (made
 * or not), reaped, before its main thread can be (kill_created). */
static void kill_threads(const struct restore_state *s, cd_inject **inj)
{
	for (size_t i = 0; i < s->img.ntasks; i++) {
		const struct cd_task *t = &s->img.tasks[i];
		if (!inj[i] || !t->nthreads)
			continue;
		kill(t->pid, SIGKILL);
		for (size_t k = 0; k < t->nthreads; k++)
			waitpid(t->threads[k].tid, NULL, __WALL);
	}
}

/* On failure every task is killed while still traced: a task we restored
 * (or left half-way, at the trampoline) must never run an instruction, and
 * a SIGKILLed tracee dies without returning to user space. Only then are
 * the handles let go. */
static int transplant_all(struct restore_state *s, cd_err *err)
{
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
	_cleanup_free_ cd_inject **inj = calloc(s->img.ntasks, sizeof(*inj));
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of arrays */
	_cleanup_free_ cd_inject ***thr = calloc(s->img.ntasks, sizeof(*thr));
	int r = 0;

	if (!inj || !thr)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < s->img.ntasks && r >= 0; i++) {
		const struct cd_task *t = &s->img.tasks[i];
		uint64_t t0 = cd_now_ns();
		if (t->zombie)
			continue; /* exited already, for its parent to reap */
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		if (t->nthreads && !(thr[i] = calloc(t->nthreads, sizeof(*thr[i])))) {
			r = cd_err_set(err, ENOMEM, "out of memory");
			break;
		}
		r = cd_check_cancel(err);
		if (r >= 0)
			r = cd_inject_seize(t->pid, &inj[i], err);
		s->stats.state_ns += cd_now_ns() - t0;
		if (r >= 0)
			r = transplant(s, t, inj[i], thr[i], err);
		if (r < 0)
			r = cd_err_wrap(err, "pid %d", t->pid);
	}
	/* segments removed at dump time, once every attachment is made */
	if (r >= 0)
		r = cd_sysv_restore_late(&s->img, err);
	/* and a mapped memfd's seals, once every mapping is made and filled */
	if (r >= 0)
		r = cd_memfd_seal_mapped(&s->img, s->objs, s->shm, s->nshm, err);
	if (r >= 0 && s->img.nplugins)
		r = restore_devices(s, inj, thr, err);
	/* TCP connections last, every listener of the tree bound */
	if (r >= 0)
		r = cd_tcp_restore_all(&s->img, s->objs, s->dirfd, s->tcp_flags, err);
	if (r >= 0)
		r = release_all(s, inj, thr, err);
	if (r < 0)
		kill_threads(s, inj);
	if (r < 0)
		kill_created(s);
	for (size_t i = 0; i < s->img.ntasks; i++) {
		cd_threads_free(thr[i], s->img.tasks[i].nthreads);
		cd_inject_free(inj[i]);
	}
	return r;
}

/* Is pid the new root or below it (or an orphan of it, reparented to us as
 * a subreaper)? A pid of the image may have been taken by an unrelated
 * process meanwhile: only our own tasks are killed. */
static bool created_by_us(const struct restore_state *s, pid_t pid)
{
	for (size_t depth = 0; depth <= s->img.ntasks && pid > 1; depth++) {
		struct cd_proc_stat st;
		cd_err ignored;
		if (pid == s->root || pid == getpid())
			return true;
		if (cd_proc_stat(pid, &st, &ignored) < 0)
			return false;
		pid = st.ppid;
	}
	return false;
}

/* Reaps pid as its tracer and then as its parent (an orphan reparented to
 * us): waited for until it is gone, so no zombie of ours is left. */
static void reap(pid_t pid)
{
	for (int i = 0; i < 3 && waitpid(pid, NULL, __WALL) == pid; i++)
		;
}

static void kill_created(const struct restore_state *s)
{
	bool *ours = calloc(s->img.ntasks + 1, sizeof(*ours));

	if (s->root <= 0 || !ours) {
		free(ours);
		return;
	}
	/* decide for all first, while the parent links are intact */
	for (size_t i = 0; i < s->img.ntasks; i++)
		ours[i] = created_by_us(s, s->img.tasks[i].pid);
	for (size_t i = 0; i < s->img.ntasks; i++)
		if (ours[i])
			kill(s->img.tasks[i].pid, SIGKILL);
	/* parents first (the image's order): once one is reaped, its
	 * children are ours to reap */
	for (size_t i = 0; i < s->img.ntasks; i++)
		if (ours[i])
			reap(s->img.tasks[i].pid);
	free(ours);
}

static int create_tree(struct restore_state *s, cd_err *err)
{
	int fds[2], r;
	const struct cd_task *root = cd_image_task(&s->img, s->img.root);

	if (pipe2(fds, O_CLOEXEC) < 0)
		return cd_err_sys(err, errno, "pipe");
	s->status_w = fds[1];
	pid_t self = getpid();
	s->root = clone_task(root->pid);
	if (s->root == 0) {
		close(fds[0]);
		prepare_task(s, root, self);
	}
	close(fds[1]);
	if (s->root < 0) {
		r = errno == EEXIST ? pid_in_use(root->pid, err)
		                    : cd_err_sys(err, errno, "clone3 pid %d", root->pid);
		close(fds[0]);
		return r;
	}
	r = wait_ready(s, fds[0], err);
	close(fds[0]);
	return r;
}

/* The checks and openings that follow paths of the image, done with the
 * identity the image's paths are to be reached with. */
static int open_files(struct restore_state *s, const struct cd_restore_opts *opts, cd_err *err)
{
	struct cd_stdio_plan plan;
	struct fsid_saved saved;
	int r;

	cd_stdio_plan_make(&s->img, opts, &plan);
	if (s->open_as && (r = fsid_enter(s->open_as, &saved, err)) < 0)
		return r;
	r = check_mapped_files(&s->img, err);
	if (r == 0)
		r = cd_files_prepare(&s->img, s->dirfd, &plan, &s->objs, err);
	if (s->open_as)
		fsid_leave(&saved);
	return r;
}

static int check_image(struct restore_state *s, const struct cd_restore_opts *opts, cd_err *err)
{
	if (opts->version < 3 || !opts->check)
		return 0;
	return opts->check(&s->img, opts->check_userdata, err);
}

/* The lazy server decodes streamed pages where it needs them (lazy.c). */
static int check_lazy(const struct restore_state *s, cd_err *err)
{
	(void)err;
	cd_lazy_set_layout(s->lazy, &s->img.pages);
	return 0;
}

/* The words the tasks wait on for their premapped data (wait_filled) and
 * the step counters (cd_mem_premap_read): shared, so they see the
 * controller's; every task's copy goes with the rest of the controller's
 * mappings (cd_layout_unmap_rest). */
static int map_filled(struct restore_state *s, cd_err *err)
{
	size_t len =
	    (2 * s->img.ntasks * sizeof(*s->filled) + CD_PAGE_SIZE - 1) & ~(CD_PAGE_SIZE - 1);
	void *p = mmap(NULL, len ? len : CD_PAGE_SIZE, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return cd_err_sys(err, errno, "map the tasks' fill words");
	s->filled = p;
	s->steps = s->filled + s->img.ntasks;
	s->filled_len = len ? len : CD_PAGE_SIZE;
	return 0;
}

static int do_restore(struct restore_state *s, const struct cd_restore_opts *opts, cd_err *err)
{
	int r;

	s->dirfd = open(opts->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0)
		return cd_err_sys(err, errno, "image %s", opts->dir);
	if (opts->version >= 6)
		s->tcp_flags = (opts->tcp_established ? CD_TCP_ESTABLISHED : 0) |
		               (opts->tcp_close ? CD_TCP_CLOSE : 0);
	struct cd_progress verify = {
	    .stage = "verify", .fn = s->progress.fn, .userdata = s->progress.userdata};
	uint64_t t0 = cd_now_ns();
	if ((r = s->lazy ? cd_image_read_manifest_lazy(s->dirfd, &s->img, err)
	                 : cd_image_read_manifest(s->dirfd, &s->img, err)) < 0 ||
	    (r = check_image(s, opts, err)) < 0 || (r = check_lazy(s, err)) < 0 ||
	    (r = cd_tcp_restore_check(&s->img, s->tcp_flags, err)) < 0 ||
	    (r = cd_plugins_restore_check(s->plugins, &s->img, err)) < 0 ||
	    (r = cd_image_check_pages(&s->img, s->dirfd, &verify, err)) < 0 ||
	    (r = cd_chain_open(&s->img, s->open_as, &s->chain, err)) < 0 ||
	    (r = cd_mem_vdso_check(&s->img, err)) < 0 ||
	    (r = cd_mempolicy_check(&s->img, err)) < 0 ||
	    (r = cd_seccomp_check(&s->img, err)) < 0 || (r = check_pids_free(&s->img, err)) < 0 ||
	    (r = cd_mem_premap_plan(&s->img, &s->premap, err)) < 0 ||
	    (r = cd_mem_premap_stored(&s->img, &s->premap, s->dirfd, err)) < 0 ||
	    (r = place_areas(s, err)) < 0)
		return r;
	s->stats.validate_ns = cd_now_ns() - t0;
	t0 = cd_now_ns();
	if ((r = open_files(s, opts, err)) < 0)
		return r;
	s->stats.files_ns = cd_now_ns() - t0;
	t0 = cd_now_ns();
	if ((r = cd_mem_shm_prepare(&s->img, s->objs, s->dirfd, &s->shm, &s->nshm, err)) < 0)
		return r;
	s->pages_csum = calloc(s->img.ntasks + 1, sizeof(*s->pages_csum));
	s->status_fds = calloc(s->img.ntasks + 1, sizeof(*s->status_fds));
	if (!s->pages_csum || !s->status_fds)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < s->img.ntasks; i++)
		s->progress.total += cd_mem_restore_bytes(&s->img.tasks[i]);
	if ((r = cd_fault_stall("restore-stall", err)) < 0 || (r = cd_check_cancel(err)) < 0 ||
	    (r = cd_sysv_restore(&s->img, s->dirfd, err)) < 0)
		return r;
	if (s->img.nplugins &&
	    (r = cd_plugins_restore_prepare(s->plugins, &s->img, opts->dir, err)) < 0)
		return r;
	if ((r = map_filled(s, err)) < 0)
		return r;
	r = create_tree(s, err);
	s->stats.create_ns = cd_now_ns() - t0;
	if (r < 0 || (r = cd_fault_stall("restore-stall-tree", err)) < 0) {
		kill_created(s);
		cd_sysv_restore_undo(&s->img);
		return r;
	}
	if ((r = transplant_all(s, err)) < 0) {
		cd_sysv_restore_undo(&s->img);
		return r;
	}
	cd_progress_end(&s->progress);
	s->stats.tasks = s->img.ntasks;
	s->stats.pages_bytes = s->progress.done;
	return 0;
}

int cd_engine_restore(const struct cd_restore_opts *opts, pid_t *ret_pid, cd_err *err)
{
	struct restore_state s = {.dirfd = -1, .status_w = -1};
	struct sigaction saved;
	uint64_t t0 = cd_now_ns();
	int subreaper = 0;

	if (opts->version < 1 || opts->version > CD_ENGINE_OPTS_VERSION)
		return cd_err_set(err, EINVAL,
		                  "restore: options version %d is not supported (1-%d)",
		                  opts->version, CD_ENGINE_OPTS_VERSION);
	if (opts->version >= 2) {
		s.progress.stage = "restore";
		s.progress.fn = opts->progress;
		s.progress.userdata = opts->userdata;
		s.leave_stopped = opts->leave_stopped;
	}
	if (opts->version >= 3)
		s.open_as = opts->open_as;
	if (opts->version >= 5)
		s.plugins = opts->plugins;
	s.dir = opts->dir;
	if (opts->version >= 7 && opts->lazy) {
		*opts->lazy = NULL;
		if (cd_lazy_new(&s.lazy, err) < 0)
			return cd_err_wrap(err, "restore");
		s.premap.lazy = true;
	}

	/* Tasks orphaned by a failure half-way come to us, to be killed. */
	prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	cd_sigchld_default(&saved);
	int r = cd_probe_require(CD_PROBE_RESTORE, err);
	if (r >= 0)
		r = do_restore(&s, opts, err);
	cd_sigchld_restore(&saved);
	prctl(PR_SET_CHILD_SUBREAPER, subreaper, 0, 0, 0);

	if (r >= 0)
		*ret_pid = s.root;
	cd_lazy_handover(s.lazy);
	if (r >= 0 && s.lazy && cd_lazy_bytes(s.lazy)) {
		cd_lazy_keep_text(s.lazy, TAKE_PTR(s.img.text));
		*opts->lazy = TAKE_PTR(s.lazy);
	}
	cd_lazy_free(s.lazy);
	if (r >= 0 && opts->version >= 2 && opts->stats) {
		s.stats.total_ns = cd_now_ns() - t0;
		*opts->stats = s.stats;
	}
	cd_files_free(s.objs);
	cd_mem_shm_free(s.shm, s.nshm);
	cd_mem_premap_free(&s.premap);
	cd_chain_free(s.chain);
	free(s.pages_csum);
	free(s.status_fds);
	if (s.filled)
		munmap(s.filled, s.filled_len);
	cd_image_free(&s.img);
	if (s.dirfd >= 0)
		close(s.dirfd);
	return r < 0 ? cd_err_wrap(err, "restore") : 0;
}
