/* Memory: the dump records every mapping and stores the pages only the task
 * holds (anonymous pages and COW'd pages of private file mappings), zero
 * pages as runs without data; the restore has each new task premap and fill
 * its private mappings with contents before it forks (so its children
 * inherit them copy-on-write, internal.h), moves them into place by
 * injected syscalls, and maps and fills the rest by injected syscalls. Page
 * data moves in large batches through a few reused aligned buffers (see
 * DESIGN.md, "Page data"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/pageio.h"
#include "shared/cleanup.h"

#define PM_PRESENT   (1ULL << 63)
#define PM_SWAPPED   (1ULL << 62)
#define PM_FILE      (1ULL << 61)
#define PM_GUARD     (1ULL << 58) /* guard region (MADV_GUARD_INSTALL), Linux 6.14 */
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_BATCH     (64 * 1024) /* pagemap entries read per call */
#define PAGE         CD_PAGE_SIZE

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

/* ---- classification ---- */

static int classify(pid_t pid, const struct cd_proc_map *m, enum cd_vma_kind *kind, cd_err *err)
{
	const char *p = m->path;
	size_t n = strlen(p);
	bool deleted = n > 10 && !strcmp(p + n - 10, " (deleted)");

	if (cd_vdso_kind(p, kind))
		return 0;
	if (m->shared) {
		if (!strncmp(p, "/dev/zero", 9) || (!strncmp(p, "/memfd:", 7) && deleted)) {
			*kind = CD_VMA_ANON_SHARED;
			return 0;
		}
		/* a deleted file's: of its entry of the image (fd-deleted.c) */
		if (p[0] == '/' && (!deleted || cd_deleted_path(p))) {
			*kind = CD_VMA_FILE_SHARED;
			return 0;
		}
	} else {
		if (m->ino == 0 && (p[0] == 0 || p[0] == '[')) {
			*kind = CD_VMA_ANON;
			return 0;
		}
		/* a deleted file's too: of its entry of the image (fd-deleted.c);
		 * a memfd's: of the memfd an fd holds (memfd_private) */
		if (p[0] == '/' && (!deleted || cd_deleted_path(p) || !strncmp(p, "/memfd:", 7))) {
			*kind = CD_VMA_FILE;
			return 0;
		}
	}
	/* an attached SysV segment: one of the image's (cd_sysv_check_attachments) */
	if (m->shared && !strncmp(p, "/SYSV", 5)) {
		*kind = CD_VMA_SYSV_SHM;
		return 0;
	}
	/* an AIO context's ring (aio_ring_mmap): checked by aio_ring */
	if (m->shared && !strncmp(p, "/[aio]", 6)) {
		*kind = CD_VMA_AIO;
		return 0;
	}
	return cd_err_set(
	    err, EOPNOTSUPP,
	    "pid %d: mapping %" PRIx64 "-%" PRIx64 " (%s %s): unsupported mapping kind", pid,
	    m->start, m->end, m->shared ? "shared" : "private", p[0] ? p : "anonymous");
}

static bool wants_page(enum cd_vma_kind kind, uint64_t pm)
{
	switch (kind) {
	case CD_VMA_ANON:
	case CD_VMA_ANON_SHARED:
		return pm & (PM_PRESENT | PM_SWAPPED);
	case CD_VMA_FILE:
		/* present but not the file's page: copied on write */
		return (pm & PM_SWAPPED) || ((pm & PM_PRESENT) && !(pm & PM_FILE));
	default:
		return false;
	}
}

/* ---- dump ---- */

static int add_run(struct cd_vma *v, size_t *cap, uint64_t page, uint64_t n, uint8_t src,
                   cd_err *err)
{
	if (v->nruns) {
		struct cd_run *last = &v->runs[v->nruns - 1];
		if (last->src == src && last->page + last->npages == page) {
			last->npages += n;
			return 0;
		}
	}
	if (v->nruns == *cap) {
		*cap = *cap ? 2 * *cap : 8;
		struct cd_run *nr = realloc(v->runs, *cap * sizeof(*nr));
		if (!nr)
			return cd_err_set(err, ENOMEM, "out of memory");
		v->runs = nr;
	}
	v->runs[v->nruns++] = (struct cd_run){page, n, src};
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	return true;
}

/* Through /proc/PID/mem rather than process_vm_readv: the latter pins
 * pages, which makes the kernel unshare every page a parent still shares
 * copy-on-write with its child (a copy in the target per page, and more
 * memory used by a tree left running). */
static int read_task_pages(cd_inject *inj, uint64_t addr, uint8_t *dst, size_t len, bool exclusive,
                           cd_err *err)
{
	/* Pages mapped by this task alone are not copy-on-write shared:
	 * process_vm_readv copies them once, where /proc/PID/mem goes through
	 * a bounce page. */
	if (exclusive) {
		struct iovec local = {dst, len}, remote = {(void *)addr, len};
		if (process_vm_readv(cd_inject_pid(inj), &local, 1, &remote, 1, 0) == (ssize_t)len)
			return 0;
	}
	return cd_inject_read_mem(inj, addr, dst, len, err);
}

/* Reads pages from a shared memory object's file (shm_fd) when >= 0, else
 * from the task. */
static int read_pages(struct cd_dump_ctx *ctx, int shm_fd, const struct cd_vma *v, uint64_t page,
                      uint8_t *dst, size_t len, bool exclusive, cd_err *err)
{
	if (shm_fd < 0)
		return read_task_pages(ctx->inj, v->start + page * PAGE, dst, len, exclusive, err);
	for (size_t off = 0; off < len;) {
		ssize_t n =
		    pread(shm_fd, dst + off, len - off, (off_t)(v->pgoff + page * PAGE + off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cd_err_sys(err, n < 0 ? errno : EIO, "read shared memory");
		off += (size_t)n;
	}
	return 0;
}

/* Copies pages [page, page+n) of v (of its shared memory object, shm_fd)
 * into the writer, splitting zero pages off into runs without data. */
static int copy_pages(struct cd_dump_ctx *ctx, int shm_fd, struct cd_page_writer *pw,
                      struct cd_vma *v, size_t *cap, uint64_t page, uint64_t n, bool exclusive,
                      cd_err *err)
{
	while (n) {
		uint8_t *dst;
		size_t room = cd_pw_reserve(pw, &dst) / PAGE;
		uint64_t chunk = n < room ? n : room, kept = 0;
		int r = read_pages(ctx, shm_fd, v, page, dst, chunk * PAGE, exclusive, err);
		if (r < 0)
			return r;
		for (uint64_t i = 0; i < chunk; i++) {
			uint8_t *src = dst + i * PAGE;
			bool zero = page_is_zero(src);
			if (!zero) {
				if (kept != i)
					memcpy(dst + kept * PAGE, src, PAGE);
				kept++;
			}
			r = add_run(v, cap, page + i, 1, zero ? CD_RUN_ZERO : CD_RUN_DATA, err);
			if (r < 0)
				return r;
		}
		r = cd_pw_commit(pw, kept * PAGE, err);
		if (r < 0 || (r = cd_check_cancel(err)) < 0)
			return r;
		cd_progress_add(ctx->progress, chunk * PAGE);
		page += chunk;
		n -= chunk;
	}
	return 0;
}

/* Shared anonymous memory is read from its object (/proc/PID/map_files),
 * data ranges only (SEEK_DATA), so pages no task has mapped are kept too;
 * once per object range: later mappings of it get no runs and share what
 * the first one restores. */
static bool shm_dumped(const struct cd_image *img, const struct cd_task *t, const struct cd_vma *v)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *o = &img->tasks[i];
		for (size_t j = 0; j < o->nvmas; j++) {
			const struct cd_vma *w = &o->vmas[j];
			if (w == v)
				return false;
			if (w->kind == CD_VMA_ANON_SHARED && w->shmid == v->shmid &&
			    w->pgoff <= v->pgoff &&
			    w->pgoff + (w->end - w->start) >= v->pgoff + (v->end - v->start))
				return true;
		}
		if (o == t)
			break;
	}
	return false;
}

static int dump_shm_pages(struct cd_dump_ctx *ctx, pid_t pid, struct cd_page_writer *pw,
                          struct cd_vma *v, cd_err *err)
{
	char path[96];
	uint64_t len = v->end - v->start;
	size_t cap = 0;

	if (shm_dumped(ctx->img, cd_image_task(ctx->img, pid), v))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, v->start,
	         v->end);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", path);
	for (uint64_t at = 0; at < len;) {
		off_t data = lseek(fd, (off_t)(v->pgoff + at), SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0)
			return cd_err_sys(err, errno, "seek %s", path);
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return cd_err_sys(err, errno, "seek %s", path);
		uint64_t from = (uint64_t)data - v->pgoff, to = (uint64_t)hole - v->pgoff;
		if (from >= len)
			break;
		to = to < len ? to : len;
		from &= ~(PAGE - 1);
		to = (to + PAGE - 1) & ~(PAGE - 1);
		int r =
		    copy_pages(ctx, fd, pw, v, &cap, from / PAGE, (to - from) / PAGE, false, err);
		if (r < 0)
			return r;
		at = to;
	}
	return 0;
}

#define PM_PFN ((1ULL << 55) - 1)

/* Is addr inside a private anonymous mapping of the parent? hint walks the
 * parent's sorted mappings along with increasing addresses. */
static bool in_parent_anon(const struct cd_task *p, uint64_t addr, size_t *hint)
{
	while (*hint < p->nvmas && p->vmas[*hint].end <= addr)
		(*hint)++;
	return *hint < p->nvmas && p->vmas[*hint].start <= addr &&
	       p->vmas[*hint].kind == CD_VMA_ANON;
}

/* A page the child still shares copy-on-write with its parent: same
 * physical page at the same address (root sees page frame numbers). The
 * parent's image holds it. */
static bool shared_with_parent(uint64_t pm, uint64_t ppm)
{
	return (pm & PM_PRESENT) && (ppm & PM_PRESENT) && (pm & PM_PFN) &&
	       (pm & PM_PFN) == (ppm & PM_PFN);
}

struct pm_batch {
	uint64_t *pm, *ppm; /* the task's entries, the parent's (or NULL) */
	uint64_t base, cnt;
};

static int read_pagemap(int fd, uint64_t *pm, uint64_t addr, uint64_t cnt, cd_err *err)
{
	off_t off = (off_t)(addr / PAGE * sizeof(*pm));
	ssize_t got = pread(fd, pm, cnt * sizeof(*pm), off);

	if (got != (ssize_t)(cnt * sizeof(*pm)))
		return cd_err_sys(err, got < 0 ? errno : EIO, "read pagemap at %" PRIx64, addr);
	return 0;
}

/* Page i of the batch: 0 not stored, 1 own data mapped by this task
 * alone, 2 shared with the parent, 3 own data mapped by other tasks too,
 * 4 a guard region (shown as a swap entry: never read), 5 not written
 * since the previous checkpoint (dirty.c). */
static int page_class(const struct cd_dump_ctx *ctx, const struct cd_vma *v,
                      const struct pm_batch *b, uint64_t i, size_t *hint,
                      struct cd_dirty_cursor *dc)
{
	if (b->pm[i] & PM_GUARD)
		return 4;
	if (!wants_page(v->kind, b->pm[i]))
		return 0;
	if (b->ppm && shared_with_parent(b->pm[i], b->ppm[i]) &&
	    in_parent_anon(ctx->parent, v->start + (b->base + i) * PAGE, hint))
		return 2;
	if (ctx->dirty && cd_dirty_unchanged(ctx->dirty, v, v->start + (b->base + i) * PAGE, dc))
		return 5;
	return b->pm[i] & PM_EXCLUSIVE ? 1 : 3;
}

