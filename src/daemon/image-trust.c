#include "daemon/image-trust.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/image.h"
#include "shared/cleanup.h"

/* Every field of a task is either checked below or harmless for a user to
 * choose (their own registers, memory, signal state, timers, rseq, robust
 * list, umask, personality, affinity, a smaller bounding set, no_new_privs,
 * which only takes rights away, a parent-death signal, the child-subreaper
 * flag, THP disable, timer slack, membarrier registrations, NUMA memory
 * policies of the task, its threads and its private mappings (set_mempolicy
 * and mbind ask no privilege; the kernel keeps the nodes to the task's
 * cpuset, and the pages mbind moves are the task's own), a job-control
 * stop (the restore sends the task its own stop signal; its parent, a task
 * of the image, gets its wait report and SIGCHLD as the image says),
 * seccomp (strict mode, and filters, which only take rights away:
 * check_seccomp asks no_new_privs, as the kernel asks a user),
 * SCHED_RESET_ON_FORK, a zombie's wait status, the planned session and
 * group, which the decoder keeps to tasks of the image, POSIX timers, which
 * the task creates itself once it has its credentials, on clocks the
 * decoder keeps to the wall, monotonic and its own CPU clocks, and file
 * locks, which the task sets itself, with its credentials, through fds of
 * its own that the decoder keeps to files and directories opened with the
 * owner's identity: advisory locks the user could take anyway). A thread
 * (struct cd_thread) has the task's credentials (the restore sets the
 * task's in every thread); of its own fields its nice and scheduling policy
 * are checked like the task's, the rest (registers, mask, pending signals,
 * altstack, rseq, robust list, clear-tid address, name, timer slack,
 * affinity, NUMA policy) is harmless, and its tid is one the decoder keeps unique in the
 * image (check_pids_free refuses one in use). Of an fd: its flags
 * (the open itself is made with the owner's filesystem identity, which the
 * kernel checks for O_NOATIME), its SIGIO owner and signal (the decoder
 * admits only a task, a thread of the fd's own task or a process group of the image as owner, and
 * the task sets it itself once it has its credentials), and a /proc file (the decoder admits only
 * one under /proc/PID of a task of the image; the task opens it itself, also with its credentials),
 * and its std slot (the decoder keeps it to the open files of the root's fds 0-2; it only lets the
 * restorer put its own fds there, and the daemon replaces only external stdio of a user's job), an
 * eventfd's counter and semaphore flag and a signalfd's mask, a timerfd's clock, flags, unread
 * expirations and value (objects any process may make with any such values: a signalfd reads only
 * its reader's own signals; the decoder keeps timerfds off the alarm clocks, which need
 * CAP_WAKE_ALARM), and an epoll's watches (the task adds them itself, with its credentials, on fds
 * of its own; the decoder refuses EPOLLWAKEUP, which needs CAP_BLOCK_SUSPEND); an inotify's watches
 * are added by the controller, so check_paths asks the owner's read access to each watched path, as
 * inotify_add_watch would. A unix socket's type, SO_PASSCRED and buffer sizes are set by the
 * controller with what any process may ask (plain SO_RCVBUF and SO_SNDBUF, capped by
 * net.core.rmem_max and wmem_max, never the FORCE options; a size the kernel caps refuses the
 * restore) and its name, socket file mode and owner and its listen backlog by the task itself, with
 * its credentials, through injected bind, unlink of a stale socket file, chmod, chown and listen:
 * nothing a user could not do; the controller gives the socket its owner (fchown, which shows in
 * fstat), so that must be the job's owner and one of its groups (check_sockets). A connection
 * through a listener is made again by a helper child of the controller with the two ends' owners
 * as its ids (no supplementary groups): the stale socket file it removes, its bind at the
 * listener's name and its connect are checked by the kernel against those, the job's owner. The
 * fds in flight in a queue are object ids of the image (the decoder checks each names an object
 * the controller opens), sent again with the controller's fd of it: files the tasks hold
 * anyway. A client waiting in a listener's accept queue (its sk_peer a listener) is connected
 * to that listener's name by its task, as itself, by injected connect. An inet or netlink
 * socket likewise: the controller sets only options any user may set (SO_REUSEADDR/PORT,
 * SO_KEEPALIVE, SO_BROADCAST, SO_LINGER, timeouts, TCP_NODELAY, TCP_DEFER_ACCEPT, IPV6_V6ONLY,
 * buffers capped as above) and gives it its owner; the task binds (a port, multicast groups),
 * listens and connects as itself. A connected pair (its inodes, queued messages, shutdown) is made
 * by the task that holds both ends (the decoder refuses a pair across tasks), as itself, by
 * injected socketpair, setsockopt, send and shutdown: its SO_PEERCRED and the credentials the
 * messages carry are the task's own. A pidfd's pid is opened by the task itself, with its
 * credentials, by injected pidfd_open, which any process may call; the decoder keeps it to a task
 * of the image (or a thread of the fd's own task), and signalling through it is checked by the
 * kernel as kill(2) is. Of a mapping: its madvise flags (any process may set them on its own
 * memory), its lock and the task's mlockall(MCL_FUTURE) (check_memlock: the restore locks while
 * still privileged) and "may write" of a shared file mapping (the file is opened for writing:
 * check_paths asks for write access). An established TCP connection (sk_tcp) is refused: its
 * restore binds and connects in TCP repair mode as root (CAP_NET_ADMIN), with sequence numbers and
 * queues the image chooses, which no user may do. A field added to the image changes these sizes
 * (`std` and cd_vma's flags took padding, so those sizes did not change):
 * decide which it is, then update them. */
