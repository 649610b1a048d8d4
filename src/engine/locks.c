/* File locks: POSIX (fcntl F_SETLK, owned by the process), OFD (F_OFD_SETLK)
 * and flock (both owned by the open file description, which tasks and fds
 * may share). The dump reads the "lock:" lines of each fd's fdinfo (a lock
 * shows on the fds of the open file it was set through) and refuses any
 * other kind (leases, delegations) and a lock of the tree that no fd shows
 * (held through a mapping, or in a shared fd table). The restore sets each
 * lock again, by injected calls in the task that records it, once the fds
 * exist; a lock that another process took meanwhile fails the restore with
 * that process named. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

/* One lock as fdinfo and /proc/locks show it, after the "N: " number:
 * "POSIX  ADVISORY  WRITE 42 fe:00:1234 0 EOF". */
struct lock_line {
	char kind[16], mode[16], type[16];
	int pid;
	unsigned maj, min;
	uint64_t ino;
	int64_t start;
	char end[24];
};

static const char *const kind_names[CD_LOCK_KIND_MAX] = {
    [CD_LOCK_POSIX] = "POSIX", [CD_LOCK_OFD] = "OFDLCK", [CD_LOCK_FLOCK] = "FLOCK"};

/* The text after "N: ", or NULL for a line that is no granted lock (a
 * waiter, "N: -> ...", is blocked in a call the restore makes again). */
static const char *lock_body(const char *s)
{
	const char *p = strchr(s, ':');

	if (!p || p[1] != ' ')
		return NULL;
	p += 2;
	while (*p == ' ')
		p++;
	return strncmp(p, "->", 2) ? p : NULL;
}

static bool parse_line(const char *body, struct lock_line *l)
{
	return sscanf(body, "%15s %15s %15s %d %x:%x:%" SCNu64 " %" SCNd64 " %23s", l->kind,
	              l->mode, l->type, &l->pid, &l->maj, &l->min, &l->ino, &l->start, l->end) == 9;
}

static int kind_of(const char *name)
{
	for (int k = 0; k < CD_LOCK_KIND_MAX; k++)
		if (!strcmp(name, kind_names[k]))
			return k;
	return -1;
}

/* The lock to set again, or a refusal naming what it is. */
static int to_lock(const struct cd_task *t, const struct cd_fd *d, const char *body,
                   struct cd_lock *out, cd_err *err)
{
	struct lock_line l;
	int64_t end;
	char *rest;

	if (!parse_line(body, &l))
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): unrecognised lock \"%s\"",
		                  t->pid, d->fd, d->path ? d->path : "?", body);
	out->kind = kind_of(l.kind);
	if (out->kind < 0 || strcmp(l.mode, "ADVISORY") ||
	    (strcmp(l.type, "READ") && strcmp(l.type, "WRITE")))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): a %s %s %s lock is not supported (leases "
		                  "and delegations are not restored)",
		                  t->pid, d->fd, d->path ? d->path : "?", l.kind, l.mode, l.type);
	if (d->kind != CD_FD_REG && d->kind != CD_FD_DIR)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): a %s lock on a file that is not reopened by "
		                  "path is not supported",
		                  t->pid, d->fd, d->path ? d->path : "?", l.kind);
	/* a POSIX lock is the setter's; in another task's fdinfo it is held
	 * through an fd table the two share */
	if (out->kind == CD_LOCK_POSIX && l.pid != t->pid)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): a POSIX lock of pid %d in a shared fd table "
		                  "is not supported",
		                  t->pid, d->fd, d->path, l.pid);
	out->fd = d->fd;
	out->type = strcmp(l.type, "WRITE") ? F_RDLCK : F_WRLCK;
	out->start = l.start;
	if (!strcmp(l.end, "EOF")) {
		out->len = 0;
		return 0;
	}
	errno = 0;
	end = strtoll(l.end, &rest, 10);
	if (errno || *rest || end < l.start || end == INT64_MAX)
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): unrecognised lock \"%s\"",
		                  t->pid, d->fd, d->path, body);
	out->len = end - l.start + 1;
	return 0;
}

