/* File descriptors. The dump names every open file description once (kcmp
 * finds the ones shared between fds and tasks) and stores unread pipe data
 * once per pipe. The restore opens every description in the controller,
 * which the new tasks inherit through clone3; each task then keeps exactly
 * its own fds at their numbers. The root's stdio is external: the restore
 * caller supplies it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <search.h>
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
static int same_file(pid_t p1, int fd1, pid_t p2, int fd2, bool *ret, cd_err *err)
{
	int order,
	    r = cd_kcmp(p1, (unsigned long)fd1, p2, (unsigned long)fd2, KCMP_FILE, &order, err);

	if (r < 0)
		return cd_err_wrap(err, "pid %d: fd %d against pid %d: fd %d", p2, fd2, p1, fd1);
	*ret = order == 0;
	return 0;
}

static bool chr_supported(const char *path)
{
	static const char *const ok[] = {"/dev/null",   "/dev/zero", "/dev/urandom",
	                                 "/dev/random", "/dev/tty",  "/dev/console"};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (!strcmp(path, ok[i]))
			return true;
	return !strncmp(path, "/dev/pts/", 9) || !strncmp(path, "/dev/tty", 8);
}

static bool is_deleted(const char *link)
{
	size_t n = strlen(link);

	return n > 10 && !strcmp(link + n - 10, " (deleted)");
}

/* A file under /proc/PID: reopened by path once the tree exists, only for
 * a task of the image (another pid would be another process, or none). */
static int classify_proc(const struct cd_image *img, pid_t pid, int fd, const char *link,
                         struct cd_fd *d, bool new_obj, cd_err *err)
{
	pid_t of = cd_fd_proc_pid(link);

	if (!of)
		return 0;
	if (!cd_image_task((struct cd_image *)img, of))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): a file of pid %d, which is not in the "
		                  "checkpoint",
		                  pid, fd, link, of);
	if (d->kind == CD_FD_PATH)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): O_PATH fds of /proc files are not supported",
		                  pid, fd, link);
	/* each fd reopens its own: one open file shared by two fds cannot be */
	if (!new_obj)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): a /proc file shared with another fd is not "
		                  "supported",
		                  pid, fd, link);
	if (d->kind != CD_FD_REG && d->kind != CD_FD_DIR)
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): unsupported /proc file",
		                  pid, fd, link);
	d->kind = CD_FD_PROC;
	return 0;
}

static int classify_fd(pid_t pid, int fd, const char *link, const struct stat *st, struct cd_fd *d,
                       cd_err *err)
{
	if (is_deleted(link))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): deleted files are not supported: a restore "
		                  "could not open it again; have the process close it",
		                  pid, fd, link);
	/* O_PATH opens nothing of the object: any kind with a path reopens */
	if ((d->flags & O_PATH) && link[0] == '/') {
		d->kind = CD_FD_PATH;
		if (S_ISLNK(st->st_mode))
			d->flags |= O_NOFOLLOW;
		return 0;
	}
	if (d->flags & O_PATH)
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): O_PATH without a path", pid,
		                  fd, link);
	if (S_ISREG(st->st_mode) && link[0] == '/')
		d->kind = CD_FD_REG;
	else if (S_ISDIR(st->st_mode) && link[0] == '/')
		d->kind = CD_FD_DIR;
	else if (S_ISCHR(st->st_mode) && chr_supported(link))
		d->kind = CD_FD_CHR;
	else if (S_ISFIFO(st->st_mode))
		d->kind = link[0] == '/' ? CD_FD_FIFO : CD_FD_PIPE;
	else
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): unsupported file kind", pid,
		                  fd, link);
	return 0;
}

/* Copies the unread data of the pipe behind pid's fd without consuming it:
 * a new read end through /proc, tee() into a pipe of ours, read that. */
