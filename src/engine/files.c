/* File descriptors: what every fd has, whatever its kind. The dump lists a
 * task's fds and names every open file description once (kcmp finds the
 * ones shared between fds and tasks); the restore opens every description
 * in the controller, which the new tasks inherit through clone3, and each
 * task then keeps exactly its own fds at their numbers. What depends on the
 * kind of object (how it is recognised, what the image keeps of it, how it
 * is opened again) is in the kinds' ops, fd-*.c (internal.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/inject/inject.h"

#include "engine/internal.h"
#include "shared/cleanup.h"

/* Status flags F_SETFL sets and the restore puts back after the open. */
#define SETTABLE_FLAGS (O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_ASYNC)

/* Whether p1's fd1 and p2's fd2 are one open file. */
int cd_fd_same_file(pid_t p1, int fd1, pid_t p2, int fd2, bool *ret, cd_err *err)
{
	int order,
	    r = cd_kcmp(p1, (unsigned long)fd1, p2, (unsigned long)fd2, KCMP_FILE, &order, err);

	if (r < 0)
		return cd_err_wrap(err, "pid %d: fd %d against pid %d: fd %d", p2, fd2, p1, fd1);
	*ret = order == 0;
	return 0;
}

static bool is_deleted(const char *link)
{
	size_t n = strlen(link);

	return n > 10 && !strcmp(link + n - 10, " (deleted)");
}

/* Anonymous-inode objects no kind restores, by the name the kernel gives
 * them (the link reads "anon_inode:NAME"), with why: the refusal names the
 * object and the reason, not just "unsupported". */
static const struct {
	const char *name; /* a prefix of NAME */
	const char *what;
} anon_refused[] = {
    {"[fanotify]", "fanotify is not supported: its marks and the events it has not yet "
                   "delivered live in the kernel, and the engine does not make them again"},
    {"[userfaultfd]", "userfaultfd is not supported: its registered ranges and the faults "
                      "waiting for a reply cannot be made again"},
    {"[io_uring]", "io_uring is not supported: its rings, registered files and buffers and "
                   "requests in flight live in the kernel"},
    {"[perf_event]", "perf_event is not supported: a counter's state and its ring buffer "
                     "cannot be made again"},
    {"bpf-map", "a BPF map is not supported: BPF objects are not checkpointed"},
    {"bpf-prog", "a BPF program is not supported: BPF objects are not checkpointed"},
    {"bpf_link", "a BPF link is not supported: BPF objects are not checkpointed"},
    {"bpf-link", "a BPF link is not supported: BPF objects are not checkpointed"},
    {"bpf_iter", "a BPF iterator is not supported: BPF objects are not checkpointed"},
    {"bpf-token", "a BPF token is not supported: BPF objects are not checkpointed"},
    {"seccomp notify", "a seccomp user-notification listener is not supported: its "
                       "filter's notifications cannot be made again"},
    {"kvm-", "a KVM virtual machine is not supported"},
    {"[landlock-ruleset]", "a Landlock ruleset fd is not supported"},
    {"[fscontext]", "a filesystem context (fsopen) is not supported"},
    {"[iommufd]", "iommufd is not supported"},
    {"[vfio-device]", "a VFIO device is not supported"},
};

/* Why an fd of no kind is refused: its object named where it is known. */
static int refuse_unclaimed(const struct cd_fd_dump *x, const struct cd_fd *d, cd_err *err)
{
	const char *anon = "anon_inode:";

	if (!strncmp(x->link, anon, strlen(anon))) {
		const char *name = x->link + strlen(anon);
		for (size_t i = 0; i < ARRAY_SIZE(anon_refused); i++)
			if (!strncmp(name, anon_refused[i].name, strlen(anon_refused[i].name)))
				return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): %s",
				                  x->t->pid, d->fd, x->link, anon_refused[i].what);
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): an anonymous-inode object of a kind the "
		                  "engine does not restore",
		                  x->t->pid, d->fd, x->link);
	}
	return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): unsupported file kind", x->t->pid,
	                  d->fd, x->link);
}