static bool same_lock(const struct cd_lock *a, int a_obj, const struct cd_lock *b, int b_obj)
{
	return a_obj == b_obj && a->kind == b->kind && a->type == b->type && a->start == b->start &&
	       a->len == b->len;
}

static int fd_obj(const struct cd_task *t, int fd)
{
	for (size_t i = 0; i < t->nfds; i++)
		if (t->fds[i].fd == fd)
			return t->fds[i].obj;
	return -1;
}

/* Whether some task of the image records l (on open file obj) already. */
static bool recorded(const struct cd_image *img, const struct cd_lock *l, int obj)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *o = &img->tasks[i];
		for (size_t j = 0; j < o->nlocks; j++)
			if (same_lock(&o->locks[j], fd_obj(o, o->locks[j].fd), l, obj))
				return true;
	}
	return false;
}

/* Whether pid holds the open file behind t's fd at any of its fds: 1 or 0,
 * or -1 when /proc or kcmp fails (an error, never "does not hold"). */
static int holds_file(pid_t pid, const struct cd_task *t, int fd, cd_err *err)
{
	char path[64];
	struct dirent *de;
	int order, r;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	_cleanup_closedir_ DIR *dir = opendir(path);
	if (!dir)
		return cd_err_sys(err, errno, "open %s", path);
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if ((r = cd_kcmp(t->pid, (unsigned long)fd, pid, strtoul(de->d_name, NULL, 10),
		                 KCMP_FILE, &order, err)) < 0)
			return cd_err_wrap(err, "pid %d: fd %d: is it held by pid %d", t->pid, fd,
			                   pid);
		if (order == 0)
			return 1;
	}
	return 0;
}

/* An OFD or flock lock is the open file's, shown in the fdinfo of every
 * task holding it: it is recorded once, by the task that set it when that
 * task still holds the file (so /proc/locks names the same pid), else by
 * the first task that shows it. 1 or 0, or -1 on an error. */
static int records_it(const struct cd_dump_ctx *ctx, const struct cd_task *t,
                      const struct cd_lock *l, int obj, int setter, cd_err *err)
{
	int held;

	if (l->kind == CD_LOCK_POSIX)
		return 1;
	if (recorded(ctx->img, l, obj))
		return 0;
	if (setter <= 0 || setter == t->pid)
		return 1;
	const struct cd_task *s = cd_image_task(ctx->img, setter);
	if (!s || s->zombie)
		return 1;
	if ((held = holds_file(setter, t, l->fd, err)) < 0)
		return held;
	return !held;
}

static int add_lock(struct cd_task *t, size_t *cap, const struct cd_lock *l, cd_err *err)
{
	if (t->nlocks == CD_MAX_LOCKS)
		return cd_err_set(err, E2BIG, "pid %d: more than %u file locks", t->pid,
		                  CD_MAX_LOCKS);
	if (t->nlocks == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct cd_lock *n = realloc(t->locks, ncap * sizeof(*n));
		if (!n)
			return cd_err_set(err, ENOMEM, "out of memory");
		t->locks = n;
		*cap = ncap;
	}
	t->locks[t->nlocks++] = *l;
	return 0;
}

/* The lock bodies every fdinfo of the tree's tasks shows, one per line,
 * for the check that each lock of the tree is held through an fd. */
struct seen {
	char *buf;
	size_t len, cap;
};

static int seen_add(struct seen *s, const char *body, cd_err *err)
{
	size_t n = strlen(body);

	if (s->len + n + 2 > s->cap) {
		size_t ncap = (s->cap + n + 2) * 2;
		char *b = realloc(s->buf, ncap);
		if (!b)
			return cd_err_set(err, ENOMEM, "out of memory");
		s->buf = b;
		s->cap = ncap;
	}
	memcpy(s->buf + s->len, body, n);
	s->len += n;
	s->buf[s->len++] = '\n';
	s->buf[s->len] = 0;
	return 0;
}