static int peek_pipe(pid_t pid, int fd, struct cd_pipe *p, cd_err *err)
{
	char path[64];
	int tmp[2];
	_cleanup_close_ int rd = -1, tr = -1, tw = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rd < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d: open pipe", pid, fd);
	if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK) < 0)
		return cd_err_sys(err, errno, "pipe");
	tr = tmp[0];
	tw = tmp[1];
	int size = fcntl(rd, F_GETPIPE_SZ);
	if (size < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d: F_GETPIPE_SZ", pid, fd);
	p->size = (uint32_t)size;
	fcntl(tw, F_SETPIPE_SZ, size);
	ssize_t n = tee(rd, tw, CD_PIPE_DATA_MAX, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN)
		return cd_err_sys(err, errno, "pid %d: fd %d: tee pipe", pid, fd);
	if (n <= 0)
		return 0;
	p->data = malloc((size_t)n);
	if (!p->data)
		return cd_err_set(err, ENOMEM, "out of memory");
	while (p->len < (size_t)n) {
		ssize_t got = read(tr, p->data + p->len, (size_t)n - p->len);
		if (got <= 0)
			return cd_err_sys(err, got < 0 ? errno : EIO, "read pipe copy");
		/* a short read: the copy keeps the packets of an O_DIRECT writer,
		 * whose boundaries the image does not hold */
		if (p->len + (size_t)got < (size_t)n)
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "pid %d: fd %d: unread packets of an O_DIRECT pipe are not "
			    "supported",
			    pid, fd);
		p->len += (size_t)got;
	}
	return 0;
}

/* Whether the root's fd s is external stdio: the caller said so, or it
 * shares its open file with one the caller said so of (one terminal on
 * fds 0-2 is all external or none). */
static int external_slot(const struct cd_image *img, unsigned mask, int s, bool *ret, cd_err *err)
{
	int r;

	*ret = false;
	for (int o = 0; o < 3 && !*ret; o++) {
		if (!(mask & (1u << o)))
			continue;
		*ret = o == s;
		if (!*ret && (r = same_file(img->root, o, img->root, s, ret, err)) < 0)
			return r;
	}
	return 0;
}

/* The std slot of pid's fd: the root's fd N is slot N, even when fds 0-2
 * are one open file (a terminal, a log opened once and dup'ed), so a
 * replacement of stdout never lands on stdin; another fd sharing the open
 * file of root fds 0-2 takes the lowest of them. -1: none. */
static int std_slot(const struct cd_image *img, const struct cd_task *t, int fd, int *ret,
                    cd_err *err)
{
	bool same;
	int r;

	*ret = -1;
	if (t->pid == img->root && fd < 3) {
		*ret = fd;
		return 0;
	}
	for (int s = 0; s < 3; s++) {
		if ((r = same_file(img->root, s, t->pid, fd, &same, err)) < 0)
			return r;
		if (same) {
			*ret = s;
			return 0;
		}
	}
	return 0;
}

/* The open files dumped so far, one entry per object (its first fd), in a
 * search tree ordered by kcmp: finding an fd's object takes O(log n) kcmp
 * calls where comparing it with every earlier fd took O(n). Fds of external
 * stdio are not in it: a slot is the caller's whatever else shares it. */
struct cd_dump_tree {
	void *root; /* tsearch tree of struct open_file */
	int next_obj;
	cd_err *err; /* of the lookup under way, and its result */
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
	free(tree);
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

/* Whether pid holds the pipe or FIFO st among its fds. */
static bool holds_pipe(pid_t pid, const struct stat *st)
{
	char path[64];
	struct dirent *de;
	struct stat fst;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	_cleanup_closedir_ DIR *dir = opendir(path);
	while (dir && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, atoi(de->d_name));
		if (stat(path, &fst) == 0 && S_ISFIFO(fst.st_mode) && fst.st_ino == st->st_ino &&
		    fst.st_dev == st->st_dev)
			return true;
	}
	return false;
}

/* A process outside the tree (and not us) that holds the pipe st: 0 when
 * none. A scan of every process's fds, once per pipe of the tree. */
static pid_t outside_holder(const struct cd_image *img, const struct stat *st)
{
	_cleanup_closedir_ DIR *proc = opendir("/proc");
	struct dirent *de;

	while (proc && (de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid() ||
		    cd_image_task((struct cd_image *)img, (pid_t)pid))
			continue;
		if (holds_pipe((pid_t)pid, st))
			return (pid_t)pid;
	}
	return 0;
}