/* The kind that takes the fd, asked in the order of cd_fd_kinds. */
static int classify(const struct cd_fd_dump *x, struct cd_fd *d, const struct cd_fd_ops **ret,
                    cd_err *err)
{
	/* a memfd's path always reads deleted: it never had one; a deleted
	 * file of no link left travels in the image */
	if (is_deleted(x->link) && !cd_fd_ops_memfd.claims(x, d) && !cd_fd_ops_deleted.claims(x, d))
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d: fd %d (%s): a deleted file that is still linked elsewhere "
		    "(%lu links) or not a regular file is not supported: a restore "
		    "could not open it again; have the process close it",
		    x->t->pid, d->fd, x->link, (unsigned long)x->st->st_nlink);
	for (size_t i = 0; i < cd_fd_kinds_n; i++) {
		const struct cd_fd_ops *ops = cd_fd_kinds[i];
		if (ops->claims && ops->claims(x, d)) {
			d->kind = ops->kind;
			*ret = ops;
			return 0;
		}
	}
	return refuse_unclaimed(x, d, err);
}

/* The open files dumped so far, one entry per object (its first fd), in a
 * search tree ordered by kcmp: finding an fd's object takes O(log n) kcmp
 * calls where comparing it with every earlier fd took O(n). Fds of external
 * stdio are not in it: a slot is the caller's whatever else shares it. */
struct cd_dump_tree {
	void *root; /* tsearch tree of struct open_file */
	int next_obj;
	struct cd_holders *holders; /* who outside the tree holds what */
	cd_err *err;                /* of the lookup under way, and its result */
	int r;
};

struct open_file {
	pid_t pid;
	int fd, obj;
	struct cd_dump_tree *tree;
};

struct cd_dump_tree *cd_dump_tree_new(void)
{
	struct cd_dump_tree *tree = calloc(1, sizeof(*tree));

	if (tree)
		tree->next_obj = 3; /* 0..2: the root's external stdio, one per slot */
	return tree;
}

void cd_dump_tree_free(struct cd_dump_tree *tree)
{
	if (!tree)
		return;
	tdestroy(tree->root, free);
	cd_holders_free(tree->holders);
	free(tree);
}

struct cd_holders **cd_dump_tree_holders(struct cd_dump_tree *tree)
{
	return &tree->holders;
}

/* tsearch's comparison cannot fail: a kcmp failure is kept in the tree and
 * ends the lookup's caller (the tree's order no longer matters then). */
static int by_file(const void *a, const void *b)
{
	const struct open_file *x = a, *y = b;
	struct cd_dump_tree *tree = x->tree;
	int order = -1;

	if (tree->r == 0)
		tree->r = cd_kcmp(x->pid, (unsigned long)x->fd, y->pid, (unsigned long)y->fd,
		                  KCMP_FILE, &order, tree->err);
	return order;
}

/* The object id of pid's fd: the id of the same open file dumped before,
 * else a new one (*ret_new). */
static int find_obj(struct cd_dump_tree *tree, pid_t pid, int fd, int *ret, bool *ret_new,
                    cd_err *err)
{
	_cleanup_free_ struct open_file *f = malloc(sizeof(*f));
	struct open_file **found;

	if (!f)
		return cd_err_set(err, ENOMEM, "out of memory");
	*f = (struct open_file){.pid = pid, .fd = fd, .obj = -1, .tree = tree};
	tree->err = err;
	tree->r = 0;
	found = tsearch(f, &tree->root, by_file);
	*ret_new = found && *found == f;
	if (*ret_new) /* the tree's now, even when a comparison failed */
		TAKE_PTR(f)->obj = tree->next_obj++;
	if (tree->r < 0)
		return cd_err_wrap(err, "pid %d: fd %d: which open file", pid, fd);
	if (!found)
		return cd_err_set(err, ENOMEM, "out of memory");
	*ret = (*found)->obj;
	return 0;
}

static bool image_has_group(const struct cd_image *img, pid_t pgid)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (img->tasks[i].pgid == pgid)
			return true;
	return false;
}

/* Which refusal an owner gets: a thread of another task of the tree is
 * made after this task's files, so it cannot be set yet; anything else is
 * outside the tree. */