_Static_assert(sizeof(struct cd_task) == 4576, "a new task field: review image-trust.c");
_Static_assert(sizeof(struct cd_fd) == 320, "a new fd field: review image-trust.c");
/* Kind 8, an AIO ring: io_setup, mremap and reads of /dev/zero in the task,
 * what the user's process may do itself. Kind 2 of a deleted file: the
 * image's deleted file of that path (check_deleted), no path of the host.
 * `later` (a lazy restore's runs kept as text) holds the same runs, checked
 * by the reader as they are, whose contents go into the user's own memory. */
_Static_assert(sizeof(struct cd_vma) == 144, "a new mapping field: review image-trust.c");
/* A message queued in a unix socket: its bytes, and the open files it
 * carries in flight as object ids of the image (the decoder keeps them to
 * objects the controller opens for the tasks anyway), sent again by the
 * controller to the socket of the image it was queued in. Its credentials
 * (SCM_CREDENTIALS) are sent by the controller, which the kernel lets name
 * any pid and ids: the pid is a task of the image (the decoder), the uid
 * the job's owner and the gid one of its groups (check_sockets), what the
 * user's own process could send. */
_Static_assert(sizeof(struct cd_sk_msg) == 48, "a new queued message field: review image-trust.c");
/* A memfd is made by the controller, with root's rights: its owner must be
 * the job's owner and one of its groups, and its mode must not be set-id
 * (an executable set-id memfd of root's would run as root): check_memfds.
 * Name, seals, contents and position are what any process may give its own
 * memfd; the contents file (size, csum) is read from the image directory the
 * user owns, by its fixed name; "of" only makes one more open of a memfd
 * the image itself makes (each entry's owner and mode are checked, and the
 * one made is its own entry's); "shmid" makes the image's own shared
 * mappings of that id map this memfd instead of a new object: what the
 * user could have mapped anyway. An entry of no open file (obj -1: a memfd
 * only mapped) is made the same way, for the image's own mappings only,
 * with the same owner, mode and size checks, and closed by the controller;
 * its name and seals are the user's to choose for any memfd. "pending" is
 * the dumper's only (never decoded). */