/* A pipe leads outside the tree when another process holds it: after a
 * restore the tree would have a new pipe that process knows nothing of, so
 * the dump refuses it. A FIFO reconnects by its path and is let through,
 * unless data is unread in it: that stays in the kernel as long as the
 * outside holder keeps the FIFO open, and the restore would add it again. */
static int check_outside(const struct cd_image *img, const struct cd_fd *d, const struct stat *st,
                         pid_t pid, const char *link, const struct cd_pipe *p, cd_err *err)
{
	pid_t holder = outside_holder(img, st);
	_cleanup_free_ char *comm = NULL;
	size_t len;

	if (!holder || (d->kind == CD_FD_FIFO && p->len == 0))
		return 0;
	if (cd_proc_read_file(holder, "comm", &comm, &len, &(cd_err){0}) == 0 && len > 0 &&
	    comm[len - 1] == '\n')
		comm[len - 1] = '\0';
	if (d->kind == CD_FD_FIFO)
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d: fd %d (FIFO %s): %zu unread bytes, and pid %d (%s) outside "
		    "the tree holds it: the data would be there twice after a restore "
		    "(dump once the FIFO is drained)",
		    pid, d->fd, link, p->len, holder, comm ? comm : "?");
	return cd_err_set(err, EOPNOTSUPP,
	                  "pid %d: fd %d (%s): pid %d (%s) outside the tree holds this pipe: a "
	                  "restored pipe cannot be connected to it. Dump the tree that holds both "
	                  "ends%s",
	                  pid, d->fd, link, holder, comm ? comm : "?",
	                  d->std >= 0 ? ", or give the root's stdio to the restore: run it as a "
	                                "job (cedana run) or dump with --external-stdio, then "
	                                "restore with --out or --attach"
	                              : "");
}

static int add_pipe(struct cd_image *img, const struct cd_fd *d, const struct stat *st, pid_t pid,
                    const char *link, cd_err *err)
{
	int r;

	for (size_t i = 0; i < img->npipes; i++)
		if (img->pipes[i].id == (int64_t)st->st_ino)
			return 0;
	struct cd_pipe *np = realloc(img->pipes, (img->npipes + 1) * sizeof(*np));
	if (!np)
		return cd_err_set(err, ENOMEM, "out of memory");
	img->pipes = np;
	struct cd_pipe *p = &img->pipes[img->npipes++];
	memset(p, 0, sizeof(*p));
	p->id = (int64_t)st->st_ino;
	if ((r = peek_pipe(pid, d->fd, p, err)) < 0)
		return r;
	return check_outside(img, d, st, pid, link, p, err);
}

static bool image_has_group(const struct cd_image *img, pid_t pgid)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (img->tasks[i].pgid == pgid)
			return true;
	return false;
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
	if (group ? !image_has_group(ctx->img, own.pid) : !cd_image_task(ctx->img, own.pid))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): its SIGIO owner, %s %d, is not in the "
		                  "checkpoint",
		                  t->pid, d->fd, link, group ? "process group" : "pid", own.pid);
	return 0;
}

