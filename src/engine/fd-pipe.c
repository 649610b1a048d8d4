/* Pipes (CD_FD_PIPE) and FIFOs (CD_FD_FIFO). The dump stores the unread
 * data of each pipe once (struct cd_pipe, by the pipe's inode number, which
 * the fd's pos carries: pipes have no position), copied without consuming
 * it, and refuses a pipe a process outside the tree holds. The controller
 * makes both ends of each pipe once (a FIFO through its path), refills the
 * data and hands out the ends. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/image-fields.h"
#include "engine/internal.h"
#include "shared/cleanup.h"

/* ---- dump ---- */

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

/* A pipe leads outside the tree when another process holds it: after a
 * restore the tree would have a new pipe that process knows nothing of, so
 * the dump refuses it. A FIFO reconnects by its path and is let through,
 * unless data is unread in it: that stays in the kernel as long as the
 * outside holder keeps the FIFO open, and the restore would add it again. */
static int check_outside(const struct cd_fd_dump *x, const struct cd_fd *d, const struct cd_pipe *p,
                         cd_err *err)
{
	pid_t pid = x->t->pid, holder = 0;
	const char *link = x->link;
	_cleanup_free_ char *comm = NULL;
	size_t len;
	int r;

	if (d->kind == CD_FD_FIFO && p->len == 0)
		return 0;
	if ((r = cd_outside_holder(cd_dump_tree_holders(x->ctx->tree), x->ctx->img, x->st, &holder,
	                           err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", pid, d->fd, link);
	if (!holder)
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

static int add_pipe(const struct cd_fd_dump *x, const struct cd_fd *d, cd_err *err)
{
	struct cd_image *img = x->ctx->img;
	const struct stat *st = x->st;
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
	if ((r = peek_pipe(x->t->pid, d->fd, p, err)) < 0)
		return r;
	return check_outside(x, d, p, err);
}

static bool pipe_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return S_ISFIFO(x->st->st_mode) && x->link[0] != '/';
}

static bool fifo_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return S_ISFIFO(x->st->st_mode) && x->link[0] == '/';
}

static int pipe_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	int r;

	d->writer = (d->flags & O_ACCMODE) == O_WRONLY;
	if ((r = add_pipe(x, d, err)) < 0)
		return r;
	/* the pipe's id travels in pos: pipes have no position */
	d->pos = x->st->st_ino;
	return 0;
}

/* ---- restore, in the controller ---- */

/* Per pipe of the image: both ends once made, and which end's first open
 * file was handed out. */
struct pipes {
	int (*end)[2];
	unsigned char *given;
	size_t n;
};

static void pipes_done(struct cd_fd_open *o)
{
	struct pipes *p = o->state[CD_FD_PIPE];

	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		if (p->end[i][0] >= 0)
			close(p->end[i][0]);
		if (p->end[i][1] >= 0)
			close(p->end[i][1]);
	}
	free(p->end);
	free(p->given);
	free(p);
	o->state[CD_FD_PIPE] = NULL;
}

static int pipes_get(struct cd_fd_open *o, struct pipes **ret, cd_err *err)
{
	struct pipes *p = o->state[CD_FD_PIPE];

	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return cd_err_set(err, ENOMEM, "out of memory");
		o->state[CD_FD_PIPE] = p;
		p->end = calloc(o->img->npipes + 1, sizeof(*p->end));
		p->given = calloc(o->img->npipes + 1, 1);
		if (!p->end || !p->given)
			return cd_err_set(err, ENOMEM, "out of memory");
		p->n = o->img->npipes;
		for (size_t i = 0; i < p->n; i++)
			p->end[i][0] = p->end[i][1] = -1;
	}
	*ret = p;
	return 0;
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

/* Both ends of pipe p, made on first use and filled with its data. */
static int make_pipe(const struct cd_fd *d, const struct cd_pipe *p, int end[2], cd_err *err)
{
	if (end[0] >= 0)
		return 0;
	if (d->kind == CD_FD_FIFO) {
		/* a read-write holder keeps the FIFO open without blocking */
		end[1] = open(d->path, O_RDWR | O_CLOEXEC);
		end[0] = end[1] < 0 ? -1 : dup(end[1]);
		if (end[1] < 0)
			return cd_err_sys(err, errno, "open fifo %s", d->path);
	} else if (pipe2(end, 0) < 0) {
		return cd_err_sys(err, errno, "pipe");
	}
	return fill_pipe(end[1], p, err);
}

/* A pipe end: the first open file of an end is the pipe's own; another one
 * (the end reopened through /proc) has flags of its own, so is opened
 * anew. A FIFO end is opened by its path. */
static int pipe_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	const struct cd_pipe *p = find_pipe(o->img, d->pos);
	struct pipes *ps = NULL;
	int r;

	if (!p)
		return cd_err_set(err, EINVAL, "fd %d: unknown pipe %" PRIu64, d->fd, d->pos);
	size_t idx = (size_t)(p - o->img->pipes);
	if ((r = pipes_get(o, &ps, err)) < 0 || (r = make_pipe(d, p, ps->end[idx], err)) < 0)
		return r;
	if (d->kind == CD_FD_FIFO)
		return cd_fd_reopen(d, err);
	int end = d->writer ? 1 : 0;
	_cleanup_close_ int fd = -1;
	if (!(ps->given[idx] & (1 << end))) {
		ps->given[idx] |= (unsigned char)(1 << end);
		fd = dup(ps->end[idx][end]);
	} else {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", ps->end[idx][end]);
		fd = open(path, (end ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	}
	if (fd < 0)
		return cd_err_sys(err, errno, "dup pipe");
	if ((r = cd_fd_set_flags(fd, d, err)) < 0)
		return cd_err_wrap(err, "pipe");
	return TAKE_FD(fd);
}

/* ---- image ---- */

/* fds find their pipe by id. */
static int pipe_check(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                      cd_err *err)
{
	if (!cd_ints_sorted_has(c->pipe_ids, c->npipes, (int64_t)d->pos))
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: field \"pos\": no pipe with id %" PRIu64, t->pid,
		                  d->fd, d->pos);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_pipe = {.kind = CD_FD_PIPE,
                                         .name = "pipe",
                                         .has_owner = true,
                                         .claims = pipe_claims,
                                         .dump = pipe_dump,
                                         .open = pipe_open,
                                         .open_done = pipes_done,
                                         .check = pipe_check};

const struct cd_fd_ops cd_fd_ops_fifo = {.kind = CD_FD_FIFO,
                                         .name = "FIFO",
                                         .has_path = true,
                                         .has_owner = true,
                                         .claims = fifo_claims,
                                         .dump = pipe_dump,
                                         .open = pipe_open,
                                         .open_done = pipes_done,
                                         .check = pipe_check};