_Static_assert(sizeof(struct cd_memfd) == 80, "a new memfd field: review image-trust.c");
/* A deleted file is made again under its path and unlinked: the same rules
 * as a memfd's for its owner and mode (check_memfds), and the owner must be
 * able to create and remove a file in its directory (check_all_paths);
 * "of" and the contents file as a memfd's. */
_Static_assert(sizeof(struct cd_deleted) == 72, "a new deleted file field: review image-trust.c");
/* The plugins that took part (docs/plugins.md): a user's image may name
 * any, as it could have been dumped with them: the restore refuses one not
 * loaded, and a loaded plugin's restore hooks act on the tasks of the image
 * (processes of the user, once restored), reading files of the image that
 * the user could have written: a plugin treats them as untrusted input. The
 * decoder keeps names to [a-z0-9-]+ and pids to live tasks of the image. */
_Static_assert(sizeof(struct cd_image_plugin) == 88, "a new plugin field: review image-trust.c");
/* A SysV segment is made by the controller, with root's rights, at the
 * image's key and id: its owner must be the job's owner and one of its
 * groups (check_sysv_shm), as when the job makes one itself; SHM_LOCK is
 * refused (the controller may lock past the owner's RLIMIT_MEMLOCK). Key,
 * id, mode, size (the kernel's shmmax and shmall still apply), contents
 * and the removed mark are what the job could give a segment of its own;
 * its tasks attach only the image's segments (the decoder checks). */
_Static_assert(sizeof(struct cd_sysv_shm) == 64, "a new SysV segment field: review image-trust.c");
/* A SysV queue or semaphore set is made the same way: its owner must be the
 * job's owner and one of its groups (check_sysv); a queue's msg_qbytes no
 * more than kernel.msgmnb (the controller may raise it past that, the owner
 * may not). Key, id, mode, messages (the kernel's msgmax still applies),
 * values and sem_otime are what the job could give its own. */
/* An incremental image names its parent image by path (cd_image.parent): its pages of
 * CD_RUN_PREV come from there. The engine opens the whole chain with open_as, the job owner's
 * filesystem rights, so a user's checkpoint takes pages only from images that user can read,
 * which it could have copied into its own image anyway; nothing else of a parent is used. */
/* The page data layout (cd_image.pages: streams, codec) only says how the image's own page
 * files are cut and compressed: the stream files are named from pages_file (checked like it)
 * inside the image directory, decoded into the restoring controller's and tasks' own memory,
 * and checked against pages_csum like a plain file; a user gains nothing through it. With a
 * codec, the record index pages-PID.idx (named from pages_file the same way) only says where
 * each record of the image's own stream files lies; the engine checks it against the layout
 * and the files' sizes before any task exists, and every header against it. */
_Static_assert(sizeof(struct cd_sysv_msq) == 48, "a new SysV queue field: review image-trust.c");
_Static_assert(sizeof(struct cd_sysv_sem) == 40, "a new SysV set field: review image-trust.c");

static int read_oom_score_adj(int *ret)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/oom_score_adj", "re");

	if (!f || fscanf(f, "%d", ret) != 1)
		return -EIO;
	return 0;
}

int image_trust_init(struct image_trust *t, uid_t owner, gid_t gid, cd_err *err)
{
	int r, oom;

	memset(t, 0, sizeof(*t));
	t->owner = owner;
	t->gid = gid;
	r = fsid_user_groups(owner, gid, &t->groups, &t->ngroups);
	if (r < 0)
		return cd_err_sys(err, -r, "groups of uid %u", (unsigned)owner);
	t->id = (struct cd_fs_identity){owner, gid, t->groups, t->ngroups};
	for (int i = 0; i < RLIM_NLIMITS; i++)
		if (getrlimit(i, &t->rlim[i]) < 0)
			return cd_err_sys(err, errno, "getrlimit %d", i);
	errno = 0;
	t->nice = getpriority(PRIO_PROCESS, 0);
	if (errno)
		return cd_err_sys(err, errno, "getpriority");
	if (read_oom_score_adj(&oom) < 0)
		return cd_err_set(err, EIO, "read /proc/self/oom_score_adj");
	/* a user may raise their oom_score_adj, and lower it only back to what a
	 * privileged process gave them; the daemon's own is what its jobs get */
	t->oom_floor = oom < 0 ? oom : 0;
	return 0;
}