static int dump_fd(struct cd_dump_ctx *ctx, struct cd_task *t, int fd, cd_err *err)
{
	char name[64];
	_cleanup_free_ char *link = NULL;
	struct cd_proc_fdinfo fi;
	struct stat st;
	struct cd_fd *d = &t->fds[t->nfds];
	bool external = false, new_obj = false;
	int r;

	snprintf(name, sizeof(name), "fd/%d", fd);
	if ((r = cd_proc_readlink(t->pid, name, &link, err)) < 0)
		return r;
	snprintf(name, sizeof(name), "/proc/%d/fd/%d", t->pid, fd);
	if (stat(name, &st) < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d (%s): stat", t->pid, fd, link);
	if ((r = cd_proc_fdinfo(t->pid, fd, &fi, err)) < 0)
		return r;
	memset(d, 0, sizeof(*d));
	d->fd = fd;
	d->flags = fi.flags;
	d->pos = fi.pos;
	if ((r = std_slot(ctx->img, t, fd, &d->std, err)) < 0 ||
	    (d->std >= 0 &&
	     (r = external_slot(ctx->img, ctx->external_stdio, d->std, &external, err)) < 0))
		return r;
	if (external) {
		/* ids 0..2 are the root's external stdio, one per slot */
		d->obj = d->std;
		d->kind = CD_FD_STDIO;
		t->nfds++;
		return 0;
	}
	if ((r = find_obj(ctx->tree, t->pid, fd, &d->obj, &new_obj, err)) < 0)
		return r;
	if ((r = classify_fd(t->pid, fd, link, &st, d, err)) < 0 ||
	    (r = classify_proc(ctx->img, t->pid, fd, link, d, new_obj, err)) < 0)
		return r;
	if (d->kind != CD_FD_PATH && (r = dump_fown(ctx, t, d, link, err)) < 0)
		return r;
	if (d->kind == CD_FD_PIPE || d->kind == CD_FD_FIFO) {
		d->writer = (fi.flags & O_ACCMODE) == O_WRONLY;
		if ((r = add_pipe(ctx->img, d, &st, t->pid, link, err)) < 0)
			return r;
		/* the pipe's id travels in pos: pipes have no position */
		d->pos = st.st_ino;
	}
	if (d->kind != CD_FD_PIPE && !(d->path = strdup(link)))
		return cd_err_set(err, ENOMEM, "out of memory");
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
static int set_flags_in(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
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

/* A /proc file of a task of the image, opened by the task at its number. */
static int reopen_proc(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	size_t len = strlen(d->path) + 1;
	int flags = d->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_ASYNC);
	long fd, ignored;
	int r;

	if (len > ctx->data_len)
		return cd_err_set(err, ENAMETOOLONG, "path %s", d->path);
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, d->path, len, err)) < 0 ||
	    (r = cd_call_ok(ctx->inj, d->path, SYS_openat, (uint64_t)AT_FDCWD, ctx->data,
	                    (uint64_t)flags, 0, 0, 0, &fd, err)) < 0)
		return r;
	if (fd != d->fd) {
		r = cd_call_ok(ctx->inj, "dup3", SYS_dup3, (uint64_t)fd, (uint64_t)d->fd,
		               (uint64_t)(d->flags & O_CLOEXEC), 0, 0, 0, &ignored, err);
		cd_call(ctx->inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err);
		if (r < 0)
			return r;
	}
	if (d->pos && (r = cd_call_ok(ctx->inj, "lseek", SYS_lseek, (uint64_t)d->fd, d->pos,
	                              SEEK_SET, 0, 0, 0, &ignored, err)) < 0)
		return r;
	return set_flags_in(ctx, d, err);
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
	return d->kind != CD_FD_STDIO && d->kind != CD_FD_PATH && !cd_files_replaced(ctx->objs, d);
}

/* Runs after the credentials: the /proc files are opened, and the SIGIO
 * owner set (the kernel keeps the setter's credentials for the signal), as
 * the task itself. */