/* The pages of a mapping to copy, read out of the task a buffer at a time
 * (one process_vm_readv for up to READ_IOV ranges of pages mapped by the
 * task alone) rather than a call per range: an incremental dump's written
 * pages are many short ranges (a call per page of them cost 25 us each,
 * more than copying the page). The runs between them wait in the queue
 * too, so that the mapping's runs keep their order. */
#define READ_IOV 1024 /* IOV_MAX */
#define READ_OPS (2 * READ_IOV)

struct read_op {
	uint64_t page, n;
	uint8_t src;    /* what a run without reading is (CD_RUN_*) */
	bool read;      /* pages to copy: runs of data and zero, by content */
	bool exclusive; /* mapped by this task alone (read_task_pages) */
};

struct read_queue {
	struct read_op op[READ_OPS];
	struct iovec local[READ_IOV], remote[READ_IOV];
	size_t nop, niov;
	uint64_t pages, room; /* queued to read; room of dst, in pages */
	uint8_t *dst;         /* the writer's buffer, reserved by the first read */
};

/* The queued reads out of the task into q->dst, in queue order. */
static int queue_read(struct cd_dump_ctx *ctx, const struct cd_vma *v, struct read_queue *q,
                      cd_err *err)
{
	uint64_t at = 0, want = 0;
	size_t k = 0;
	int r;

	for (size_t i = 0; i < q->nop; i++) {
		const struct read_op *o = &q->op[i];
		if (o->read && o->exclusive) {
			q->local[k] = (struct iovec){q->dst + at * PAGE, o->n * PAGE};
			q->remote[k++] = (struct iovec){
			    (void *)(uintptr_t)(v->start + o->page * PAGE), o->n * PAGE};
			want += o->n * PAGE;
		}
		if (o->read)
			at += o->n;
	}
	bool batched = k && process_vm_readv(cd_inject_pid(ctx->inj), q->local, k, q->remote, k,
	                                     0) == (ssize_t)want;
	at = 0;
	for (size_t i = 0; i < q->nop; i++) {
		const struct read_op *o = &q->op[i];
		if (!o->read)
			continue;
		/* one at a time where the batch fell short (read_task_pages
		 * falls back on /proc/PID/mem) */
		if ((!o->exclusive || !batched) &&
		    (r = read_task_pages(ctx->inj, v->start + o->page * PAGE, q->dst + at * PAGE,
		                         o->n * PAGE, o->exclusive, err)) < 0)
			return r;
		at += o->n;
	}
	return 0;
}

/* Reads what is queued, adds the queue's runs to v in order (zero pages
 * as runs without data) and hands the data to the writer. */
static int queue_flush(struct cd_dump_ctx *ctx, struct cd_page_writer *pw, struct cd_vma *v,
                       size_t *cap, struct read_queue *q, cd_err *err)
{
	uint64_t at = 0, kept = 0;
	int r = q->pages ? queue_read(ctx, v, q, err) : 0;

	for (size_t i = 0; r >= 0 && i < q->nop; i++) {
		const struct read_op *o = &q->op[i];
		if (!o->read) {
			r = add_run(v, cap, o->page, o->n, o->src, err);
			continue;
		}
		for (uint64_t j = 0; r >= 0 && j < o->n; j++, at++) {
			uint8_t *src = q->dst + at * PAGE;
			bool zero = page_is_zero(src);
			if (!zero) {
				if (kept != at)
					memcpy(q->dst + kept * PAGE, src, PAGE);
				kept++;
			}
			r = add_run(v, cap, o->page + j, 1, zero ? CD_RUN_ZERO : CD_RUN_DATA, err);
		}
	}
	if (r < 0)
		return r;
	if (q->pages &&
	    ((r = cd_pw_commit(pw, kept * PAGE, err)) < 0 || (r = cd_check_cancel(err)) < 0))
		return r;
	cd_progress_add(ctx->progress, q->pages * PAGE);
	q->nop = q->niov = 0;
	q->pages = q->room = 0;
	return 0;
}

static int queue_op(struct cd_dump_ctx *ctx, struct cd_page_writer *pw, struct cd_vma *v,
                    size_t *cap, struct read_queue *q, const struct read_op *o, cd_err *err)
{
	int r;

	if (!o->read && !q->nop)
		return add_run(v, cap, o->page, o->n, o->src, err);
	if (q->nop == READ_OPS && (r = queue_flush(ctx, pw, v, cap, q, err)) < 0)
		return r;
	q->op[q->nop++] = *o;
	return 0;
}

/* Queues pages [page, page+n) to copy, flushing whenever the buffer or
 * the batch is full. */
static int queue_pages(struct cd_dump_ctx *ctx, struct cd_page_writer *pw, struct cd_vma *v,
                       size_t *cap, struct read_queue *q, uint64_t page, uint64_t n, bool exclusive,
                       cd_err *err)
{
	int r;

	while (n) {
		if ((q->pages && q->pages == q->room) || q->niov == READ_IOV ||
		    q->nop == READ_OPS) {
			if ((r = queue_flush(ctx, pw, v, cap, q, err)) < 0)
				return r;
		}
		if (!q->pages)
			q->room = cd_pw_reserve(pw, &q->dst) / PAGE;
		uint64_t k = n < q->room - q->pages ? n : q->room - q->pages;
		q->op[q->nop++] = (struct read_op){page, k, CD_RUN_DATA, true, exclusive};
		q->niov += exclusive;
		q->pages += k;
		page += k;
		n -= k;
	}
	return 0;
}

static int dump_batch(struct cd_dump_ctx *ctx, struct cd_page_writer *pw, struct cd_vma *v,
                      size_t *cap, struct read_queue *q, const struct pm_batch *b, cd_err *err)
{
	struct cd_dirty_cursor dc = {0};
	size_t hint = 0;
	int r;

	for (uint64_t i = 0; i < b->cnt;) {
		int cls = page_class(ctx, v, b, i, &hint, &dc);
		uint64_t j = i + 1;
		while (j < b->cnt && page_class(ctx, v, b, j, &hint, &dc) == cls)
			j++;
		/* the run without data each class gives (0: not stored) */
		static const uint8_t run_src[] = {
		    [2] = CD_RUN_PARENT, [4] = CD_RUN_GUARD, [5] = CD_RUN_PREV};
		r = 0;
		if ((cls == 1 || cls == 3) && ctx->count)
			*ctx->count += (j - i) * PAGE;
		else if (cls == 1 || cls == 3)
			r = queue_pages(ctx, pw, v, cap, q, b->base + i, j - i, cls == 1, err);
		else if (run_src[cls] && !ctx->count)
			r = queue_op(
			    ctx, pw, v, cap, q,
			    &(struct read_op){b->base + i, j - i, run_src[cls], false, false}, err);
		if (cls == 5 && !ctx->count)
			ctx->dirty_state->used = true;
		if (r < 0)
			return r;
		i = j;
	}
	return 0;
}

/* The pagemap entries of a batch. A tracked mapping of a task with no
 * parent in the tree (so no page frames to compare) is looked at with
 * PAGEMAP_SCAN instead: the dump wants only its present and swapped pages
 * there (the written ones are known, the others are the parent image's),
 * and reading pagemap costs a look at every page. Its pages are taken as
 * mapped by the task alone unless it has children in the tree: a page
 * written since the previous dump was copied for it, and one shared with
 * a process outside the tree is only copied once more by
 * process_vm_readv (read_task_pages). */
static int batch_pagemap(struct cd_dump_ctx *ctx, int pm_fd, const struct cd_vma *v,
                         struct pm_batch *b, cd_err *err)
{
	uint64_t addr = v->start + b->base * PAGE;
	int r;

	if (!b->ppm && cd_dirty_tracked(ctx->dirty, v)) {
		/* with a child in the tree, a page written since the previous
		 * dump may be shared with it again */
		bool exclusive = !cd_image_has_child(ctx->img, cd_inject_pid(ctx->inj));
		if ((r = cd_dirty_pagemap(pm_fd, addr, b->cnt, exclusive, b->pm, err)) <= 0)
			return r;
	}
	if ((r = read_pagemap(pm_fd, b->pm, addr, b->cnt, err)) < 0 ||
	    (b->ppm && (r = read_pagemap(ctx->parent_pm_fd, b->ppm, addr, b->cnt, err)) < 0))
		return r;
	return 0;
}

static int dump_vma_pages(struct cd_dump_ctx *ctx, int pm_fd, struct cd_page_writer *pw,
                          struct cd_vma *v, cd_err *err)
{
	_cleanup_free_ uint64_t *pm = malloc(PM_BATCH * sizeof(*pm));
	_cleanup_free_ uint64_t *ppm = NULL;
	_cleanup_free_ struct read_queue *q = ctx->count ? NULL : malloc(sizeof(*q));
	uint64_t npages = (v->end - v->start) / PAGE;
	size_t cap = 0;
	int r;

	if (!pm || (!ctx->count && !q))
		return cd_err_set(err, ENOMEM, "out of memory");
	if (q)
		q->nop = q->niov = q->pages = q->room = 0;
	if (ctx->parent_pm_fd >= 0 && v->kind == CD_VMA_ANON &&
	    !(ppm = malloc(PM_BATCH * sizeof(*ppm))))
		return cd_err_set(err, ENOMEM, "out of memory");
	for (uint64_t base = 0; base < npages; base += PM_BATCH) {
		struct pm_batch b = {pm, ppm, base,
		                     npages - base < PM_BATCH ? npages - base : PM_BATCH};
		if ((r = batch_pagemap(ctx, pm_fd, v, &b, err)) < 0 ||
		    (r = dump_batch(ctx, pw, v, &cap, q, &b, err)) < 0)
			return r;
	}
	return q ? queue_flush(ctx, pw, v, &cap, q, err) : 0;
}

/* ---- VMA flags ---- */

static const struct {
	char name[3];
	uint32_t flag;
} kept_flags[] = {
    {"lo", CD_VMF_LOCKED},     {"lf", CD_VMF_LOCKONFAULT}, {"dc", CD_VMF_DONTFORK},
    {"wf", CD_VMF_WIPEONFORK}, {"hg", CD_VMF_HUGEPAGE},    {"nh", CD_VMF_NOHUGEPAGE},
    {"dd", CD_VMF_DONTDUMP},   {"mg", CD_VMF_MERGEABLE},   {"rr", CD_VMF_RANDOM},
    {"sr", CD_VMF_SEQUENTIAL}, {"nr", CD_VMF_NORESERVE},
};

/* What a program can set on a mapping that no injected call gives back. */
static const struct {
	char name[3];
	const char *what;
} refused_flags[] = {
    {"sl", "sealed (mseal)"},
    {"um", "registered with userfaultfd (missing pages)"},
    {"uw", "registered with userfaultfd (write-protect)"},
    {"ui", "registered with userfaultfd (minor faults)"},
    {"ss", "a shadow stack"},
    {"ht", "hugetlb memory"},
    {"io", "I/O memory"},
    {"pf", "a PFN mapping"},
    {"de", "not expandable (a driver's mapping)"},
};