void image_trust_clear(struct image_trust *t)
{
	free(t->groups);
	t->groups = NULL;
}

static bool ids_are(const uint32_t ids[4], uint32_t want)
{
	for (int i = 0; i < 4; i++)
		if (ids[i] != want)
			return false;
	return true;
}

static bool group_allowed(const struct image_trust *tr, uint32_t g)
{
	for (size_t k = 0; k < tr->ngroups; k++)
		if (g == tr->groups[k])
			return true;
	return g == tr->gid;
}

static int check_ids(const struct image_trust *tr, const struct cd_task *t, cd_err *err)
{
	if (!ids_are(t->uid, tr->owner))
		return cd_err_set(err, EPERM, "task %d: uids are not all %u, the job's owner",
		                  t->pid, (unsigned)tr->owner);
	if (!ids_are(t->gid, tr->gid))
		return cd_err_set(err, EPERM, "task %d: gids are not all %u, the job's group",
		                  t->pid, (unsigned)tr->gid);
	for (size_t i = 0; i < t->ngroups; i++)
		if (!group_allowed(tr, t->groups[i]))
			return cd_err_set(err, EPERM,
			                  "task %d: supplementary group %u, which the job's owner "
			                  "is not in",
			                  t->pid, t->groups[i]);
	return 0;
}

static int check_caps(const struct cd_task *t, cd_err *err)
{
	const struct {
		const char *name;
		uint64_t v;
	} caps[] = {{"cap_inh", t->cap_inh},
	            {"cap_prm", t->cap_prm},
	            {"cap_eff", t->cap_eff},
	            {"cap_amb", t->cap_amb}};

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (caps[i].v)
			return cd_err_set(err, EPERM, "task %d: %s is not empty", t->pid,
			                  caps[i].name);
	return 0;
}

/* RLIM_INFINITY is the largest value, so plain comparisons hold. */
static int check_limits(const struct image_trust *tr, const struct cd_task *t, cd_err *err)
{
	for (int i = 0; i < CD_NRLIMIT && i < RLIM_NLIMITS; i++) {
		uint64_t soft = t->rlim[i][0], hard = t->rlim[i][1];

		if (soft > hard)
			return cd_err_set(err, EPERM,
			                  "task %d: rlimit %d: soft limit above the hard one",
			                  t->pid, i);
		if (hard > (uint64_t)tr->rlim[i].rlim_max)
			return cd_err_set(err, EPERM,
			                  "task %d: rlimit %d: hard limit %llu is above %llu, what "
			                  "the job's owner may have",
			                  t->pid, i, (unsigned long long)hard,
			                  (unsigned long long)tr->rlim[i].rlim_max);
	}
	return 0;
}

/* The restore locks memory before the task drops its privileges (mem.c,
 * mm.c): a user's task may lock no more than its RLIMIT_MEMLOCK (the
 * image's, bounded by check_limits), and mlockall needs a limit above 0. */
static int check_memlock(const struct cd_task *t, cd_err *err)
{
	uint64_t limit = RLIMIT_MEMLOCK < CD_NRLIMIT ? t->rlim[RLIMIT_MEMLOCK][0] : 0, locked = 0;

	for (size_t i = 0; i < t->nvmas; i++)
		if (t->vmas[i].flags & CD_VMF_LOCKED)
			locked += t->vmas[i].end - t->vmas[i].start;
	if (locked > limit)
		return cd_err_set(err, EPERM,
		                  "task %d: %llu bytes of locked memory, above RLIMIT_MEMLOCK %llu",
		                  t->pid, (unsigned long long)locked, (unsigned long long)limit);
	if (t->mlock_future != CD_MLOCK_FUTURE_NONE && limit == 0)
		return cd_err_set(err, EPERM, "task %d: mlockall(MCL_FUTURE) with RLIMIT_MEMLOCK 0",
		                  t->pid);
	return 0;
}