static int files_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	int r = 0;

	for (size_t j = 0; r == 0 && j < t->nfds; j++) {
		const struct cd_fd *d = &t->fds[j];
		if (d->kind == CD_FD_PROC && !cd_files_replaced(ctx->objs, d))
			r = reopen_proc(ctx, d, err);
		else if (r == 0 && (d->flags & O_ASYNC) && own_object(ctx, d))
			r = set_flags_in(ctx, d, err);
		if (r == 0 && own_object(ctx, d))
			r = restore_fown(ctx, d, err);
		if (r < 0)
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

static bool is_terminal(const struct cd_fd *d)
{
	return d->kind == CD_FD_CHR && d->path &&
	       (!strncmp(d->path, "/dev/pts/", 9) || !strncmp(d->path, "/dev/tty", 8) ||
	        !strcmp(d->path, "/dev/console"));
}

/* Slot s of the root, recorded as a terminal: under --shell-job that is the
 * shell's terminal, which the restore replaces with the caller's. */
static bool slot_is_terminal(const struct cd_image *img, int s)
{
	const struct cd_task *root = cd_image_task((struct cd_image *)img, img->root);

	for (size_t j = 0; root && j < root->nfds; j++)
		if (root->fds[j].fd == s)
			return is_terminal(&root->fds[j]);
	return false;
}

/* The one place that decides which std slot is replaced and by what. */
void cd_stdio_plan_make(const struct cd_image *img, const struct cd_restore_opts *opts,
                        struct cd_stdio_plan *ret)
{
	for (int s = 0; s < 3; s++) {
		int given = opts->stdio_fd[s], own = given >= 0 ? given : s;
		/* before version 4 every slot was the caller's */
		if (opts->version < 4) {
			ret->obj[s] = ret->ext[s] = own;
			continue;
		}
		ret->ext[s] = own;
		if (img->shell_job && slot_is_terminal(img, s))
			ret->obj[s] = own;
		else
			ret->obj[s] = (opts->stdio_external_only & (1u << s)) ? -1 : given;
	}
}

static int replacement(const struct cd_stdio_plan *plan, const struct cd_fd *d)
{
	if (d->std < 0)
		return -1;
	return d->kind == CD_FD_STDIO ? plan->ext[d->std] : plan->obj[d->std];
}

bool cd_files_replaced(const struct cd_file_objs *objs, const struct cd_fd *d)
{
	return replacement(&objs->plan, d) >= 0;
}

/* Sets the status flags the open did not (any for a pipe end), and refuses
 * an open file that does not take them. O_ASYNC waits for files_restore:
 * the kernel records the fd number it was set through (si_fd). */
static int set_flags(int fd, const struct cd_fd *d, cd_err *err)
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

static int open_path_obj(const struct cd_fd *d, cd_err *err)
{
	int flags = (d->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) | O_NOCTTY;

	if (d->kind == CD_FD_PATH)
		flags = d->flags & (O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int fd = open(d->path, flags);
	int r;

	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", d->path);
	if (d->kind == CD_FD_PATH)
		return TAKE_FD(fd);
	if (d->kind == CD_FD_REG && lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		return cd_err_sys(err, errno, "seek %s", d->path);
	if ((r = set_flags(fd, d, err)) < 0)
		return cd_err_wrap(err, "%s", d->path);
	return TAKE_FD(fd);
}

static int fill_pipe(int wfd, const struct cd_pipe *p, cd_err *err)
{
	size_t off = 0;

	if (fcntl(wfd, F_SETPIPE_SZ, (int)p->size) < 0)
		return cd_err_sys(err, errno, "set pipe size %u", p->size);
	if (fcntl(wfd, F_GETPIPE_SZ) != (int)p->size)
		return cd_err_set(err, EINVAL, "pipe size %u came back as %d", p->size,
		                  fcntl(wfd, F_GETPIPE_SZ));
	while (off < p->len) {
		ssize_t n = write(wfd, p->data + off, p->len - off);
		if (n < 0)
			return cd_err_sys(err, errno, "refill pipe");
		off += (size_t)n;
	}
	return 0;
}

static const struct cd_pipe *find_pipe(const struct cd_image *img, uint64_t id)
{
	for (size_t i = 0; i < img->npipes; i++)
		if ((uint64_t)img->pipes[i].id == id)
			return &img->pipes[i];
	return NULL;
}

/* A pipe end: both ends are created once per pipe, on first use. */
static int open_pipe_obj(const struct cd_image *img, const struct cd_fd *d, int pipes[][2],
                         unsigned char *given, cd_err *err)
{
	const struct cd_pipe *p = find_pipe(img, d->pos);
	size_t idx = (size_t)(p - img->pipes);
	int r;

	if (!p)
		return cd_err_set(err, EINVAL, "fd %d: unknown pipe %" PRIu64, d->fd, d->pos);
	if (pipes[idx][0] < 0) {
		if (d->kind == CD_FD_FIFO) {
			/* a read-write holder keeps the FIFO open without blocking */
			pipes[idx][1] = open(d->path, O_RDWR | O_CLOEXEC);
			pipes[idx][0] = pipes[idx][1] < 0 ? -1 : dup(pipes[idx][1]);
			if (pipes[idx][1] < 0)
				return cd_err_sys(err, errno, "open fifo %s", d->path);
		} else if (pipe2(pipes[idx], 0) < 0) {
			return cd_err_sys(err, errno, "pipe");
		}
		if ((r = fill_pipe(pipes[idx][1], p, err)) < 0)
			return r;
	}
	if (d->kind == CD_FD_FIFO)
		return open_path_obj(d, err);
	/* the first open file of an end is the pipe's own; another one (the
	 * end reopened through /proc) has flags of its own, so is opened anew */
	int end = d->writer ? 1 : 0;
	_cleanup_close_ int fd = -1;
	if (!(given[idx] & (1 << end))) {
		given[idx] |= (unsigned char)(1 << end);
		fd = dup(pipes[idx][end]);
	} else {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", pipes[idx][end]);
		fd = open(path, (end ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	}
	if (fd < 0)
		return cd_err_sys(err, errno, "dup pipe");
	if ((r = set_flags(fd, d, err)) < 0)
		return cd_err_wrap(err, "pipe");
	return TAKE_FD(fd);
}

static int open_obj(const struct cd_image *img, const struct cd_fd *d, int pipes[][2],
                    unsigned char *given, cd_err *err)
{
	switch (d->kind) {
	case CD_FD_PIPE:
	case CD_FD_FIFO:
		return open_pipe_obj(img, d, pipes, given, err);
	default:
		return open_path_obj(d, err);
	}
}

int cd_files_prepare(const struct cd_image *img, const struct cd_stdio_plan *plan,
                     struct cd_file_objs **ret, cd_err *err)
{
	_cleanup_free_ struct cd_file_objs *objs = calloc(1, sizeof(*objs));
	_cleanup_free_ int(*pipes)[2] = calloc(img->npipes + 1, sizeof(*pipes));
	_cleanup_free_ unsigned char *given = calloc(img->npipes + 1, 1);
	int r = 0;

	if (!objs || !pipes || !given)
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
	for (size_t i = 0; i < img->npipes; i++)
		pipes[i][0] = pipes[i][1] = -1;
	for (size_t i = 0; i < img->ntasks && r >= 0; i++) {
		const struct cd_task *t = &img->tasks[i];
		for (size_t j = 0; j < t->nfds && r >= 0; j++) {
			const struct cd_fd *d = &t->fds[j];
			/* a /proc file is opened by its task (files_restore); a
			 * replaced fd takes the caller's */
			if (d->kind == CD_FD_STDIO || d->kind == CD_FD_PROC ||
			    replacement(plan, d) >= 0 || objs->fd[d->obj] >= 0)
				continue;
			r = open_obj(img, d, pipes, given, err);
			if (r < 0)
				r = cd_err_wrap(err, "pid %d: fd %d", t->pid, d->fd);
			else
				objs->fd[d->obj] = r;
		}
	}
	for (size_t i = 0; i < img->npipes; i++) {
		if (pipes[i][0] >= 0)
			close(pipes[i][0]);
		if (pipes[i][1] >= 0)
			close(pipes[i][1]);
	}
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
		int src = replacement(&objs->plan, &t->fds[j]);
		high[j] = -1;
		if (t->fds[j].kind == CD_FD_PROC && src < 0)
			continue;
		high[j] = fcntl(src >= 0 ? src : objs->fd[t->fds[j].obj], F_DUPFD, base);
		if (high[j] < 0)
			return cd_err_sys(err, errno, "pid %d: fd %d: dup", t->pid, t->fds[j].fd);
	}
	int keep = fcntl(*keep_fd, F_DUPFD_CLOEXEC, base);
	if (keep < 0)
		return cd_err_sys(err, errno, "dup status pipe");
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