static int owner_refused(struct cd_dump_ctx *ctx, const struct cd_task *t, const struct cd_fd *d,
                         const char *link, pid_t owner, bool group, cd_err *err)
{
	for (size_t i = 0; !group && i < ctx->img->ntasks; i++)
		if (cd_task_has_thread(&ctx->img->tasks[i], owner))
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "pid %d: fd %d (%s): its SIGIO owner, thread %d, is a thread "
			    "of another process of the tree (pid %d): not supported",
			    t->pid, d->fd, link, owner, ctx->img->tasks[i].pid);
	return cd_err_set(err, EOPNOTSUPP,
	                  "pid %d: fd %d (%s): its SIGIO owner, %s %d, is not in the checkpoint",
	                  t->pid, d->fd, link, group ? "process group" : "pid", owner);
}

/* SIGIO ownership and signal, asked of the task itself: no /proc file
 * shows them. An owner outside the tree would be another process after a
 * restore, or none. */
static int dump_fown(struct cd_dump_ctx *ctx, const struct cd_task *t, struct cd_fd *d,
                     const char *link, cd_err *err)
{
	struct f_owner_ex own;
	long sig;
	int r;

	if ((r = cd_call_ok(ctx->inj, "fcntl(F_GETOWN_EX)", SYS_fcntl, (uint64_t)d->fd, F_GETOWN_EX,
	                    ctx->scratch, 0, 0, 0, NULL, err)) < 0 ||
	    (r = cd_inject_read_mem(ctx->inj, ctx->scratch, &own, sizeof(own), err)) < 0 ||
	    (r = cd_call_ok(ctx->inj, "fcntl(F_GETSIG)", SYS_fcntl, (uint64_t)d->fd, F_GETSIG, 0, 0,
	                    0, 0, &sig, err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", t->pid, d->fd, link);
	d->own_type = own.type;
	d->own_pid = own.pid;
	d->sig = (int)sig;
	if (!own.pid)
		return 0;
	bool group = own.type == F_OWNER_PGRP;
	/* a thread of the task itself exists when its files are restored */
	if (own.type == F_OWNER_TID && cd_task_has_thread(t, own.pid))
		return 0;
	if (group ? !image_has_group(ctx->img, own.pid) : !cd_image_task(ctx->img, own.pid))
		return owner_refused(ctx, t, d, link, own.pid, group, err);
	return 0;
}

static bool claimed(struct cd_dump_ctx *ctx, const struct cd_task *t, int fd, const char *link)
{
	struct cd_plugin_object obj = {.pid = t->pid, .fd = fd, .path = link};

	return ctx->plugins && cd_plugins_dump_claim(ctx->plugins, ctx->img, &obj);
}

static int dump_fd(struct cd_dump_ctx *ctx, struct cd_task *t, int fd, cd_err *err)
{
	char name[64];
	_cleanup_free_ char *link = NULL;
	struct cd_proc_fdinfo fi;
	struct stat st;
	struct cd_fd *d = &t->fds[t->nfds];
	struct cd_fd_dump x = {.ctx = ctx, .t = t, .st = &st};
	const struct cd_fd_ops *ops = NULL;
	bool external = false;
	int r;

	snprintf(name, sizeof(name), "fd/%d", fd);
	if ((r = cd_proc_readlink(t->pid, name, &link, err)) < 0)
		return r;
	x.link = link;
	snprintf(name, sizeof(name), "/proc/%d/fd/%d", t->pid, fd);
	if (stat(name, &st) < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d (%s): stat", t->pid, fd, link);
	if ((r = cd_proc_fdinfo(t->pid, fd, &fi, err)) < 0)
		return r;
	memset(d, 0, sizeof(*d));
	d->fd = fd;
	d->flags = fi.flags;
	d->pos = fi.pos;
	if ((r = cd_fd_std_slot(ctx->img, t, fd, &d->std, err)) < 0 ||
	    (d->std >= 0 &&
	     (r = cd_fd_external_slot(ctx->img, ctx->external_stdio, d->std, &external, err)) < 0))
		return r;
	if (external) {
		/* ids 0..2 are the root's external stdio, one per slot */
		d->obj = d->std;
		d->kind = CD_FD_STDIO;
		t->nfds++;
		return 0;
	}
	if ((r = find_obj(ctx->tree, t->pid, fd, &d->obj, &x.new_obj, err)) < 0)
		return r;
	if ((r = classify(&x, d, &ops, err)) == -EOPNOTSUPP && claimed(ctx, t, fd, link)) {
		/* a plugin's (a device's): left out of the image */
		cd_err_clear(err);
		cd_fd_free(d);
		memset(d, 0, sizeof(*d));
		return 0;
	}
	if (r < 0 || (ops->dump && (r = ops->dump(&x, d, err)) < 0) ||
	    (ops->has_owner && (r = dump_fown(ctx, t, d, link, err)) < 0) ||
	    (ops->has_path && !(d->path = strdup(link)) &&
	     (r = cd_err_set(err, ENOMEM, "out of memory")) < 0)) {
		/* not counted in t->nfds: what the kind gathered before it
		 * refused is freed here */
		cd_fd_free(d);
		return r;
	}
	t->nfds++;
	return 0;
}

static int files_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	char path[64];
	struct dirent *de;
	size_t cap = 16;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/fd", t->pid);
	_cleanup_closedir_ DIR *dir = opendir(path);
	if (!dir)
		return cd_err_sys(err, errno, "open %s", path);
	t->fds = calloc(cap, sizeof(*t->fds));
	if (!t->fds)
		return cd_err_set(err, ENOMEM, "out of memory");
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (t->nfds == cap) {
			cap *= 2;
			struct cd_fd *nf = realloc(t->fds, cap * sizeof(*nf));
			if (!nf)
				return cd_err_set(err, ENOMEM, "out of memory");
			t->fds = nf;
		}
		if (t->nfds == CD_MAX_FDS)
			return cd_err_set(err, E2BIG, "pid %d: more than %u fds", t->pid,
			                  CD_MAX_FDS);
		r = dump_fd(ctx, t, atoi(de->d_name), err);
		if (r < 0)
			return r;
	}
	if ((r = cd_proc_readlink(t->pid, "cwd", &t->cwd, err)) < 0 ||
	    (r = cd_proc_readlink(t->pid, "root", &t->root, err)) < 0)
		return r;
	if (is_deleted(t->cwd) || is_deleted(t->root))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: its %s directory %s was deleted: not supported", t->pid,
		                  is_deleted(t->cwd) ? "working" : "root",
		                  is_deleted(t->cwd) ? t->cwd : t->root);
	return 0;
}

/* ---- restore: by injected calls, once every task exists ---- */

/* In the task: O_ASYNC is cleared, then set again through this fd, so
 * SIGIO's si_fd names it (shared with other fds, the last one set wins). */
int cd_fd_set_flags_in(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	long got;
	int r = cd_call_ok(ctx->inj, "fcntl(F_SETFL)", SYS_fcntl, (uint64_t)d->fd, F_SETFL,
	                   (uint64_t)(d->flags & SETTABLE_FLAGS & ~O_ASYNC), 0, 0, 0, NULL, err);

	if (r == 0)
		r = cd_call_ok(ctx->inj, "fcntl(F_SETFL)", SYS_fcntl, (uint64_t)d->fd, F_SETFL,
		               (uint64_t)(d->flags & SETTABLE_FLAGS), 0, 0, 0, NULL, err);
	if (r == 0)
		r = cd_call_ok(ctx->inj, "fcntl(F_GETFL)", SYS_fcntl, (uint64_t)d->fd, F_GETFL, 0,
		               0, 0, 0, &got, err);
	if (r == 0 && (got & SETTABLE_FLAGS) != (d->flags & SETTABLE_FLAGS))
		r = cd_err_set(err, EINVAL, "flags %#o came back as %#o", d->flags & SETTABLE_FLAGS,
		               (int)got & SETTABLE_FLAGS);
	return r;
}

static int restore_fown(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	struct f_owner_ex own = {.type = d->own_type, .pid = d->own_pid};
	int r = 0;

	if (d->own_pid &&
	    ((r = cd_inject_write_mem(ctx->inj, ctx->data, &own, sizeof(own), err)) < 0 ||
	     (r = cd_call_ok(ctx->inj, "fcntl(F_SETOWN_EX)", SYS_fcntl, (uint64_t)d->fd,
	                     F_SETOWN_EX, ctx->data, 0, 0, 0, NULL, err)) < 0))
		return r;
	if (d->sig)
		r = cd_call_ok(ctx->inj, "fcntl(F_SETSIG)", SYS_fcntl, (uint64_t)d->fd, F_SETSIG,
		               (uint64_t)d->sig, 0, 0, 0, NULL, err);
	return r;
}

/* An fd that is the image's own object with flags and an owner to put back:
 * not an O_PATH fd, nor one the caller replaced. */
static bool own_object(const struct cd_restore_ctx *ctx, const struct cd_fd *d)
{
	return cd_fd_ops_of(d->kind)->has_owner && !cd_files_replaced(ctx->objs, d);
}

/* Runs after the credentials: the /proc files are opened, and the SIGIO
 * owner set (the kernel keeps the setter's credentials for the signal), as
 * the task itself. */
static int files_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	int r = 0;

	for (size_t j = 0; r == 0 && j < t->nfds; j++) {
		const struct cd_fd *d = &t->fds[j];
		const struct cd_fd_ops *ops = cd_fd_ops_of(d->kind);
		if (ops->restore && !cd_files_replaced(ctx->objs, d))
			r = ops->restore(ctx, d, err);
		else if ((d->flags & O_ASYNC) && own_object(ctx, d))
			r = cd_fd_set_flags_in(ctx, d, err);
		if (r == 0 && own_object(ctx, d))
			r = restore_fown(ctx, d, err);
		if (r < 0)
			r = cd_err_wrap(err, "fd %d", d->fd);
	}
	/* once every fd of the task exists: what refers to other fds (epoll) */
	for (size_t j = 0; r == 0 && j < t->nfds; j++) {
		const struct cd_fd *d = &t->fds[j];
		const struct cd_fd_ops *ops = cd_fd_ops_of(d->kind);
		if (ops->restore_late && !cd_files_replaced(ctx->objs, d) &&
		    (r = ops->restore_late(ctx, d, err)) < 0)
			r = cd_err_wrap(err, "fd %d", d->fd);
	}
	return r;
}