/* Anyone may lower their priority (a higher nice); a lower nice than the
 * one a job starts with needs RLIMIT_NICE to allow it (20 - nice). The
 * same for the task's main thread (tid == pid) and each other thread. */
static int check_thread_sched(const struct image_trust *tr, const struct cd_task *t, pid_t tid,
                              int nice, int policy, int prio, cd_err *err)
{
	uint64_t nice_rlim = RLIMIT_NICE < CD_NRLIMIT ? t->rlim[RLIMIT_NICE][0] : 0;

	if (nice < -20 || nice > 19)
		return cd_err_set(err, EINVAL, "task %d: thread %d: nice %d is out of range",
		                  t->pid, tid, nice);
	if (nice < tr->nice && (uint64_t)(20 - nice) > nice_rlim)
		return cd_err_set(err, EPERM,
		                  "task %d: thread %d: nice %d, which only a privileged process "
		                  "may set (RLIMIT_NICE %llu)",
		                  t->pid, tid, nice, (unsigned long long)nice_rlim);
	/* SCHED_OTHER, _BATCH and _IDLE are anyone's; a real-time priority
	 * needs RLIMIT_RTPRIO (the image's, bounded by check_limits) */
	uint64_t rt_rlim = RLIMIT_RTPRIO < CD_NRLIMIT ? t->rlim[RLIMIT_RTPRIO][0] : 0;
	bool rt = policy == SCHED_FIFO || policy == SCHED_RR;
	if (rt && (uint64_t)prio > rt_rlim)
		return cd_err_set(err, EPERM,
		                  "task %d: thread %d: real-time priority %d, above RLIMIT_RTPRIO "
		                  "%llu",
		                  t->pid, tid, prio, (unsigned long long)rt_rlim);
	return 0;
}

static int check_sched(const struct image_trust *tr, const struct cd_task *t, cd_err *err)
{
	int r = check_thread_sched(tr, t, t->pid, t->nice, t->sched_policy, t->sched_prio, err);

	for (size_t i = 0; r == 0 && i < t->nthreads; i++) {
		const struct cd_thread *th = &t->threads[i];
		r = check_thread_sched(tr, t, th->tid, th->nice, th->sched_policy, th->sched_prio,
		                       err);
	}
	if (r < 0)
		return r;
	if (t->oom_score_adj < tr->oom_floor || t->oom_score_adj > 1000)
		return cd_err_set(err, EPERM,
		                  "task %d: oom_score_adj %d is below %d, what the "
		                  "job's owner may set",
		                  t->pid, t->oom_score_adj, tr->oom_floor);
	return 0;
}

static int check_flags(const struct image_trust *tr, const struct cd_task *t, cd_err *err)
{
	/* 2 (core dumps readable by root only) is the kernel's to give */
	if (t->dumpable != 0 && t->dumpable != 1)
		return cd_err_set(err, EPERM, "task %d: dumpable %d (a user may set 0 or 1)",
		                  t->pid, t->dumpable);
	if (t->no_new_privs != 0 && t->no_new_privs != 1)
		return cd_err_set(err, EINVAL, "task %d: no_new_privs %d", t->pid, t->no_new_privs);
	/* the audit login uid: none, or the owner's own (a user's task whose
	 * loginuid is set cannot change it) */
	if (t->loginuid != UINT32_MAX && t->loginuid != tr->owner)
		return cd_err_set(err, EPERM,
		                  "task %d: loginuid %u (a user's task may have none or %u)",
		                  t->pid, t->loginuid, (unsigned)tr->owner);
	/* a user cannot chroot: a task of theirs has / as its root */
	if (!t->root || strcmp(t->root, "/") != 0)
		return cd_err_set(err, EPERM, "task %d: root directory %s is not /", t->pid,
		                  t->root ? t->root : "(none)");
	return 0;
}