static int vma_flags(pid_t pid, const struct cd_proc_map *m, const struct cd_vma *v, uint32_t *ret,
                     cd_err *err)
{
	uint32_t f = 0;

	*ret = 0;
	if (cd_vma_is_vdso(v->kind))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(refused_flags); i++)
		/* an AIO ring is not expandable (aio_ring_mmap), and is so again;
		 * our own tracker's uffd-wp flag is not the program's */
		if (cd_proc_vmflag(m, refused_flags[i].name) &&
		    !(v->kind == CD_VMA_AIO && !strcmp(refused_flags[i].name, "de")) &&
		    !(!strcmp(refused_flags[i].name, "uw") && !cd_proc_vmflag(m, "um") &&
		      cd_dirty_ours(pid, m->start, m->end)))
			return cd_err_set(err, EOPNOTSUPP,
			                  "pid %d: mapping %" PRIx64 "-%" PRIx64
			                  " (%s) is %s (VmFlags %s)",
			                  pid, m->start, m->end, m->path[0] ? m->path : "anonymous",
			                  refused_flags[i].what, refused_flags[i].name);
	/* A mapping only executable gets the kernel's execute-only key again; any other key
	 * was the program's (pkey_mprotect), allocated in the mm, which nothing lists. */
	if (m->pkey && m->prot != PROT_EXEC)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: mapping %" PRIx64 "-%" PRIx64
		                  " (%s) has memory protection key %d (pkey_mprotect)",
		                  pid, m->start, m->end, m->path[0] ? m->path : "anonymous",
		                  m->pkey);
	for (size_t i = 0; i < ARRAY_SIZE(kept_flags); i++)
		if (cd_proc_vmflag(m, kept_flags[i].name))
			f |= kept_flags[i].flag;
	/* Only a shared mapping can lack "may write": its file was open
	 * read-only, or the segment attached with SHM_RDONLY. */
	if ((v->kind == CD_VMA_FILE_SHARED || v->kind == CD_VMA_SYSV_SHM) &&
	    cd_proc_vmflag(m, "mw"))
		f |= CD_VMF_MAYWRITE;
	/* the attachment is made again whole, without guards */
	if (v->kind == CD_VMA_SYSV_SHM && cd_proc_vmflag(m, "gu"))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: mapping %" PRIx64 "-%" PRIx64
		                  " (%s): guard regions (MADV_GUARD_INSTALL) in SysV shared memory",
		                  pid, m->start, m->end, m->path);
	/* its pages are read from the object, which knows nothing of guards */
	if (v->kind == CD_VMA_ANON_SHARED && cd_proc_vmflag(m, "gu"))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: mapping %" PRIx64 "-%" PRIx64
		                  " (%s): guard regions (MADV_GUARD_INSTALL) in shared memory",
		                  pid, m->start, m->end, m->path);
	/* the restore maps every shared memory object read-write */
	if (v->kind == CD_VMA_ANON_SHARED && !cd_proc_vmflag(m, "mw"))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: mapping %" PRIx64 "-%" PRIx64
		                  " (%s): shared memory mapped from a read-only file",
		                  pid, m->start, m->end, m->path);
	*ret = f;
	return 0;
}

/* Whether a task of the tree holds the memfd of inode ino by an fd. */
static bool memfd_held(const struct cd_image *img, uint64_t ino)
{
	char path[64], link[16];
	struct dirent *de;
	struct stat st;

	for (size_t i = 0; i < img->ntasks; i++) {
		snprintf(path, sizeof(path), "/proc/%d/fd", img->tasks[i].pid);
		_cleanup_closedir_ DIR *d = opendir(path);
		while (d && (de = readdir(d)))
			if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
			    S_ISREG(st.st_mode) && st.st_ino == ino &&
			    readlinkat(dirfd(d), de->d_name, link, sizeof(link)) >= 7 &&
			    !strncmp(link, "/memfd:", 7))
				return true;
	}
	return false;
}

/* A memfd mapped shared comes back as a memfd of its name (layout.c) with
 * its pages: the one its fds have (memfd.c), else one made from its own
 * entry of the image (cd_memfd_mapped: contents, size, seals, mode, owner),
 * sealed again once its mappings are made. F_SEAL_WRITE leaves no mapping
 * that may write (refused by vma_flags). */
static int memfd_mapping(struct cd_image *img, pid_t pid, const struct cd_proc_map *m,
                         struct cd_vma *v, cd_err *err)
{
	int r;

	if (!memfd_held(img, m->ino) && (r = cd_memfd_mapped(img, pid, m, err)) < 0)
		return r;
	v->path = strdup(m->path);
	if (!v->path)
		return cd_err_set(err, ENOMEM, "out of memory");
	return 0;
}

/* A memfd mapped private is of the image's memfd of its inode (shmid):
 * an fd's entry (memfd.c), else its own (cd_memfd_mapped); its
 * copy-on-write pages are the task's, as for any private file mapping. */
static int memfd_private(struct cd_image *img, pid_t pid, const struct cd_proc_map *m,
                         struct cd_vma *v, cd_err *err)
{
	int r;

	if (!memfd_held(img, m->ino) && (r = cd_memfd_mapped(img, pid, m, err)) < 0)
		return r;
	v->shmid = (int64_t)m->ino;
	return 0;
}

/* The kernel's AIO ring header (fs/aio.c struct aio_ring), at the start of
 * the ring mapping, before its io_events of 32 bytes each. */
struct aio_ring_head {
	uint32_t id, nr, head, tail, magic, compat, incompat, header_length;
};
#define AIO_RING_MAGIC 0xa10a10a1u
#define AIO_EVENT_SIZE 32u

/* An AIO ring is restored when no completion waits unreaped in it: the
 * kernel keeps no more of it than the ring shows, but requests still in
 * flight are not seen anywhere (neither here nor by CRIU): they would
 * never complete after a restore. shmid: its head. */
static int aio_ring(pid_t pid, const struct cd_proc_map *m, struct cd_vma *v, cd_err *err)
{
	struct aio_ring_head h;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, &h, sizeof(h), (off_t)m->start) != (ssize_t)sizeof(h))
		return cd_err_sys(err, errno, "pid %d: read the AIO ring at %" PRIx64, pid,
		                  m->start);
	if (h.magic != AIO_RING_MAGIC || h.header_length != sizeof(h) || !h.nr ||
	    h.nr != (m->end - m->start - sizeof(h)) / AIO_EVENT_SIZE || h.head >= h.nr ||
	    h.tail >= h.nr || m->pgoff)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: mapping %" PRIx64 "-%" PRIx64
		                  " (%s): an AIO ring whose header the engine does not know (magic "
		                  "%#x, %u events, head %u, tail %u)",
		                  pid, m->start, m->end, m->path, h.magic, h.nr, h.head, h.tail);
	if (h.head != h.tail)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: mapping %" PRIx64 "-%" PRIx64
		                  " (%s): an AIO ring with %u completed events not yet reaped "
		                  "(io_getevents) is not supported: the kernel would not give them "
		                  "again after a restore; reap them first",
		                  pid, m->start, m->end, m->path, (h.tail + h.nr - h.head) % h.nr);
	v->shmid = h.head;
	return 0;
}

static int build_vma(struct cd_image *img, pid_t pid, const struct cd_proc_map *m, struct cd_vma *v,
                     cd_err *err)
{
	int r = classify(pid, m, &v->kind, err);

	if (r < 0 || (r = vma_flags(pid, m, v, &v->flags, err)) < 0)
		return r;
	v->start = m->start;
	v->end = m->end;
	v->pgoff = m->pgoff;
	v->prot = m->prot;
	v->shared = m->shared;
	v->growsdown = m->growsdown;
	v->dev = m->dev;
	v->ino = m->ino;
	/* a SysV segment's inode number is its id (ipc/shm.c newseg) */
	v->shmid =
	    v->kind == CD_VMA_ANON_SHARED || v->kind == CD_VMA_SYSV_SHM ? (int64_t)m->ino : 0;
	if (v->kind == CD_VMA_ANON_SHARED && !strncmp(m->path, "/memfd:", 7) &&
	    (r = memfd_mapping(img, pid, m, v, err)) < 0)
		return r;
	if (v->kind == CD_VMA_AIO && (r = aio_ring(pid, m, v, err)) < 0)
		return r;
	if (v->kind == CD_VMA_FILE && !strncmp(m->path, "/memfd:", 7) &&
	    (r = memfd_private(img, pid, m, v, err)) < 0)
		return r;
	if (v->kind == CD_VMA_FILE || v->kind == CD_VMA_FILE_SHARED) {
		v->path = strdup(m->path);
		if (!v->path)
			return cd_err_set(err, ENOMEM, "out of memory");
	}
	if (v->kind == CD_VMA_FILE) {
		/* the mapped file itself, even if the path now names another */
		char link[96];
		struct stat st;
		snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid,
		         m->start, m->end);
		if (stat(link, &st) < 0)
			return cd_err_sys(err, errno, "pid %d: stat %s", pid, link);
		v->fsize = (uint64_t)st.st_size;
		v->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	}
	return 0;
}

/* Lists the mappings without touching the task: used before anything else
 * so that an unsupported mapping is refused early. */
/* A mapping the engine refuses may be a plugin's (a device's): left out. */
static bool claimed(struct cd_dump_plugins *plugins, struct cd_image *img, pid_t pid,
                    const struct cd_proc_map *m, int r, const cd_err *err)
{
	struct cd_plugin_object obj = {
	    .pid = pid, .fd = -1, .start = m->start, .end = m->end, .path = m->path};

	return plugins && r == -EOPNOTSUPP && cd_plugins_dump_claim(plugins, img, &obj);
}

int cd_mem_collect(pid_t pid, struct cd_task *t, struct cd_image *img,
                   struct cd_dump_plugins *plugins, cd_err *err)
{
	_cleanup_free_ struct cd_proc_map *maps = NULL;
	size_t n;
	int r = cd_proc_maps(pid, &maps, &n, err);

	if (r < 0)
		return r;
	/* one more for [vsyscall], which is not recorded */
	if (n > CD_MAX_VMAS + 1)
		return cd_err_set(err, E2BIG, "pid %d: %zu mappings, more than an image holds (%d)",
		                  pid, n, CD_MAX_VMAS);
	t->vmas = calloc(n + 1, sizeof(*t->vmas));
	if (!t->vmas)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(maps[i].path, "[vsyscall]"))
			continue;
		struct cd_vma *v = &t->vmas[t->nvmas];
		r = build_vma(img, pid, &maps[i], v, err);
		/* a shared mapping of a deleted file: of that file's entry */
		if (r >= 0 && cd_vma_deleted(v))
			r = cd_deleted_mapped(img, pid, &maps[i], err);
		if (r < 0 && claimed(plugins, img, pid, &maps[i], r, err)) {
			free(v->path);
			free(v->runs);
			memset(v, 0, sizeof(*v));
			cd_err_clear(err);
			continue;
		}
		t->nvmas++;
		if (r < 0)
			return r;
		if (cd_vma_is_vdso(v->kind))
			img->vdso_size[v->kind] = v->end - v->start;
	}
	return cd_sysv_check_attachments(img, t, err);
}

void cd_mem_forget(struct cd_task *t)
{
	for (size_t i = 0; i < t->nvmas; i++) {
		free(t->vmas[i].path);
		free(t->vmas[i].runs);
	}
	free(t->vmas);
	t->vmas = NULL;
	t->nvmas = 0;
}

/* The pagemaps of t and of its parent in the tree (-1 when none). */
static int open_pagemaps(struct cd_dump_ctx *ctx, const struct cd_task *t, int *ret_pm,
                         int *ret_ppm, cd_err *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	*ret_pm = open(path, O_RDONLY | O_CLOEXEC);
	if (*ret_pm < 0)
		return cd_err_sys(err, errno, "open %s", path);
	ctx->parent = t->ppid != t->pid ? cd_image_task(ctx->img, t->ppid) : NULL;
	if (ctx->parent) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", t->ppid);
		*ret_ppm = open(path, O_RDONLY | O_CLOEXEC);
		if (*ret_ppm < 0)
			return cd_err_sys(err, errno, "open %s", path);
	}
	ctx->parent_pm_fd = *ret_ppm;
	return 0;
}

static int dump_vmas(struct cd_dump_ctx *ctx, struct cd_task *t, int pm_fd,
                     struct cd_page_writer *pw, cd_err *err)
{
	int r;