const struct cd_module cd_mod_files = {
    .name = "files", .dump = files_dump, .restore = files_restore};

/* ---- restore: in the controller ---- */

struct cd_file_objs {
	int *fd; /* per object id, the controller's fd */
	size_t n;
	struct cd_stdio_plan plan; /* the caller's, not ours to close */
};

void cd_files_free(struct cd_file_objs *objs)
{
	if (!objs)
		return;
	for (size_t i = 3; i < objs->n; i++)
		if (objs->fd[i] >= 0)
			close(objs->fd[i]);
	free(objs->fd);
	free(objs);
}

bool cd_files_replaced(const struct cd_file_objs *objs, const struct cd_fd *d)
{
	return cd_stdio_replacement(&objs->plan, d) >= 0;
}

int cd_files_obj_fd(const struct cd_file_objs *objs, int obj)
{
	return obj >= 0 && (size_t)obj < objs->n ? objs->fd[obj] : -1;
}

/* Sets the status flags the open did not (any for a pipe end), and refuses
 * an open file that does not take them. O_ASYNC waits for files_restore:
 * the kernel records the fd number it was set through (si_fd). */
int cd_fd_set_flags(int fd, const struct cd_fd *d, cd_err *err)
{
	int want = d->flags & SETTABLE_FLAGS & ~O_ASYNC, got;

	if (fcntl(fd, F_SETFL, want) < 0)
		return cd_err_sys(err, errno, "set flags %#o", want);
	got = fcntl(fd, F_GETFL);
	if (got < 0)
		return cd_err_sys(err, errno, "F_GETFL");
	if ((got & SETTABLE_FLAGS & ~O_ASYNC) != want)
		return cd_err_set(err, EINVAL, "flags %#o came back as %#o", want,
		                  got & SETTABLE_FLAGS & ~O_ASYNC);
	return 0;
}