static int access_mode(int flags)
{
	switch (flags & O_ACCMODE) {
	case O_WRONLY:
		return W_OK;
	case O_RDWR:
		return R_OK | W_OK;
	default:
		return R_OK;
	}
}

static const char *mode_name(int mode)
{
	switch (mode) {
	case F_OK:
		return "reach";
	case X_OK:
		return "enter or execute";
	case R_OK:
		return "read";
	case W_OK:
		return "write";
	default:
		return "read and write";
	}
}

/* With the owner's filesystem identity in place (AT_EACCESS: the current
 * fsuid, fsgid and groups, not the real ids). The engine opens the same
 * paths under that identity anyway; this names the first refusal before
 * anything exists. */
static int need(const struct cd_task *t, const char *path, int mode, cd_err *err)
{
	if (!path || faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0)
		return 0;
	return cd_err_sys(err, errno, "task %d: the job's owner may not %s %s", t->pid,
	                  mode_name(mode), path);
}

static int check_paths(const struct cd_task *t, cd_err *err)
{
	if (t->zombie)
		return 0;
	int r = need(t, t->cwd, X_OK, err);

	if (r == 0)
		r = need(t, t->mm.exe, X_OK, err);
	for (size_t i = 0; r == 0 && i < t->nfds; i++) {
		const struct cd_fd *d = &t->fds[i];

		if (d->kind == CD_FD_REG || d->kind == CD_FD_DIR || d->kind == CD_FD_CHR ||
		    d->kind == CD_FD_FIFO)
			r = need(t, d->path, access_mode(d->flags), err);
		/* O_PATH: search rights to the path, nothing of the file */
		else if (d->kind == CD_FD_PATH)
			r = need(t, d->path, F_OK, err);
		/* inotify_add_watch wants read access to the watched inode */
		for (size_t k = 0; r == 0 && k < d->niwatches; k++)
			r = need(t, d->iwatches[k].path, R_OK, err);
	}
	for (size_t i = 0; r == 0 && i < t->nvmas; i++) {
		const struct cd_vma *v = &t->vmas[i];
		/* the file is opened for writing when mprotect may add PROT_WRITE */
		bool writes = v->kind == CD_VMA_FILE_SHARED &&
		              ((v->prot & PROT_WRITE) || (v->flags & CD_VMF_MAYWRITE));

		/* a deleted file's: made from the image as the user's own
		 * (check_deleted, check_all_paths), no path to check */
		if (cd_vma_deleted(v) || cd_vma_memfd(v))
			continue;
		if (v->kind == CD_VMA_FILE || v->kind == CD_VMA_FILE_SHARED)
			r = need(t, v->path, R_OK | (writes ? W_OK : 0), err);
	}
	return r;
}

/* A zombie has no ids, memory or files: it is made and exits at once. */
/* A filter is installed with root's rights, where a user needs
 * no_new_privs: without it, a filtered setuid program could be misled. */
static int check_seccomp(const struct cd_task *t, cd_err *err)
{
	if (t->seccomp_mode == 2 && !t->no_new_privs)
		return cd_err_set(err, EPERM, "task %d: seccomp filters without no_new_privs",
		                  t->pid);
	return 0;
}

static int check_task(const struct image_trust *tr, const struct cd_task *t, cd_err *err)
{
	if (t->zombie)
		return 0;
	int r = check_ids(tr, t, err);

	if (r == 0)
		r = check_caps(t, err);
	if (r == 0)
		r = check_limits(tr, t, err);
	if (r == 0)
		r = check_sched(tr, t, err);
	if (r == 0)
		r = check_flags(tr, t, err);
	if (r == 0)
		r = check_memlock(t, err);
	if (r == 0)
		r = check_seccomp(t, err);
	return r;
}

/* The controller makes the pipes, with root's rights: a user's pipe may be
 * as large as fs.pipe-max-size, what F_SETPIPE_SZ lets a user ask for. */