	for (size_t i = 0; i < t->nvmas; i++) {
		/* a SysV segment's pages are in its own page file (sysv-shm.c) */
		if (t->vmas[i].kind == CD_VMA_SYSV_SHM)
			continue;
		if (t->vmas[i].kind == CD_VMA_ANON_SHARED && !ctx->count)
			r = dump_shm_pages(ctx, t->pid, pw, &t->vmas[i], err);
		else if (t->vmas[i].kind == CD_VMA_ANON_SHARED &&
		         shm_dumped(ctx->img, t, &t->vmas[i]))
			r = 0;
		else
			r = dump_vma_pages(ctx, pm_fd, pw, &t->vmas[i], err);
		if (r < 0)
			return cd_err_wrap(err, "mapping %" PRIx64 "-%" PRIx64, t->vmas[i].start,
			                   t->vmas[i].end);
	}
	return 0;
}

int cd_mem_count(struct cd_dump_ctx *ctx, struct cd_task *t, uint64_t *ret, cd_err *err)
{
	_cleanup_close_ int pm_fd = -1, ppm_fd = -1;
	int r = open_pagemaps(ctx, t, &pm_fd, &ppm_fd, err);

	ctx->count = ret;
	if (r >= 0)
		r = dump_vmas(ctx, t, pm_fd, NULL, err);
	ctx->count = NULL;
	ctx->parent_pm_fd = -1;
	return r;
}

static int mem_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	_cleanup_(cd_pw_freep) struct cd_page_writer *pw = NULL;
	_cleanup_close_ int pm_fd = -1, ppm_fd = -1;
	uint64_t write_ns, fsync_ns;
	int r;

	/* Re-list now that the task is stopped (and our scratch page is gone). */
	cd_mem_forget(t);
	if ((r = cd_mem_collect(t->pid, t, ctx->img, ctx->plugins, err)) < 0 ||
	    (r = open_pagemaps(ctx, t, &pm_fd, &ppm_fd, err)) < 0)
		return r;
	snprintf(t->pages_file, sizeof(t->pages_file), "pages-%d.img", t->pid);
	if ((r = cd_pw_open_layout(ctx->dirfd, t->pages_file, &ctx->img->pages, &pw, err)) < 0 ||
	    (r = cd_deleted_save_mapped(ctx, t, err)) < 0 ||
	    (r = cd_memfd_save_mapped(ctx, t, err)) < 0)
		return r;
	/* incremental: the pages written since the previous dump (dirty.c) */
	struct cd_dirty *dirty = NULL;
	if (ctx->dirty_state && (r = cd_dirty_scan(ctx->dirty_state, t, &dirty, err)) < 0)
		return r;
	ctx->dirty = dirty;
	if ((r = dump_vmas(ctx, t, pm_fd, pw, err)) >= 0 &&
	    (r = cd_pw_finish(pw, &t->pages_size, &t->pages_csum, err)) >= 0 && ctx->dirty_state)
		cd_dirty_track(ctx->dirty_state, ctx->inj, t, dirty);
	ctx->dirty = NULL;
	cd_dirty_free(dirty);
	if (r < 0)
		return r;
	cd_pw_times(pw, &write_ns, &fsync_ns);
	ctx->stats->write_ns += write_ns;
	ctx->stats->fsync_ns += fsync_ns;
	ctx->stats->pages_bytes += t->pages_size;
	return 0;
}

/* ---- restore ---- */

/* Writes a path into the data area and opens it inside the task. */
static int open_in_task(struct cd_restore_ctx *ctx, const char *path, int flags, long *ret_fd,
                        cd_err *err)
{
	size_t len = strlen(path) + 1;

	if (len > ctx->data_len)
		return cd_err_set(err, ENAMETOOLONG, "path too long: %s", path);
	int r = cd_inject_write_mem(ctx->inj, ctx->data, path, len, err);
	if (r < 0)
		return r;
	r = cd_call(ctx->inj, SYS_openat, (uint64_t)AT_FDCWD, ctx->data, (uint64_t)flags, 0, 0, 0,
	            ret_fd, err);
	if (r < 0)
		return r;
	if (*ret_fd < 0)
		return cd_err_sys(err, (int)-*ret_fd, "open %s", path);
	return 0;
}

static int open_shm(struct cd_restore_ctx *ctx, const struct cd_vma *v, long *ret_fd, cd_err *err)
{
	char path[64];

	for (size_t i = 0; i < ctx->nshm; i++) {
		if (ctx->shm[i].id != v->shmid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), ctx->shm[i].fd);
		return open_in_task(ctx, path, O_RDWR | O_CLOEXEC, ret_fd, err);
	}
	return cd_err_set(err, EINVAL, "unknown shared memory object %" PRId64, v->shmid);
}

/* A deleted file mapped (shared or private): the file the controller holds for it
 * (layout.c, fd-deleted.c), opened as the mapping was. */
static int open_ghost(struct cd_restore_ctx *ctx, const struct cd_vma *v, long *ret_fd, cd_err *err)
{
	char path[64];

	for (size_t i = 0; i < ctx->nshm; i++) {
		if (ctx->shm[i].id != 0 || !ctx->shm[i].path || strcmp(ctx->shm[i].path, v->path))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), ctx->shm[i].fd);
		return open_in_task(
		    ctx, path,
		    (v->shared && (v->flags & CD_VMF_MAYWRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC,
		    ret_fd, err);
	}
	return cd_err_set(err, EINVAL, "mapped file %s: no deleted file made for it", v->path);
}

/* A memfd mapped private: the memfd the controller made for its fds
 * (memfd.c), or for its mappings when no fd holds it (layout.c), opened
 * read-only (a private mapping needs no more). */
static int open_memfd(struct cd_restore_ctx *ctx, const struct cd_vma *v, long *ret_fd, cd_err *err)
{
	char path[64];
	int fd = cd_memfd_ctl_fd(ctx->img, ctx->objs, v->shmid);

	for (size_t i = 0; fd < 0 && i < ctx->nshm; i++)
		if (ctx->shm[i].id == v->shmid)
			fd = ctx->shm[i].fd;

	if (fd < 0)
		return cd_err_set(err, EINVAL, "mapped %s: no memfd of shmid %" PRId64, v->path,
		                  v->shmid);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), fd);
	return open_in_task(ctx, path, O_RDONLY | O_CLOEXEC, ret_fd, err);
}

/* Completes n reads of /dev/zero (fd, in the task) through the AIO context
 * ctx and reaps them: the kernel's head and tail of its ring move by n. */
static int aio_spin(struct cd_restore_ctx *ctx, uint64_t ctxid, long fd, uint32_t n, cd_err *err)
{
	enum { BATCH = 16 };
	struct iocb cb[BATCH];
	uint64_t ptr[BATCH];
	const uint64_t at_ptr = ctx->data, at_cb = at_ptr + sizeof(ptr), at_ev = at_cb + sizeof(cb),
	               at_buf = at_ev + BATCH * AIO_EVENT_SIZE;
	int r = 0;

	if (at_buf + 8 - ctx->data > ctx->data_len)
		return cd_err_set(err, E2BIG, "no room for AIO requests");
	while (n && r >= 0) {
		uint32_t b = n < BATCH ? n : BATCH;
		long got;
		memset(cb, 0, sizeof(cb));
		for (uint32_t i = 0; i < b; i++) {
			cb[i].aio_lio_opcode = IOCB_CMD_PREAD;
			cb[i].aio_fildes = (uint32_t)fd;
			cb[i].aio_buf = at_buf;
			cb[i].aio_nbytes = 1;
			ptr[i] = at_cb + i * sizeof(cb[0]);
		}
		if ((r = cd_inject_write_mem(ctx->inj, at_ptr, ptr, sizeof(ptr), err)) < 0 ||
		    (r = cd_inject_write_mem(ctx->inj, at_cb, cb, sizeof(cb), err)) < 0 ||
		    (r = cd_call_ok(ctx->inj, "io_submit", SYS_io_submit, ctxid, b, at_ptr, 0, 0, 0,
		                    &got, err)) < 0)
			break;
		if (got != (long)b)
			return cd_err_set(err, EIO, "io_submit took %ld of %u", got, b);
		if ((r = cd_call_ok(ctx->inj, "io_getevents", SYS_io_getevents, ctxid, b, b, at_ev,
		                    0, 0, &got, err)) < 0)
			break;
		if (got != (long)b)
			return cd_err_set(err, EIO, "io_getevents gave %ld of %u", got, b);
		n -= b;
	}
	return r;
}

/* An AIO ring: io_setup of the number of events that gives a ring of its
 * size (the kernel makes nr = 2 * asked + 2, at least 8 per CPU, rounded up
 * to whole pages), moved to its address (aio_ring_mremap: the context id is
 * the address), then its head and tail moved to the recorded head by
 * requests that complete at once. Only the slots before the head differ:
 * they hold those reads' events, not the ones reaped before the dump. */
static int map_aio(struct cd_restore_ctx *ctx, const struct cd_vma *v, cd_err *err)
{
	const uint64_t len = v->end - v->start;
	const uint32_t nr = (uint32_t)((len - sizeof(struct aio_ring_head)) / AIO_EVENT_SIZE);
	struct aio_ring_head h;
	uint64_t ctxid = 0;
	long at, fd = -1, ignored;
	int r;

	/* io_setup takes a context id of 0 only */
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, &ctxid, sizeof(ctxid), err)) < 0 ||
	    (r = cd_call_ok(ctx->inj, "io_setup", SYS_io_setup, (nr - 2) / 2, ctx->data, 0, 0, 0, 0,
	                    NULL, err)) < 0 ||
	    (r = cd_inject_read_mem(ctx->inj, ctx->data, &ctxid, sizeof(ctxid), err)) < 0 ||
	    (r = cd_inject_read_mem(ctx->inj, ctxid, &h, sizeof(h), err)) < 0)
		return cd_err_wrap(err, "AIO ring %" PRIx64, v->start);
	if (h.nr != nr)
		return cd_err_set(err, EINVAL,
		                  "AIO ring %" PRIx64
		                  ": made again with %u events, not %u (another "
		                  "number of CPUs?)",
		                  v->start, h.nr, nr);
	if (ctxid != v->start &&
	    (r = cd_call_ok(ctx->inj, "mremap", SYS_mremap, ctxid, len, len,
	                    MREMAP_MAYMOVE | MREMAP_FIXED, v->start, 0, &at, err)) < 0)
		return cd_err_wrap(err, "AIO ring %" PRIx64, v->start);
	if (v->shmid) {
		if ((r = open_in_task(ctx, "/dev/zero", O_RDONLY | O_CLOEXEC, &fd, err)) < 0)
			return r;
		r = aio_spin(ctx, v->start, fd, (uint32_t)v->shmid, err);
		cd_call(ctx->inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err);
		if (r < 0)
			return cd_err_wrap(err, "AIO ring %" PRIx64, v->start);
	}
	if ((r = cd_inject_read_mem(ctx->inj, v->start, &h, sizeof(h), err)) < 0)
		return r;
	if (h.head != (uint32_t)v->shmid || h.tail != (uint32_t)v->shmid)
		return cd_err_set(err, EIO, "AIO ring %" PRIx64 ": head %u tail %u, want %" PRId64,
		                  v->start, h.head, h.tail, v->shmid);
	return 0;
}

/* Shared memory is filled through the mapping itself, which takes a write
 * only where it is writable (a forced write to a private mapping makes a
 * copy-on-write page instead): one that holds data but is not writable is
 * mapped writable, and finish_vma gives it its own protection. */