/* Every object of the image the controller opens (not the caller's, not
 * one its task opens), once, in objs->fd[id]. */
static int open_objs(struct cd_fd_open *o, const struct cd_stdio_plan *plan,
                     struct cd_file_objs *objs, cd_err *err)
{
	const struct cd_image *img = o->img;
	int r;

	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		for (size_t j = 0; j < t->nfds; j++) {
			const struct cd_fd *d = &t->fds[j];
			const struct cd_fd_ops *ops = cd_fd_ops_of(d->kind);
			if (!ops->open || cd_stdio_replacement(plan, d) >= 0 ||
			    objs->fd[d->obj] >= 0)
				continue;
			if ((r = ops->open(o, d, err)) < 0)
				return cd_err_wrap(err, "pid %d: fd %d", t->pid, d->fd);
			objs->fd[d->obj] = r;
		}
	}
	return 0;
}

int cd_files_prepare(const struct cd_image *img, int dirfd, const struct cd_stdio_plan *plan,
                     struct cd_file_objs **ret, cd_err *err)
{
	_cleanup_free_ struct cd_file_objs *objs = calloc(1, sizeof(*objs));
	struct cd_fd_open o = {.img = img, .dirfd = dirfd};
	int r;

	if (!objs)
		return cd_err_set(err, ENOMEM, "out of memory");
	objs->n = 3;
	objs->plan = *plan;
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++)
			if ((size_t)img->tasks[i].fds[j].obj >= objs->n)
				objs->n = (size_t)img->tasks[i].fds[j].obj + 1;
	objs->fd = malloc(objs->n * sizeof(int));
	if (!objs->fd)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < objs->n; i++)
		objs->fd[i] = -1;
	r = open_objs(&o, plan, objs, err);
	for (size_t i = 0; i < cd_fd_kinds_n; i++)
		if (cd_fd_kinds[i]->open_done)
			cd_fd_kinds[i]->open_done(&o);
	if (r < 0) {
		cd_files_free(TAKE_PTR(objs));
		return r;
	}
	*ret = TAKE_PTR(objs);
	return 0;
}