static int check_pipes(const struct cd_image *img, cd_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");
	unsigned long max;

	if (!f || fscanf(f, "%lu", &max) != 1)
		return cd_err_set(err, EIO, "read /proc/sys/fs/pipe-max-size");
	for (size_t i = 0; i < img->npipes; i++)
		if (img->pipes[i].size > max)
			return cd_err_set(err, EPERM,
			                  "pipe %zu: size %u is above fs.pipe-max-size %lu", i,
			                  img->pipes[i].size, max);
	return 0;
}

static int check_memfds(const struct image_trust *tr, const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->nmemfds; i++) {
		const struct cd_memfd *m = &img->memfds[i];
		if (m->uid != tr->owner || !group_allowed(tr, m->gid))
			return cd_err_set(
			    err, EPERM,
			    "memfd %s: owner %u:%u, not the job's owner or one of its "
			    "groups",
			    m->name, m->uid, m->gid);
		if (m->mode & (S_ISUID | S_ISGID))
			return cd_err_set(err, EPERM, "memfd %s: mode %o is set-id", m->name,
			                  m->mode);
	}
	return 0;
}

/* The credentials on d's queued messages: the job's owner's ids. */
static int check_msg_creds(const struct image_trust *tr, pid_t pid, const struct cd_fd *d,
                           cd_err *err)
{
	for (size_t k = 0; d->kind == CD_FD_UNIX && k < d->sk_nqueue; k++) {
		const struct cd_sk_msg *m = &d->sk_queue[k];
		if (m->creds && (m->cred_uid != tr->owner || !group_allowed(tr, m->cred_gid)))
			return cd_err_set(err, EPERM,
			                  "task %d: fd %d: a queued message with the credentials "
			                  "%u:%u, not the job's owner or one of its groups",
			                  pid, d->fd, m->cred_uid, m->cred_gid);
	}
	return 0;
}

static int check_sockets(const struct image_trust *tr, const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			const struct cd_fd *d = &img->tasks[i].fds[j];
			bool sk = d->kind == CD_FD_UNIX || d->kind == CD_FD_INET ||
			          d->kind == CD_FD_NETLINK;
			int r = check_msg_creds(tr, img->tasks[i].pid, d, err);
			if (r < 0)
				return r;
			if (d->kind == CD_FD_INET && d->sk_tcp)
				return cd_err_set(err, EPERM,
				                  "task %d: fd %d: an established TCP connection: "
				                  "restoring it needs TCP repair (CAP_NET_ADMIN), "
				                  "which a user's checkpoint is not given",
				                  img->tasks[i].pid, d->fd);
			if (sk && (d->sk_iuid != tr->owner || !group_allowed(tr, d->sk_igid)))
				return cd_err_set(err, EPERM,
				                  "task %d: fd %d: %s of owner %u:%u, not "
				                  "the job's owner or one of its groups",
				                  img->tasks[i].pid, d->fd,
				                  d->kind == CD_FD_UNIX   ? "a unix socket"
				                  : d->kind == CD_FD_INET ? "an inet socket"
				                                          : "a netlink socket",
				                  d->sk_iuid, d->sk_igid);
		}
	return 0;
}

static int check_deleted(const struct image_trust *tr, const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->ndeleted; i++) {
		const struct cd_deleted *f = &img->deleted[i];
		if (f->uid != tr->owner || !group_allowed(tr, f->gid))
			return cd_err_set(
			    err, EPERM,
			    "deleted file %s: owner %u:%u, not the job's owner or one of "
			    "its groups",
			    f->path, f->uid, f->gid);
		if (f->mode & (S_ISUID | S_ISGID))
			return cd_err_set(err, EPERM, "deleted file %s: mode %o is set-id", f->path,
			                  f->mode);
	}
	return 0;
}