static bool seen_has(const struct seen *s, const char *body)
{
	size_t n = strlen(body);

	for (const char *p = s->buf; p && *p;) {
		const char *nl = strchr(p, '\n');
		if ((size_t)(nl - p) == n && !memcmp(p, body, n))
			return true;
		p = nl + 1;
	}
	return false;
}

/* Calls fn for each lock line in /proc/pid/fdinfo/fd. */
static int fdinfo_locks(pid_t pid, int fd, int (*fn)(void *arg, const char *body, cd_err *err),
                        void *arg, cd_err *err)
{
	char path[64], line[512];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return cd_err_sys(err, errno, "open %s", path);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, "lock:", 5))
			continue;
		const char *body = lock_body(line + 5);
		if (body && (r = fn(arg, body, err)) < 0)
			return r;
	}
	return 0;
}

struct fd_scan {
	struct cd_dump_ctx *ctx;
	struct cd_task *t;
	const struct cd_fd *d;
	size_t *cap;
};

static int scan_one(void *arg, const char *body, cd_err *err)
{
	struct fd_scan *s = arg;
	struct cd_lock l = {0};
	struct lock_line line = {0};
	int r;

	if ((r = to_lock(s->t, s->d, body, &l, err)) < 0)
		return r;
	if (!parse_line(body, &line)) /* to_lock parsed it already */
		return cd_err_set(err, EINVAL, "unrecognised lock \"%s\"", body);
	for (size_t i = 0; i < s->t->nlocks; i++)
		if (same_lock(&s->t->locks[i], fd_obj(s->t, s->t->locks[i].fd), &l, s->d->obj))
			return 0; /* the same open file at another fd */
	if ((r = records_it(s->ctx, s->t, &l, s->d->obj, line.pid, err)) <= 0)
		return r;
	return add_lock(s->t, s->cap, &l, err);
}

static int seen_one(void *arg, const char *body, cd_err *err)
{
	return seen_add(arg, body, err);
}

/* Every lock line in the fdinfo of the tree's seized tasks. */
static int tree_seen(const struct cd_image *img, struct seen *s, cd_err *err)
{
	char path[64];
	struct dirent *de;
	int r;

	for (size_t i = 0; i < img->ntasks; i++) {
		if (img->tasks[i].zombie)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo", img->tasks[i].pid);
		_cleanup_closedir_ DIR *dir = opendir(path);
		if (!dir)
			return cd_err_sys(err, errno, "open %s", path);
		while ((de = readdir(dir)))
			if (de->d_name[0] != '.' &&
			    (r = fdinfo_locks(img->tasks[i].pid, atoi(de->d_name), seen_one, s,
			                      err)) < 0)
				return r;
	}
	return 0;
}

/* Whether the lock is on a file t maps. */
static bool on_mapped_file(const struct cd_task *t, const struct lock_line *l)
{
	for (size_t i = 0; i < t->nvmas; i++)
		if (t->vmas[i].path && t->vmas[i].ino == l->ino &&
		    t->vmas[i].dev == makedev(l->maj, l->min))
			return true;
	return false;
}

/* A lock of t that no fd of the tree shows: POSIX and flock locks name
 * their setter; an OFD lock does not, so one on a file t maps is taken to
 * be held through the mapping (the open file a mapping keeps). */
static bool unseen_lock_of(const struct cd_task *t, const struct lock_line *l)
{
	int kind = kind_of(l->kind);

	if (kind == CD_LOCK_POSIX || kind == CD_LOCK_FLOCK)
		return l->pid == t->pid;
	if (kind == CD_LOCK_OFD)
		return on_mapped_file(t, l);
	return l->pid == t->pid; /* a lease or other kind: refused below */
}