/* ---- restore: inside a new task, before it is seized ---- */

static int max_open_fd(void)
{
	_cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int max = 2;

	while (d && (de = readdir(d)))
		if (atoi(de->d_name) > max)
			max = atoi(de->d_name);
	return max;
}

/* Leaves the task with exactly t's fds (and *keep_fd, moved high). */
int cd_files_install(const struct cd_image *img, const struct cd_task *t,
                     const struct cd_file_objs *objs, int *keep_fd, cd_err *err)
{
	int base = max_open_fd() + 1;
	_cleanup_free_ int *high = calloc(t->nfds + 1, sizeof(int));

	if (!high)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t j = 0; j < t->nfds; j++)
		if (t->fds[j].fd >= base)
			base = t->fds[j].fd + 1;
	for (size_t j = 0; j < t->nfds; j++) {
		int src = cd_stdio_replacement(&objs->plan, &t->fds[j]);
		high[j] = -1;
		/* opened by the task itself once the tree exists */
		if (cd_fd_ops_of(t->fds[j].kind)->by_task && src < 0)
			continue;
		high[j] = fcntl(src >= 0 ? src : objs->fd[t->fds[j].obj], F_DUPFD, base);
		if (high[j] < 0)
			return cd_err_sys(err, errno, "pid %d: fd %d: dup", t->pid, t->fds[j].fd);
	}
	int keep = fcntl(*keep_fd, F_DUPFD_CLOEXEC, base);
	if (keep < 0)
		return cd_err_sys(err, errno, "dup status pipe");
	/* one call: a task with a high fd had base hundreds of closes */
	if (close_range(0, (unsigned)base - 1, 0) < 0)
		for (int fd = 0; fd < base; fd++)
			close(fd);
	for (size_t j = 0; j < t->nfds; j++) {
		const struct cd_fd *d = &t->fds[j];
		if (high[j] < 0)
			continue;
		if (dup3(high[j], d->fd, d->flags & O_CLOEXEC) < 0)
			return cd_err_sys(err, errno, "pid %d: fd %d: dup3", t->pid, d->fd);
		close(high[j]);
	}
	*keep_fd = keep;
	(void)img;
	return 0;
}