static int check_sysv_shm(const struct image_trust *tr, const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->nsysv_shm; i++) {
		const struct cd_sysv_shm *m = &img->sysv_shm[i];
		if (m->uid != tr->owner || !group_allowed(tr, m->gid))
			return cd_err_set(err, EPERM,
			                  "SysV shared memory segment id %d: owner %u:%u, not the "
			                  "job's owner or one of its groups",
			                  m->id, m->uid, m->gid);
		if (m->locked)
			return cd_err_set(err, EPERM,
			                  "SysV shared memory segment id %d: locked (SHM_LOCK)",
			                  m->id);
	}
	return 0;
}

static int check_owner(const struct image_trust *tr, const char *what, int id, uint32_t uid,
                       uint32_t gid, cd_err *err)
{
	if (uid != tr->owner || !group_allowed(tr, gid))
		return cd_err_set(err, EPERM,
		                  "SysV %s id %d: owner %u:%u, not the job's owner or one of its "
		                  "groups",
		                  what, id, uid, gid);
	return 0;
}

static int check_sysv(const struct image_trust *tr, const struct cd_image *img, cd_err *err)
{
	unsigned long msgmnb = 16384;
	int r = 0;
	FILE *f = fopen("/proc/sys/kernel/msgmnb", "re");

	if (f) {
		if (fscanf(f, "%lu", &msgmnb) != 1)
			msgmnb = 16384;
		fclose(f);
	}
	for (size_t i = 0; r == 0 && i < img->nsysv_msq; i++) {
		const struct cd_sysv_msq *q = &img->sysv_msq[i];
		r = check_owner(tr, "message queue", q->id, q->uid, q->gid, err);
		if (r == 0 && q->qbytes > msgmnb)
			r = cd_err_set(err, EPERM,
			               "SysV message queue id %d: msg_qbytes %" PRIu64
			               " above kernel.msgmnb %lu",
			               q->id, q->qbytes, msgmnb);
	}
	for (size_t i = 0; r == 0 && i < img->nsysv_sem; i++)
		r = check_owner(tr, "semaphore set", img->sysv_sem[i].id, img->sysv_sem[i].uid,
		                img->sysv_sem[i].gid, err);
	return r;
}

/* A deleted file is created and removed in its directory. */
static int check_deleted_dirs(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->ndeleted; i++) {
		_cleanup_free_ char *dir = strdup(img->deleted[i].path);
		if (!dir)
			return cd_err_set(err, ENOMEM, "out of memory");
		char *slash = strrchr(dir, '/');
		slash[slash == dir ? 1 : 0] = 0;
		if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0)
			return cd_err_sys(
			    err, errno,
			    "deleted file %s: the job's owner may not create files in %s",
			    img->deleted[i].path, dir);
	}
	return 0;
}

static int check_all_paths(const struct image_trust *tr, const struct cd_image *img, cd_err *err)
{
	struct fsid_saved saved;
	int r = fsid_enter(&tr->id, &saved, err);

	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < img->ntasks; i++)
		r = check_paths(&img->tasks[i], err);
	if (r == 0)
		r = check_deleted_dirs(img, err);
	fsid_leave(&saved);
	return r;
}

int image_trust_check(const struct cd_image *img, void *trust, cd_err *err)
{
	const struct image_trust *tr = trust;
	int r = 0;

	if (tr->owner == 0)
		return 0;
	for (size_t i = 0; r == 0 && i < img->ntasks; i++)
		r = check_task(tr, &img->tasks[i], err);
	if (r == 0)
		r = check_pipes(img, err);
	if (r == 0)
		r = check_memfds(tr, img, err);
	if (r == 0)
		r = check_deleted(tr, img, err);
	if (r == 0)
		r = check_sysv_shm(tr, img, err);
	if (r == 0)
		r = check_sysv(tr, img, err);
	if (r == 0)
		r = check_sockets(tr, img, err);
	if (r == 0)
		r = check_all_paths(tr, img, err);
	if (r < 0)
		return cd_err_wrap(err,
		                   "refused: the checkpoint of a job of uid %u asks for more than "
		                   "that user has",
		                   (unsigned)tr->owner);
	return 0;
}