static int map_prot(const struct cd_vma *v)
{
	if (v->kind == CD_VMA_ANON_SHARED && v->nruns && !(v->prot & PROT_WRITE))
		return v->prot | PROT_WRITE;
	return v->prot;
}

/* A SysV attachment is made again by shmat at its address, once for the
 * whole segment: at its first mapping (offset 0); the mappings after it
 * (split by mprotect or madvise) are parts of it. SHM_EXEC where the first
 * one is executable. */
static int map_sysv(struct cd_restore_ctx *ctx, const struct cd_vma *v, cd_err *err)
{
	long at;
	int flags = SHM_REMAP | (v->flags & CD_VMF_MAYWRITE ? 0 : SHM_RDONLY) |
	            (v->prot & PROT_EXEC ? SHM_EXEC : 0);
	int r;

	if (v->pgoff)
		return 0;
	r = cd_call_ok(ctx->inj, "shmat", SYS_shmat, (uint64_t)v->shmid, v->start, (uint64_t)flags,
	               0, 0, 0, &at, err);
	if (r >= 0 && (uint64_t)at != v->start)
		return cd_err_set(err, EINVAL,
		                  "shmat of SysV segment %" PRId64 " at %lx, not %" PRIx64,
		                  v->shmid, (unsigned long)at, v->start);
	return r;
}

static int map_vma(struct cd_restore_ctx *ctx, const struct cd_vma *v, cd_err *err)
{
	uint64_t len = v->end - v->start;
	int flags = MAP_FIXED | (v->shared ? MAP_SHARED : MAP_PRIVATE);
	long fd = -1;
	int r;

	if (v->growsdown)
		flags |= MAP_GROWSDOWN;
	if (v->flags & CD_VMF_NORESERVE)
		flags |= MAP_NORESERVE;
	switch (v->kind) {
	case CD_VMA_ANON:
		flags |= MAP_ANONYMOUS;
		break;
	case CD_VMA_SYSV_SHM:
		return map_sysv(ctx, v, err);
	case CD_VMA_AIO:
		return map_aio(ctx, v, err);
	case CD_VMA_ANON_SHARED:
		r = open_shm(ctx, v, &fd, err);
		if (r < 0)
			return r;
		break;
	case CD_VMA_FILE:
	case CD_VMA_FILE_SHARED:
		if (cd_vma_deleted(v))
			r = open_ghost(ctx, v, &fd, err);
		else if (cd_vma_memfd(v))
			r = open_memfd(ctx, v, &fd, err);
		else
			r = open_in_task(
			    ctx, v->path,
			    (v->shared && (v->flags & CD_VMF_MAYWRITE) ? O_RDWR : O_RDONLY) |
			        O_CLOEXEC,
			    &fd, err);
		if (r < 0)
			return r;
		break;
	default:
		return 0;
	}
	r = cd_call_ok(ctx->inj, "mmap", SYS_mmap, v->start, len, (uint64_t)map_prot(v),
	               (uint64_t)flags, (uint64_t)fd, fd >= 0 ? v->pgoff : 0, NULL, err);
	if (fd >= 0) {
		long ignored;
		cd_call(ctx->inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err);
	}
	return r;
}

static int write_task_pages(cd_inject *inj, const struct cd_vma *v, uint64_t addr, const void *src,
                            size_t len, cd_err *err)
{
	if (v->prot & PROT_WRITE) {
		struct iovec local = {(void *)src, len}, remote = {(void *)addr, len};
		if (process_vm_writev(cd_inject_pid(inj), &local, 1, &remote, 1, 0) == (ssize_t)len)
			return 0;
	}
	return cd_inject_write_mem(inj, addr, src, len, err);
}

/* The parent's runs by address, with their page file offsets, for the
 * pages a child still shared with it at dump time. */
struct run_ent {
	uint64_t start, end, off;
	uint8_t src;
};

/* One ancestor's runs, opened when a page is first looked up in it. */
struct parent_pages {
	const struct cd_task *task;
	struct run_ent *e;
	size_t n;
	struct cd_page_reader *pr;
};

static void parent_pages_free(struct parent_pages *pp)
{
	free(pp->e);
	cd_pr_free(pp->pr);
}

static int parent_pages_open(struct cd_restore_ctx *ctx, struct parent_pages *pp, cd_err *err)
{
	const struct cd_task *p = pp->task;
	uint64_t off = 0;
	size_t n = 0;
	int r;

	if (pp->pr)
		return 0;
	if ((r = cd_pr_open_layout(ctx->dirfd, p->pages_file, p->pages_size, &ctx->img->pages,
	                           &pp->pr, err)) < 0)
		return r;
	for (size_t i = 0; i < p->nvmas; i++)
		n += p->vmas[i].nruns;
	pp->e = calloc(n + 1, sizeof(*pp->e));
	if (!pp->e)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->nvmas; i++) {
		for (size_t j = 0; j < p->vmas[i].nruns; j++) {
			const struct cd_run *run = &p->vmas[i].runs[j];
			uint64_t start = p->vmas[i].start + run->page * PAGE;
			pp->e[pp->n++] =
			    (struct run_ent){start, start + run->npages * PAGE, off, run->src};
			if (run->src == CD_RUN_DATA)
				off += run->npages * PAGE;
		}
	}
	return 0;
}

static const struct run_ent *parent_run_at(const struct parent_pages *pp, uint64_t addr)
{
	size_t lo = 0, hi = pp->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pp->e[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < pp->n && pp->e[lo].start <= addr ? &pp->e[lo] : NULL;
}

struct chain_dst {
	cd_inject *inj;
	const struct cd_vma *v;
};

static int chain_write(void *arg, uint64_t addr, const void *src, uint64_t len, cd_err *err)
{
	const struct chain_dst *d = arg;

	return write_task_pages(d->inj, d->v, addr, src, len, err);
}

/* Pages of task pid that its previous checkpoint holds (parent.c). */
static int fill_from_chain(struct cd_restore_ctx *ctx, pid_t pid, const struct cd_vma *v,
                           uint64_t addr, uint64_t len, cd_err *err)
{
	struct chain_dst d = {ctx->inj, v};

	return cd_chain_fill(ctx->chain, pid, addr, len, chain_write, &d, err);
}

/* pp[0] is the parent, pp[1] the grandparent …: a page the parent itself
 * shared with its own parent is found further up, as far up as the dump
 * recorded it (it records at any depth). */
static int fill_from_parent(struct cd_restore_ctx *ctx, struct parent_pages *pp, size_t depth,
                            const struct cd_vma *v, uint64_t addr, uint64_t left, cd_err *err)
{
	int r;

	if (depth && (r = parent_pages_open(ctx, pp, err)) < 0)
		return r;
	while (left) {
		const struct run_ent *e = depth ? parent_run_at(pp, addr) : NULL;
		const void *src;
		if (!e)
			return cd_err_set(err, EINVAL,
			                  "page %" PRIx64 " is not in the parent's image", addr);
		uint64_t n = e->end - addr < left ? e->end - addr : left;
		if (e->src == CD_RUN_PARENT) {
			if ((r = fill_from_parent(ctx, pp + 1, depth - 1, v, addr, n, err)) < 0)
				return r;
		} else if (e->src == CD_RUN_PREV) {
			if ((r = fill_from_chain(ctx, pp->task->pid, v, addr, n, err)) < 0)
				return r;
		} else if (e->src == CD_RUN_DATA) {
			/* a chunk at most at once: a streamed reader decodes that */
			uint64_t at = e->off + (addr - e->start);
			n = n < CD_STREAM_CHUNK - at % CD_STREAM_CHUNK
			        ? n
			        : CD_STREAM_CHUNK - at % CD_STREAM_CHUNK;
			r = cd_pr_at(pp->pr, at, n, &src, err);
			if (r >= 0)
				r = write_task_pages(ctx->inj, v, addr, src, n, err);
			if (r < 0)
				return r;
		}
		addr += n;
		left -= n;
	}
	return 0;
}

#define FILL_STEP (8u << 20)

static uint64_t vma_restore_bytes(const struct cd_vma *v)
{
	uint64_t bytes = v->later.data_pages * PAGE;

	/* zero and guard runs are nothing to put back */
	for (size_t j = 0; j < v->nruns; j++)
		if (v->runs[j].src == CD_RUN_DATA || v->runs[j].src == CD_RUN_PARENT ||
		    v->runs[j].src == CD_RUN_PREV)
			bytes += v->runs[j].npages * PAGE;
	return bytes;
}

uint64_t cd_mem_restore_bytes(const struct cd_task *t)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < t->nvmas; i++)
		bytes += vma_restore_bytes(&t->vmas[i]);
	return bytes;
}

static int fill_vma(struct cd_restore_ctx *ctx, struct cd_page_reader *pr, struct parent_pages *pp,
                    size_t depth, const struct cd_vma *v, cd_err *err)
{
	static const uint8_t zero[PAGE];

	for (size_t i = 0; i < v->nruns; i++) {
		const struct cd_run *run = &v->runs[i];
		uint64_t addr = v->start + run->page * PAGE, left = run->npages * PAGE;
		int r;
		if (run->src == CD_RUN_PARENT || run->src == CD_RUN_PREV) {
			r = run->src == CD_RUN_PARENT
			        ? fill_from_parent(ctx, pp, depth, v, addr, left, err)
			        : fill_from_chain(ctx, cd_inject_pid(ctx->inj), v, addr, left, err);
			if (r < 0)
				return r;
			cd_progress_add(ctx->progress, left);
			continue;
		}
		/* Fresh anonymous memory and new shared memory objects are zero;
		 * a guard region is installed once the mapping is filled. */
		if (run->src == CD_RUN_GUARD)
			continue;
		if (run->src == CD_RUN_ZERO &&
		    (v->kind == CD_VMA_ANON || v->kind == CD_VMA_ANON_SHARED))
			continue;
		while (left) {
			const void *src = zero;
			size_t n = PAGE;
			/* in steps, for the progress */
			if (run->src == CD_RUN_DATA &&
			    (r = cd_pr_next(pr, left < FILL_STEP ? left : FILL_STEP, &src, &n,
			                    err)) < 0)
				return r;
			if ((r = write_task_pages(ctx->inj, v, addr, src, n, err)) < 0 ||
			    (r = cd_check_cancel(err)) < 0)
				return r;
			if (run->src == CD_RUN_DATA)
				cd_progress_add(ctx->progress, n);
			addr += n;
			left -= n;
		}
	}
	return 0;
}

/* 1 when smaps shows v's start locked, 0 when not, or an error. */
static int vma_locked(pid_t pid, const struct cd_vma *v, cd_err *err)
{
	_cleanup_free_ struct cd_proc_map *maps = NULL;
	size_t n;
	int r = cd_proc_maps(pid, &maps, &n, err);

	for (size_t i = 0; r >= 0 && i < n; i++)
		if (maps[i].start <= v->start && v->start < maps[i].end)
			return cd_proc_vmflag(&maps[i], "lo");
	return r;
}

/* The kernel marks the range locked before it faults its pages in; where
 * no page can be had (PROT_NONE, a file mapping past the file's end) that
 * fails with ENOMEM, as it did for the program (mlockall(MCL_CURRENT)
 * ignores it). The mark is what counts, so an ENOMEM is checked in smaps. */
static int lock_vma(struct cd_restore_ctx *ctx, const struct cd_vma *v, cd_err *err)
{
	long ret;
	int r = cd_call(ctx->inj, SYS_mlock2, v->start, v->end - v->start,
	                v->flags & CD_VMF_LOCKONFAULT ? MLOCK_ONFAULT : 0, 0, 0, 0, &ret, err);

	if (r < 0 || ret == 0)
		return r;
	if (ret == -ENOMEM && (r = vma_locked(cd_inject_pid(ctx->inj), v, err)) != 0)
		return r < 0 ? r : 0;
	return cd_err_sys(err, (int)-ret, "mlock2");
}