static int check_all_seen(struct cd_dump_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/locks", "re");
	struct seen s = {0};
	char line[512];
	int r = 0;

	if (!f)
		return cd_err_sys(err, errno, "open /proc/locks");
	while (r == 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		const char *body = lock_body(line);
		struct lock_line l;
		if (!body || !parse_line(body, &l) || !unseen_lock_of(t, &l))
			continue;
		if (!s.buf && (r = tree_seen(ctx->img, &s, err)) < 0)
			break;
		if (!seen_has(&s, body))
			r = cd_err_set(err, EOPNOTSUPP,
			               "pid %d: its %s %s lock on file %02x:%02x:%" PRIu64
			               " is held through no fd of the tree (a lock held through a "
			               "mapping is not supported)",
			               t->pid, l.kind, l.type, l.maj, l.min, l.ino);
	}
	free(s.buf);
	return r;
}

static int locks_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	size_t cap = 0;
	int r;

	for (size_t i = 0; i < t->nfds; i++) {
		struct fd_scan s = {.ctx = ctx, .t = t, .d = &t->fds[i], .cap = &cap};
		if ((r = fdinfo_locks(t->pid, t->fds[i].fd, scan_one, &s, err)) < 0)
			return r;
	}
	return check_all_seen(ctx, t, err);
}

/* ---- restore ---- */

/* After a refused lock: who holds a lock on that file (/proc/locks). */
static void name_holder(pid_t pid, int fd, char *buf, size_t len)
{
	char path[64], line[512];
	struct stat st;
	struct lock_line l;

	snprintf(buf, len, "another process");
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	_cleanup_fclose_ FILE *f = fopen("/proc/locks", "re");
	if (stat(path, &st) < 0 || !f)
		return;
	while (fgets(line, sizeof(line), f)) {
		const char *body = lock_body(line);
		if (!body || !parse_line(body, &l) || l.ino != st.st_ino ||
		    makedev(l.maj, l.min) != st.st_dev || l.pid == pid)
			continue;
		if (l.pid > 0)
			snprintf(buf, len, "pid %d (its %s %s lock)", l.pid, l.kind, l.type);
		else
			snprintf(buf, len, "an %s %s lock of another open file", l.kind, l.type);
		return;
	}
}

static int set_lock(struct cd_restore_ctx *ctx, const struct cd_task *t, const struct cd_lock *l,
                    cd_err *err)
{
	struct flock fl = {
	    .l_type = (short)l->type, .l_whence = SEEK_SET, .l_start = l->start, .l_len = l->len};
	long ret = 0;
	int r;

	if (l->kind == CD_LOCK_FLOCK)
		r = cd_call(ctx->inj, SYS_flock, (uint64_t)l->fd,
		            (l->type == F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB, 0, 0, 0, 0, &ret,
		            err);
	else if ((r = cd_inject_write_mem(ctx->inj, ctx->data, &fl, sizeof(fl), err)) == 0)
		r = cd_call(ctx->inj, SYS_fcntl, (uint64_t)l->fd,
		            l->kind == CD_LOCK_OFD ? F_OFD_SETLK : F_SETLK, ctx->data, 0, 0, 0,
		            &ret, err);
	if (r < 0)
		return r;
	if (ret == -EAGAIN || ret == -EACCES) {
		char who[128];
		name_holder(t->pid, l->fd, who, sizeof(who));
		return cd_err_set(err, EBUSY, "conflicts with %s", who);
	}
	if (ret < 0)
		return cd_err_sys(err, (int)-ret, "set lock");
	return 0;
}

static int locks_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	for (size_t i = 0; i < t->nlocks; i++) {
		const struct cd_lock *l = &t->locks[i];
		int r = set_lock(ctx, t, l, err);
		if (r < 0)
			return cd_err_wrap(err, "fd %d: %s %s lock %" PRId64 "+%" PRId64, l->fd,
			                   kind_names[l->kind],
			                   l->type == F_WRLCK ? "WRITE" : "READ", l->start, l->len);
	}
	return 0;
}

const struct cd_module cd_mod_locks = {
    .name = "locks", .dump = locks_dump, .restore = locks_restore};