/* Guard regions go after the fill (a guard page takes no write) and before
 * the lock. */
static int install_guards(struct cd_restore_ctx *ctx, const struct cd_vma *v, cd_err *err)
{
	int r;

	for (size_t i = 0; i < v->nruns; i++)
		if (v->runs[i].src == CD_RUN_GUARD &&
		    (r = cd_call_ok(ctx->inj, "madvise(MADV_GUARD_INSTALL)", SYS_madvise,
		                    v->start + v->runs[i].page * PAGE, v->runs[i].npages * PAGE,
		                    MADV_GUARD_INSTALL, 0, 0, 0, NULL, err)) < 0)
			return r;
	return 0;
}

static int advise_vma(struct cd_restore_ctx *ctx, const struct cd_vma *v, cd_err *err)
{
	static const struct {
		uint32_t flag;
		int advice;
		const char *what;
	} advice[] = {
	    {CD_VMF_DONTFORK, MADV_DONTFORK, "madvise(MADV_DONTFORK)"},
	    {CD_VMF_WIPEONFORK, MADV_WIPEONFORK, "madvise(MADV_WIPEONFORK)"},
	    {CD_VMF_HUGEPAGE, MADV_HUGEPAGE, "madvise(MADV_HUGEPAGE)"},
	    {CD_VMF_NOHUGEPAGE, MADV_NOHUGEPAGE, "madvise(MADV_NOHUGEPAGE)"},
	    {CD_VMF_DONTDUMP, MADV_DONTDUMP, "madvise(MADV_DONTDUMP)"},
	    {CD_VMF_MERGEABLE, MADV_MERGEABLE, "madvise(MADV_MERGEABLE)"},
	    {CD_VMF_RANDOM, MADV_RANDOM, "madvise(MADV_RANDOM)"},
	    {CD_VMF_SEQUENTIAL, MADV_SEQUENTIAL, "madvise(MADV_SEQUENTIAL)"},
	};
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(advice); i++)
		if ((v->flags & advice[i].flag) &&
		    (r = cd_call_ok(ctx->inj, advice[i].what, SYS_madvise, v->start,
		                    v->end - v->start, (uint64_t)advice[i].advice, 0, 0, 0, NULL,
		                    err)) < 0)
			return r;
	return 0;
}

/* What a mapping gets once it is mapped and filled: its own protection
 * where map_vma mapped it otherwise, guard regions, the madvise flags and
 * last the lock, which populates the range with its final contents. Runs
 * before the credentials module, while the task may still lock beyond its
 * RLIMIT_MEMLOCK as a program that locked and then dropped its privileges
 * had (the daemon's trust check holds user images to the limit). */
static int finish_vma(struct cd_restore_ctx *ctx, const struct cd_vma *v, cd_err *err)
{
	int r = 0;

	/* a SysV attachment has what its first mapping's shmat gave (map_sysv) */
	if (map_prot(v) != v->prot || v->kind == CD_VMA_SYSV_SHM)
		r = cd_call_ok(ctx->inj, "mprotect", SYS_mprotect, v->start, v->end - v->start,
		               (uint64_t)v->prot, 0, 0, 0, NULL, err);
	if (r >= 0)
		r = install_guards(ctx, v, err);
	if (r >= 0)
		r = advise_vma(ctx, v, err);
	if (r >= 0 && (v->flags & CD_VMF_LOCKED))
		r = lock_vma(ctx, v, err);
	return r;
}

/* Every ancestor of t, parent first. Bounded by the number of tasks, so
 * that a loop of ppids in a broken image ends. */
static int list_ancestors(const struct cd_restore_ctx *ctx, const struct cd_task *t,
                          struct parent_pages **ret, size_t *ret_depth, cd_err *err)
{
	struct parent_pages *pp = calloc(ctx->img->ntasks + 1, sizeof(*pp));
	const struct cd_task *p = t;
	size_t depth = 0;

	if (!pp)
		return cd_err_set(err, ENOMEM, "out of memory");
	while (depth < ctx->img->ntasks) {
		const struct cd_task *up = cd_image_task((struct cd_image *)ctx->img, p->ppid);
		if (!up || up == p)
			break;
		pp[depth++].task = up;
		p = up;
	}
	*ret = pp;
	*ret_depth = depth;
	return 0;
}

/* ---- premapped memory (see internal.h) ---- */

#define SLOT_ALIGN (2u << 20) /* a slot keeps its mapping's offset in a huge page */

static bool has_src(const struct cd_vma *v, uint8_t src)
{
	/* runs kept as text are data and zero runs only */
	if (v->later.text && src == CD_RUN_DATA)
		return true;
	if (v->later.text && src == CD_RUN_ZERO)
		return v->later.nruns > v->later.ndata;
	for (size_t i = 0; i < v->nruns; i++)
		if (v->runs[i].src == src)
			return true;
	return false;
}

/* Mappings the task maps and fills itself: those with pages to write or to
 * share. Not a grow-down one (its flag comes only from mmap), not one
 * without contents (a large PROT_NONE reservation would be charged as
 * writable memory in the slot). */
static bool premappable(const struct cd_vma *v)
{
	/* pages from the parent image are put in by injected calls (parent.c) */
	if (v->growsdown || (v->kind != CD_VMA_ANON && v->kind != CD_VMA_FILE) ||
	    has_src(v, CD_RUN_PREV))
		return false;
	/* a deleted file or memfd is the controller's: mapped by an injected call */
	if (cd_vma_deleted(v) || cd_vma_memfd(v))
		return false;
	return has_src(v, CD_RUN_DATA) || has_src(v, CD_RUN_PARENT) ||
	       (v->kind == CD_VMA_FILE && has_src(v, CD_RUN_ZERO));
}

/* The parent's mapping with the same start and end (mappings are sorted). */
static const struct cd_vma *same_vma(const struct cd_task *p, const struct cd_vma *v, size_t *ret)
{
	size_t lo = 0, hi = p->nvmas;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->vmas[mid].start < v->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == p->nvmas || p->vmas[lo].start != v->start || p->vmas[lo].end != v->end)
		return NULL;
	*ret = lo;
	return &p->vmas[lo];
}

/* Pages shared with the parent are kept only where the parent premapped
 * the same mapping, planned before (tasks come parents first); elsewhere
 * the mapping is restored by injected calls, the parent's pages read from
 * its page file. */
static uint8_t premap_how(const struct cd_image *img, const struct cd_premap *plan, size_t ti,
                          const struct cd_vma *v)
{
	const struct cd_task *t = &img->tasks[ti];
	const struct cd_task *p = cd_image_task((struct cd_image *)img, t->ppid);
	const struct cd_vma *pv;
	const struct cd_premap_vma *row = plan->task[ti];
	size_t pi, k;

	if (!row || !premappable(v) || row[v - t->vmas].lazy)
		return CD_PREMAP_NONE;
	if (!has_src(v, CD_RUN_PARENT))
		return CD_PREMAP_FRESH;
	if (!p || p == t || (pi = (size_t)(p - img->tasks)) >= ti || !(pv = same_vma(p, v, &k)))
		return CD_PREMAP_NONE;
	return pv->kind == CD_VMA_ANON && v->kind == CD_VMA_ANON &&
	               plan->task[pi][k].how != CD_PREMAP_NONE
	           ? CD_PREMAP_INHERIT
	           : CD_PREMAP_NONE;
}

struct slot_ref {
	uint64_t start, end;
	struct cd_premap_vma *pv;
};

static int cmp_slot(const void *a, const void *b)
{
	const struct slot_ref *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/* One slot per distinct start and end: a child's inherited mapping finds
 * its parent's at the same place. */
static int assign_slots(const struct cd_image *img, struct cd_premap *plan, cd_err *err)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nvmas; j++)
			n += plan->task[i][j].how != CD_PREMAP_NONE;
	_cleanup_free_ struct slot_ref *refs = calloc(n + 1, sizeof(*refs));
	if (!refs)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nvmas; j++)
			if (plan->task[i][j].how != CD_PREMAP_NONE)
				refs[k++] =
				    (struct slot_ref){img->tasks[i].vmas[j].start,
				                      img->tasks[i].vmas[j].end, &plan->task[i][j]};
	qsort(refs, n, sizeof(*refs), cmp_slot);
	uint64_t at = 0, off = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || cmp_slot(&refs[i - 1], &refs[i])) {
			off = (at + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN +
			      refs[i].start % SLOT_ALIGN;
			/* a free page after each slot: neighbours never merge */
			at = off + (refs[i].end - refs[i].start) + PAGE;
			/* no wrap-around on a forged image (slots are each below
			 * CD_ADDR_MAX); place_areas finds no room for such an area */
			if (at > CD_ADDR_MAX)
				return cd_err_set(err, E2BIG, "mappings too large to premap");
		}
		refs[i].pv->off = off;
	}
	plan->len = at;
	return 0;
}

/* Which mappings a lazy restore leaves to its server: not one a child
 * shares copy-on-write (premapped, the sharing is kept). */
static void plan_lazy(const struct cd_image *img, struct cd_premap *plan)
{
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nvmas; j++)
			plan->task[i][j].lazy = cd_lazy_vma(&img->tasks[i].vmas[j]);
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		const struct cd_task *p = cd_image_task((struct cd_image *)img, t->ppid);
		size_t k;
		for (size_t j = 0; p && p != t && j < t->nvmas; j++)
			if (has_src(&t->vmas[j], CD_RUN_PARENT) && same_vma(p, &t->vmas[j], &k))
				plan->task[p - img->tasks][k].lazy = false;
	}
}

int cd_mem_premap_plan(const struct cd_image *img, struct cd_premap *plan, cd_err *err)
{
	*plan = (struct cd_premap){.lazy = plan->lazy};
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
	plan->task = calloc(img->ntasks + 1, sizeof(*plan->task));
	if (!plan->task)
		return cd_err_set(err, ENOMEM, "out of memory");
	plan->ntasks = img->ntasks;
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		plan->task[i] = calloc(t->nvmas + 1, sizeof(*plan->task[i]));
		if (!plan->task[i])
			return cd_err_set(err, ENOMEM, "out of memory");
	}
	if (plan->lazy)
		plan_lazy(img, plan);
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		struct cd_premap_vma *row = plan->task[i];
		for (size_t j = 0; row && j < t->nvmas; j++) {
			row[j].how = premap_how(img, plan, i, &t->vmas[j]);
			row[j].data = cd_vma_data_bytes(&t->vmas[j]);
		}
	}
	return assign_slots(img, plan, err);
}

void cd_mem_premap_free(struct cd_premap *plan)
{
	for (size_t i = 0; plan->task && i < plan->ntasks; i++)
		free(plan->task[i]);
	for (size_t i = 0; plan->stored && i < plan->ntasks; i++)
		cd_page_stored_free(plan->stored[i]);
	free(plan->stored);
	free(plan->task);
	*plan = (struct cd_premap){0};
}

int cd_mem_premap_stored(const struct cd_image *img, struct cd_premap *plan, int dirfd, cd_err *err)
{
	/* lazily, the premapped data is a small part: the controller reads it */
	if (plan->lazy || cd_page_layout_plain(&img->pages))
		return 0;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
	if (!(plan->stored = calloc(img->ntasks + 1, sizeof(*plan->stored))))
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		int r = t->zombie ? 0
		                  : cd_page_stored_open(dirfd, t->pages_file, t->pages_size,
		                                        &img->pages, &plan->stored[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Unmaps the parent's slots t does not keep (the root has none). */
static int drop_unkept(const struct cd_premap *plan, const struct cd_task *t,
                       const struct cd_premap_vma *pv, cd_err *err)
{
	uint64_t at = plan->base, top = plan->base + plan->len;

	for (size_t i = 0; i <= t->nvmas; i++) {
		if (i < t->nvmas && pv[i].how != CD_PREMAP_INHERIT)
			continue;
		uint64_t end = i < t->nvmas ? plan->base + pv[i].off : top;
		if (end > at && munmap((void *)at, end - at) < 0)
			return cd_err_sys(err, errno, "unmap premapped %" PRIx64, at);
		if (i < t->nvmas)
			at = end + (t->vmas[i].end - t->vmas[i].start);
	}
	return 0;
}

static int map_slot(const struct cd_vma *v, uint64_t addr, cd_err *err)
{
	const int prot = PROT_READ | PROT_WRITE;
	uint64_t len = v->end - v->start;
	int noreserve = v->flags & CD_VMF_NORESERVE ? MAP_NORESERVE : 0;
	_cleanup_close_ int fd = -1;
	void *p;

	if (v->kind == CD_VMA_FILE) {
		fd = open(v->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return cd_err_sys(err, errno, "open %s", v->path);
		p = mmap((void *)addr, len, prot, MAP_PRIVATE | MAP_FIXED_NOREPLACE | noreserve, fd,
		         (off_t)v->pgoff);
	} else {
		p = mmap((void *)addr, len, prot,
		         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | noreserve, -1, 0);
	}
	if (p == MAP_FAILED)
		return cd_err_sys(err, errno, "premap at %" PRIx64, addr);
	return 0;
}

static int read_full(int fd, uint8_t *dst, uint64_t len, uint64_t off, cd_err *err)
{
	while (len) {
		ssize_t n = pread(fd, dst, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cd_err_sys(err, n < 0 ? errno : EIO, "read page file");
		dst += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

#define READ_STEP (4u << 20)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Faults a step's pages in with one call before it is read: the read then
 * copies into present pages instead of taking a fault per page in the
 * middle of its copy (docs/engine.md, "Restore reads, chosen by
 * measurement"). Best effort: where the kernel lacks it (EINVAL) or it
 * fails, the read faults the pages in as before, and reports what goes
 * wrong. */
static void populate(uint8_t *dst, uint64_t len)
{
	(void)madvise(dst, len, MADV_POPULATE_WRITE);
}

/* Pages [page, page+n) of an inherited slot that are not t's: dropped,
 * so anonymous memory reads zero again and a file mapping its file. */
static int drop_pages(uint64_t addr, uint64_t page, uint64_t n, cd_err *err)
{
	if (n && madvise((void *)(addr + page * PAGE), n * PAGE, MADV_DONTNEED) < 0)
		return cd_err_sys(err, errno, "drop premapped pages");
	return 0;
}

/* Readies the slot at addr for t's own pages: drops what an inherited
 * slot holds that is not t's, writes zero runs where zero does not show by
 * itself. The data runs are left to the steps (cd_mem_premap_read,
 * cd_mem_premap_help) or the stream threads (cd_mem_premap_fill). */
static int fill_slot(const struct cd_vma *v, bool inherited, uint64_t addr, cd_err *err)
{
	uint64_t at = 0, npages = (v->end - v->start) / PAGE;
	int r = 0;

	for (size_t i = 0; i < v->nruns && r >= 0; i++) {
		const struct cd_run *run = &v->runs[i];
		uint8_t *dst = (uint8_t *)(addr + run->page * PAGE);
		uint64_t len = run->npages * PAGE;
		if (inherited && (r = drop_pages(addr, at, run->page - at, err)) < 0)
			return r;
		at = run->page + run->npages;
		if (run->src == CD_RUN_ZERO && v->kind == CD_VMA_FILE) {
			memset(dst, 0, len);
		} else if (run->src == CD_RUN_ZERO && inherited) {
			r = drop_pages(addr, run->page, run->npages, err);
		}
	}
	if (r >= 0 && inherited)
		r = drop_pages(addr, at, npages - at, err);
	return r;
}

int cd_mem_premap(const struct cd_premap *plan, const struct cd_image *img, const struct cd_task *t,
                  cd_err *err)
{
	const struct cd_premap_vma *pv = plan->task[t - img->tasks];
	int r = drop_unkept(plan, t, pv, err);

	for (size_t i = 0; i < t->nvmas && r >= 0; i++) {
		const struct cd_vma *v = &t->vmas[i];
		uint64_t addr = plan->base + pv[i].off;
		if (pv[i].how == CD_PREMAP_NONE)
			continue;
		if (pv[i].how == CD_PREMAP_FRESH)
			r = map_slot(v, addr, err);
		if (r >= 0)
			r = fill_slot(v, pv[i].how == CD_PREMAP_INHERIT, addr, err);
		if (r < 0)
			r = cd_err_wrap(err, "premap %" PRIx64 "-%" PRIx64, v->start, v->end);
	}
	return r;
}

/* ---- the plain page file: steps taken by the task and the controller ----
 *
 * t's premapped data, cut in steps of READ_STEP bytes at most (never
 * across a data run), numbered in page file order. The task and a
 * controller thread each take the next step from a shared counter until
 * none is left: the task faults its step in and reads it into place, the
 * controller reads its step into a buffer and writes it in with
 * process_vm_writev. So the first touch of fresh memory (the kernel zeroing
 * each page, the host backing it) and the reads run on two cores at once
 * instead of one after the other (docs/engine.md, "Restore reads, chosen
 * by measurement"). Each side walks the steps in order with no allocation
 * (the task is a raw clone: no malloc there). */
struct step_walk {
	const struct cd_task *t;
	const struct cd_premap_vma *pv;
	/* streamed: steps only in chunks stored as they are, none across a
	 * chunk's end (the others are the stream threads') */
	const struct cd_page_stored *ps;
	int fd; /* not streamed: the plain page file */
	uint64_t base;
	size_t vi, ri; /* the mapping and run at the cursor */
	uint64_t in;   /* bytes of that run already stepped over */
	uint64_t off;  /* the run's offset in the page file */
	uint64_t idx;  /* the number of the step at the cursor */
};

static void step_walk_init(struct step_walk *w, const struct cd_premap *plan,
                           const struct cd_image *img, const struct cd_task *t)
{
	*w = (struct step_walk){
	    .t = t, .pv = plan->task[t - img->tasks], .fd = -1, .base = plan->base};
}

/* The same over t's stored records; false where it has none. */
static bool step_walk_stored(struct step_walk *w, const struct cd_premap *plan,
                             const struct cd_image *img, const struct cd_task *t)
{
	step_walk_init(w, plan, img, t);
	w->ps = plan->stored ? plan->stored[t - img->tasks] : NULL;
	return w->ps != NULL;
}

/* The length of the step at offset at of the page file, at most left
 * bytes; *ret_skip when it is not one (streamed: a compressed chunk). */
static uint64_t step_len(const struct step_walk *w, uint64_t at, uint64_t left, bool *ret_skip)
{
	uint64_t n = left < READ_STEP ? left : READ_STEP;

	*ret_skip = false;
	if (!w->ps)
		return n;
	uint64_t in_chunk = CD_STREAM_CHUNK - at % CD_STREAM_CHUNK;
	*ret_skip = !cd_page_stored_has(w->ps, at / CD_STREAM_CHUNK);
	return n < in_chunk ? n : in_chunk;
}

/* The step at the cursor, which moves past it; false: none left. */
static bool step_next(struct step_walk *w, struct cd_page_dest *ret)
{
	for (; w->vi < w->t->nvmas; w->vi++, w->ri = 0) {
		const struct cd_vma *v = &w->t->vmas[w->vi];
		if (w->pv[w->vi].how == CD_PREMAP_NONE) {
			w->off += w->pv[w->vi].data;
			continue;
		}
		for (; w->ri < v->nruns; w->ri++, w->in = 0) {
			const struct cd_run *run = &v->runs[w->ri];
			uint64_t len = run->npages * PAGE;
			if (run->src != CD_RUN_DATA)
				continue;
			while (w->in < len) {
				bool skip;
				uint64_t n = step_len(w, w->off + w->in, len - w->in, &skip);
				*ret = (struct cd_page_dest){w->off + w->in, n,
				                             w->base + w->pv[w->vi].off +
				                                 run->page * PAGE + w->in};
				w->in += n;
				if (skip)
					continue;
				w->idx++;
				return true;
			}
			w->off += len;
		}
	}
	return false;
}

/* Takes the next step from the shared counter *next: the cursor moves to
 * it (steps taken by the other side are passed over). */
static bool step_take(struct step_walk *w, uint32_t *next, struct cd_page_dest *ret)
{
	uint64_t k = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);

	if (k >= CD_PREMAP_STEPS_STOP)
		return false;
	while (w->idx < k)
		if (!step_next(w, ret))
			return false;
	return step_next(w, ret);
}

void cd_mem_premap_stop(uint32_t *next)
{
	__atomic_store_n(next, CD_PREMAP_STEPS_STOP, __ATOMIC_RELAXED);
}

bool cd_mem_premap_has_data(const struct cd_premap *plan, const struct cd_image *img,
                            const struct cd_task *t)
{
	struct step_walk w;
	struct cd_page_dest d;

	step_walk_init(&w, plan, img, t);
	return step_next(&w, &d);
}

void cd_mem_premap_populate(const struct cd_premap *plan, const struct cd_image *img,
                            const struct cd_task *t, const uint32_t *done)
{
	struct step_walk w;
	struct cd_page_dest d;

	step_walk_init(&w, plan, img, t);
	while (!__atomic_load_n(done, __ATOMIC_RELAXED) && step_next(&w, &d))
		populate((uint8_t *)(uintptr_t)d.to, d.len);
}

/* Reads the step d into dst, from the plain page file or, streamed, from
 * the stored record it is in. */
static int step_read(const struct step_walk *w, const struct cd_page_dest *d, uint8_t *dst,
                     cd_err *err)
{
	return w->ps ? cd_page_stored_read(w->ps, d->off, dst, (size_t)d->len, err)
	             : read_full(w->fd, dst, d->len, d->off, err);
}

/* The task's side of the steps: each faulted in, read into place and
 * summed (the controller takes the others, help_steps). */
static int read_steps(struct step_walk *w, uint32_t *next, struct cd_csum_part *csum, cd_err *err)
{
	struct cd_page_dest d;

	while (step_take(w, next, &d)) {
		uint8_t *dst = (uint8_t *)(uintptr_t)d.to;
		populate(dst, d.len);
		int r = step_read(w, &d, dst, err);
		if (r < 0) {
			cd_mem_premap_stop(next);
			return cd_err_wrap(err, "premapped memory at %" PRIx64, d.to);
		}
		cd_csum_part_add(csum, dst, (size_t)d.len, d.off, w->t->pages_size);
	}
	return 0;
}

int cd_mem_premap_read(const struct cd_premap *plan, const struct cd_image *img,
                       const struct cd_task *t, int pages_fd, uint32_t *next,
                       struct cd_csum_part *csum, cd_err *err)
{
	struct step_walk w;

	/* read in order, front to back: a larger read-ahead window keeps the
	 * disk ahead of the copies (best effort, as populate) */
	(void)posix_fadvise(pages_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	step_walk_init(&w, plan, img, t);
	w.fd = pages_fd;
	return read_steps(&w, next, csum, err);
}

int cd_mem_premap_read_stored(const struct cd_premap *plan, const struct cd_image *img,
                              const struct cd_task *t, uint32_t *next, struct cd_csum_part *csum,
                              cd_err *err)
{
	struct step_walk w;

	return step_walk_stored(&w, plan, img, t) ? read_steps(&w, next, csum, err) : 0;
}

/* Where t's premapped data goes in the new task: per data run of a
 * premapped mapping, its bytes of the page file and its slot address. */
static int premap_dests(const struct cd_premap *plan, const struct cd_image *img,
                        const struct cd_task *t, struct cd_page_dest **ret, size_t *ret_n,
                        cd_err *err)
{
	const struct cd_premap_vma *pv = plan->task[t - img->tasks];
	struct cd_page_dest *d;
	uint64_t off = 0;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < t->nvmas; i++)
		cap += t->vmas[i].nruns;
	if (!(d = calloc(cap + 1, sizeof(*d))))
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < t->nvmas; i++) {
		const struct cd_vma *v = &t->vmas[i];
		uint64_t addr = plan->base + pv[i].off;
		if (pv[i].how == CD_PREMAP_NONE) {
			off += pv[i].data;
			continue;
		}
		for (size_t j = 0; j < v->nruns; j++) {
			const struct cd_run *run = &v->runs[j];
			uint64_t len = run->npages * PAGE;
			if (run->src != CD_RUN_DATA)
				continue;
			d[n++] = (struct cd_page_dest){off, len, addr + run->page * PAGE};
			off += len;
		}
	}
	*ret = d;
	*ret_n = n;
	return 0;
}

/* Writes the pieces of a chunk into the new task, in one call where the
 * kernel takes them all (iovecs of IOV_MAX at most). */
static int put_task_pieces(void *arg, const struct cd_page_piece *p, size_t n, cd_err *err)
{
	pid_t pid = *(const pid_t *)arg;
	struct iovec local[64], remote[64];

	for (size_t i = 0; i < n;) {
		size_t k = 0;
		for (; k < ARRAY_SIZE(local) && i + k < n; k++) {
			local[k] = (struct iovec){(void *)p[i + k].src, p[i + k].len};
			remote[k] = (struct iovec){(void *)(uintptr_t)p[i + k].to, p[i + k].len};
		}
		uint64_t want = 0;
		for (size_t j = 0; j < k; j++)
			want += local[j].iov_len;
		ssize_t got = process_vm_writev(pid, local, k, remote, k, 0);
		if (got < 0)
			return cd_err_sys(err, errno, "write premapped pages of pid %d", pid);
		if ((uint64_t)got != want)
			return cd_err_set(err, EIO,
			                  "write premapped pages of pid %d: %zd of %" PRIu64, pid,
			                  got, want);
		i += k;
	}
	return 0;
}

/* Whether t's premapped data d is a small part of its page file, the rest
 * left to a lazy restore's server: then only that part is read. */
static bool fill_sparse(const struct cd_premap *plan, const struct cd_image *img,
                        const struct cd_task *t, const struct cd_page_dest *d, size_t n)
{
	const struct cd_premap_vma *pv = plan->task[t - img->tasks];
	uint64_t want = 0;
	bool lazy = false;

	for (size_t i = 0; plan->lazy && pv && i < t->nvmas; i++)
		lazy |= pv[i].lazy;
	for (size_t i = 0; i < n; i++)
		want += d[i].len;
	return lazy && want < t->pages_size / 4;
}

/* The controller's side of the steps: each read into a buffer and written
 * into task pid, summed while in the cache (the task takes the others,
 * read_steps). */
static int help_steps(struct step_walk *w, pid_t pid, uint32_t *next, struct cd_csum_part *csum,
                      cd_err *err)
{
	_cleanup_free_ uint8_t *buf = malloc(READ_STEP);
	struct cd_page_dest d;

	if (!buf) {
		cd_mem_premap_stop(next);
		return cd_err_set(err, ENOMEM, "out of memory");
	}
	while (step_take(w, next, &d)) {
		struct cd_page_piece pc = {buf, d.len, d.to};
		int r = step_read(w, &d, buf, err);
		if (r >= 0) {
			cd_csum_part_add(csum, buf, (size_t)d.len, d.off, w->t->pages_size);
			r = put_task_pieces(&pid, &pc, 1, err);
		}
		if (r < 0) {
			cd_mem_premap_stop(next);
			return r;
		}
	}
	return 0;
}

/* With a record index, eagerly: the stream threads decode the compressed
 * chunks while the task reads the stored ones in steps, then this thread
 * takes the stored steps the task has not (the way a plain page file is
 * read by both: docs/engine.md, "Parallel streams"). */
static int fill_stored(const struct cd_premap *plan, const struct cd_image *img, int dirfd,
                       const struct cd_task *t, pid_t pid, uint32_t *next,
                       const struct cd_page_dest *d, size_t n, struct cd_csum_part *csum,
                       cd_err *err)
{
	_cleanup_(cd_page_stored_freep) struct cd_page_stored *own = NULL;
	struct step_walk w;
	int r;

	step_walk_stored(&w, plan, img, t);
	r = cd_page_fill_coded(dirfd, t->pages_file, t->pages_size, &img->pages, d, n,
	                       put_task_pieces, &pid, csum, err);
	/* files of its own, as the plain file's helper has: the task's are the
	 * same open files (one read-ahead state for two readers at different
	 * places), which a microbenchmark found no slower (1 GiB, one shared
	 * fd 1.24-1.65 s, one each 1.25-1.54 s), but this way each reader's
	 * window follows its own reads */
	if (r >= 0)
		r = cd_page_stored_open(dirfd, t->pages_file, t->pages_size, &img->pages, &own,
		                        err);
	if (r < 0) {
		cd_mem_premap_stop(next);
		return r;
	}
	if (own)
		w.ps = own;
	return help_steps(&w, pid, next, csum, err);
}

int cd_mem_premap_fill(const struct cd_premap *plan, const struct cd_image *img, int dirfd,
                       const struct cd_task *t, pid_t pid, uint32_t *next,
                       struct cd_csum_part *csum, cd_err *err)
{
	_cleanup_free_ struct cd_page_dest *d = NULL;
	size_t n = 0;
	int r = premap_dests(plan, img, t, &d, &n, err);

	if (r < 0 || !n)
		return r;
	if (plan->stored && plan->stored[t - img->tasks]) {
		r = fill_stored(plan, img, dirfd, t, pid, next, d, n, csum, err);
		return r < 0 ? cd_err_wrap(err, "premapped memory of pid %d", t->pid) : 0;
	}
	/* lazily, most of the data is the server's: only what is wanted read */
	r = (fill_sparse(plan, img, t, d, n) ? cd_page_fill_sparse : cd_page_fill)(
	    dirfd, t->pages_file, t->pages_size, &img->pages, d, n, put_task_pieces, &pid, csum,
	    err);
	return r < 0 ? cd_err_wrap(err, "premapped memory of pid %d", t->pid) : 0;
}

int cd_mem_premap_help(const struct cd_premap *plan, const struct cd_image *img, int dirfd,
                       const struct cd_task *t, pid_t pid, uint32_t *next,
                       struct cd_csum_part *csum, cd_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, t->pages_file, O_RDONLY | O_CLOEXEC);
	struct step_walk w;
	int r;

	if (fd < 0) {
		r = cd_err_sys(err, errno, "open %s", t->pages_file);
		cd_mem_premap_stop(next);
		return r;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	step_walk_init(&w, plan, img, t);
	w.fd = fd;
	r = help_steps(&w, pid, next, csum, err);
	return r < 0 ? cd_err_wrap(err, "premapped memory of pid %d", t->pid) : 0;
}

/* Moves a premapped slot to its place (the pages and their sharing go with
 * it) and gives it its protection. */
static int move_premapped(struct cd_restore_ctx *ctx, const struct cd_vma *v,
                          const struct cd_premap_vma *pv, cd_err *err)
{
	uint64_t len = v->end - v->start;
	int r = cd_call_ok(ctx->inj, "mremap premapped", SYS_mremap, ctx->premap_base + pv->off,
	                   len, len, MREMAP_MAYMOVE | MREMAP_FIXED, v->start, 0, NULL, err);

	if (r >= 0 && v->prot != (PROT_READ | PROT_WRITE))
		r = cd_call_ok(ctx->inj, "mprotect", SYS_mprotect, v->start, len, (uint64_t)v->prot,
		               0, 0, 0, NULL, err);
	return r;
}

/* Mapping i of t's page data bytes, from the plan where there is one: the
 * reader steps over a premapped mapping's data (the task read and
 * checksummed it, cd_mem_premap) and a lazy one's (the server's). */
static uint64_t vma_data(const struct cd_restore_ctx *ctx, const struct cd_task *t, size_t i)
{
	return ctx->premap ? ctx->premap[i].data : cd_vma_data_bytes(&t->vmas[i]);
}

/* Puts mapping i of t in place with its contents: moved from its
 * premapped slot, or mapped and filled by injected calls. */
static int place_vma(struct cd_restore_ctx *ctx, struct cd_page_reader *pr, struct parent_pages *pp,
                     size_t depth, const struct cd_task *t, size_t i, uint64_t off, cd_err *err)
{
	const struct cd_vma *v = &t->vmas[i];
	int r;

	/* lazy: mapped empty, filled by the server once the tree runs */
	if (ctx->lazy && ctx->premap && ctx->premap[i].lazy) {
		if ((r = map_vma(ctx, v, err)) < 0 ||
		    (r = cd_pr_skip(pr, vma_data(ctx, t, i), err)) < 0)
			return r;
		return cd_lazy_register(ctx->lazy, ctx->inj, ctx->dirfd, t, v, off, err);
	}
	/* runs kept as text are a lazy server's to read (cd_vma.later) */
	if (v->later.text)
		return cd_err_set(err, EINVAL, "its runs were left to a lazy restore's server");

	if (ctx->premap && ctx->premap[i].how != CD_PREMAP_NONE) {
		if ((r = cd_pr_skip(pr, vma_data(ctx, t, i), err)) < 0 ||
		    (r = move_premapped(ctx, v, &ctx->premap[i], err)) < 0)
			return r;
		cd_progress_add(ctx->progress, vma_restore_bytes(v));
		return 0;
	}
	if ((r = map_vma(ctx, v, err)) < 0)
		return r;
	return fill_vma(ctx, pr, pp, depth, v, err);
}

static int mem_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	_cleanup_(cd_pr_freep) struct cd_page_reader *pr = NULL;
	struct parent_pages *pp = NULL;
	size_t depth = 0;
	uint64_t off = 0;
	bool lazy = false;
	int r;

	if ((r = cd_layout_move_vdso(ctx, t, err)) < 0 ||
	    (r = cd_layout_unmap_rest(ctx, t, err)) < 0 ||
	    (r = cd_pr_open_layout(ctx->dirfd, t->pages_file, t->pages_size, &ctx->img->pages, &pr,
	                           err)) < 0 ||
	    (r = list_ancestors(ctx, t, &pp, &depth, err)) < 0)
		return r;
	for (size_t i = 0; i < t->nvmas && r >= 0; i++) {
		const struct cd_vma *v = &t->vmas[i];
		r = place_vma(ctx, pr, pp, depth, t, i, off, err);
		if (r >= 0)
			r = finish_vma(ctx, v, err);
		lazy |= ctx->lazy && ctx->premap && ctx->premap[i].lazy;
		off += vma_data(ctx, t, i);
		if (r < 0)
			r = cd_err_wrap(err, "mapping %" PRIx64 "-%" PRIx64, v->start, v->end);
	}
	/* Every page is in and none has run: a bad one kills the tree here.
	 * Lazily, the server's pass checks the whole file instead. */
	if (r >= 0 && !lazy)
		r = cd_pr_check(pr, ctx->pages_csum, t->pages_csum, err);
	for (size_t i = 0; i < depth; i++)
		parent_pages_free(&pp[i]);
	free(pp);
	return r;
}

const struct cd_module cd_mod_mem = {.name = "memory", .dump = mem_dump, .restore = mem_restore};
