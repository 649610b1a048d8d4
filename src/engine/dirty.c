/* Which pages changed since the previous dump of a tree, without
 * soft-dirty bits (these kernels lack CONFIG_MEM_SOFT_DIRTY): per task a
 * userfaultfd with UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
 * made inside the task by an injected call (so it belongs to the task's
 * mm), taken out with pidfd_getfd and closed in the task again: the
 * program never sees it. Its private anonymous mappings are registered in
 * write-protect mode and their pages write-protected; a write then clears
 * the protection in the kernel itself (asynchronous mode: no fault reaches
 * anyone, no signal, no failed write). At the next dump the PAGEMAP_SCAN
 * ioctl lists the written pages and protects them again in one call.
 *
 * What is not tracked is dumped in full: mappings made since the last dump
 * (not registered), mappings registered by another userfaultfd (EBUSY),
 * private file mappings (MADV_DONTNEED there leaves a marker that pagemap
 * cannot tell from a swapped, unwritten page), and tasks new since then. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

/* Newer than the installed headers (Linux 6.7 and 6.6): the kernel's ABI. */
#define CD_UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#define CD_UFFD_FEATURE_WP_ASYNC       (1ULL << 15)

struct cd_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct cd_page_region {
	uint64_t start, end, categories;
};
#define CD_PAGEMAP_SCAN          _IOWR('f', 16, struct cd_pm_scan_arg)
#define CD_PM_SCAN_WP_MATCHING   (1ULL << 0)
#define CD_PM_SCAN_CHECK_WPASYNC (1ULL << 1)
#define CD_PAGE_IS_WRITTEN       (1ULL << 1)
#define CD_PAGE_IS_PRESENT       (1ULL << 3)
#define CD_PAGE_IS_SWAPPED       (1ULL << 4)
#define CD_PAGE_IS_GUARD         (1ULL << 8) /* Linux 6.14 */

/* The bits of a /proc/PID/pagemap entry (mem.c reads the same). */
#define PM_PRESENT   (1ULL << 63)
#define PM_SWAPPED   (1ULL << 62)
#define PM_GUARD     (1ULL << 58)
#define PM_EXCLUSIVE (1ULL << 56)

#define SCAN_VEC 1024

/* A task's written ranges, sorted, and which of its mappings were tracked. */
struct cd_dirty {
	struct cd_page_region *w;
	size_t n, cap;
	uint64_t *tracked; /* start of each tracked mapping, sorted */
	size_t ntracked;
};

/* The trackers of the dump running in this process (the engine runs one
 * at a time, single-threaded): the mappings they registered are not the
 * program's own userfaultfd registrations, which the dump refuses. */
static const struct cd_track *current;

bool cd_dirty_ours(pid_t pid, uint64_t start, uint64_t end)
{
	for (size_t i = 0; current && i < current->n; i++) {
		if (current->tasks[i].pid != pid)
			continue;
		/* the same userfaultfd may register it again; another gets EBUSY */
		struct uffdio_register reg = {.range = {start, end - start},
		                              .mode = UFFDIO_REGISTER_MODE_WP};
		return ioctl(current->tasks[i].uffd, UFFDIO_REGISTER, &reg) == 0;
	}
	return false;
}

void cd_track_clear(struct cd_track *tr)
{
	for (size_t i = 0; i < tr->n; i++)
		if (tr->tasks[i].uffd >= 0)
			close(tr->tasks[i].uffd);
	free(tr->tasks);
	*tr = (struct cd_track){0};
}

void cd_dirty_free(struct cd_dirty *d)
{
	if (!d)
		return;
	free(d->w);
	free(d->tracked);
	free(d);
}

void cd_dirty_state_free(struct cd_dirty_state *ds)
{
	current = NULL;
	cd_track_clear(&ds->next);
	free(ds->parent);
	ds->parent = NULL;
}

/* Field 22 of /proc/PID/stat: with the pid, names one process. */
static int start_time(pid_t pid, uint64_t *ret)
{
	char path[48], buf[1024];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return -errno;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	/* after the name: state is field 3, start time field 22 */
	for (int f = 2; p && f < 22; f++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%" SCNu64, ret) != 1)
		return -EINVAL;
	return 0;
}

int cd_dirty_init(struct cd_dirty_state *ds, const char *parent, struct cd_track *prev, cd_err *err)
{
	uint64_t hash;

	*ds = (struct cd_dirty_state){.prev = prev};
	if (!parent || !prev->n) {
		/* released now: their registrations would keep new ones out */
		cd_track_clear(prev);
		return 0;
	}
	_cleanup_close_ int dirfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* the trackers are of another image: a full dump, tracked afresh (the
	 * checksum alone: the bytes are the ones that dump wrote, or not) */
	if (dirfd < 0 || cd_image_manifest_hash(dirfd, &hash, &(cd_err){0}) < 0 ||
	    hash != prev->image_hash) {
		cd_track_clear(prev);
		return 0;
	}
	current = prev;
	if (!(ds->parent = strdup(parent)))
		return cd_err_set(err, ENOMEM, "out of memory");
	ds->parent_hash = hash;
	return 0;
}

static const struct cd_track_task *prev_tracker(const struct cd_dirty_state *ds, pid_t pid)
{
	uint64_t st = 0;

	if (!ds->parent)
		return NULL;
	for (size_t i = 0; i < ds->prev->n; i++)
		if (ds->prev->tasks[i].pid == pid)
			return start_time(pid, &st) == 0 && st == ds->prev->tasks[i].start_time
			           ? &ds->prev->tasks[i]
			           : NULL;
	return NULL;
}

static bool trackable(const struct cd_vma *v)
{
	return v->kind == CD_VMA_ANON && !v->shared && (v->prot & PROT_WRITE);
}

static int add_region(struct cd_dirty *d, const struct cd_page_region *r, cd_err *err)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 64;
		struct cd_page_region *w = realloc(d->w, cap * sizeof(*w));
		if (!w)
			return cd_err_set(err, ENOMEM, "out of memory");
		d->w = w;
		d->cap = cap;
	}
	d->w[d->n++] = *r;
	return 0;
}

/* PAGEMAP_SCAN over [start, end) of pm_fd: with category_mask, the pages
 * that match are write-protected again and, with out, listed there. 1
 * when the mapping is not registered for asynchronous write-protect. */
static int scan(int pm_fd, uint64_t start, uint64_t end, uint64_t anyof, uint64_t mask,
                struct cd_dirty *out, cd_err *err)
{
	struct cd_page_region vec[SCAN_VEC];

	while (start < end) {
		struct cd_pm_scan_arg a = {.size = sizeof(a),
		                           .flags =
		                               CD_PM_SCAN_WP_MATCHING | CD_PM_SCAN_CHECK_WPASYNC,
		                           .start = start,
		                           .end = end,
		                           .vec = (uint64_t)(uintptr_t)vec,
		                           .vec_len = SCAN_VEC,
		                           .category_mask = mask,
		                           .category_anyof_mask = anyof,
		                           .return_mask = mask | anyof};
		long n = ioctl(pm_fd, CD_PAGEMAP_SCAN, &a);
		if (n < 0 && errno == EPERM)
			return 1;
		if (n < 0)
			return cd_err_sys(err, errno, "PAGEMAP_SCAN %" PRIx64 "-%" PRIx64, start,
			                  end);
		for (long i = 0; out && i < n; i++) {
			int r = add_region(out, &vec[i], err);
			if (r < 0)
				return r;
		}
		if (a.walk_end <= start)
			return cd_err_set(err, EIO, "PAGEMAP_SCAN made no progress at %" PRIx64,
			                  start);
		start = a.walk_end;
	}
	return 0;
}

static int open_pagemap(pid_t pid, cd_err *err)
{
	char path[48];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return cd_err_sys(err, errno, "open %s", path);
	return fd;
}

static int scan_task(const struct cd_task *t, struct cd_dirty *d, cd_err *err)
{
	_cleanup_close_ int pm_fd = open_pagemap(t->pid, err);

	if (pm_fd < 0)
		return pm_fd;
	d->tracked = calloc(t->nvmas + 1, sizeof(*d->tracked));
	if (!d->tracked)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < t->nvmas; i++) {
		const struct cd_vma *v = &t->vmas[i];
		if (!trackable(v))
			continue;
		int r = scan(pm_fd, v->start, v->end, 0, CD_PAGE_IS_WRITTEN, d, err);
		if (r < 0)
			return r;
		if (r == 0)
			d->tracked[d->ntracked++] = v->start;
	}
	return 0;
}

int cd_dirty_scan(struct cd_dirty_state *ds, const struct cd_task *t, struct cd_dirty **ret,
                  cd_err *err)
{
	*ret = NULL;
	if (!prev_tracker(ds, t->pid))
		return 0;
	struct cd_dirty *d = calloc(1, sizeof(*d));
	if (!d)
		return cd_err_set(err, ENOMEM, "out of memory");
	int r = scan_task(t, d, err);
	if (r < 0) {
		cd_dirty_free(d);
		return cd_err_wrap(err, "pid %d: written pages", t->pid);
	}
	*ret = d;
	return 0;
}

static bool sorted_has(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo] == x;
}

bool cd_dirty_tracked(const struct cd_dirty *d, const struct cd_vma *v)
{
	return d && sorted_has(d->tracked, d->ntracked, v->start);
}

/* The entries of the pages of region r that lie in [addr, addr + cnt
 * pages). */
static void region_entries(const struct cd_page_region *r, uint64_t addr, uint64_t cnt,
                           bool exclusive, uint64_t *pm)
{
	uint64_t e = r->categories & CD_PAGE_IS_GUARD ? PM_SWAPPED | PM_GUARD
	             : r->categories & CD_PAGE_IS_PRESENT
	                 ? PM_PRESENT | (exclusive ? PM_EXCLUSIVE : 0)
	                 : PM_SWAPPED;
	uint64_t from = r->start > addr ? (r->start - addr) / CD_PAGE_SIZE : 0;
	uint64_t to = (r->end - addr) / CD_PAGE_SIZE;

	for (uint64_t i = from; i < to && i < cnt; i++)
		pm[i] = e;
}

int cd_dirty_pagemap(int pm_fd, uint64_t addr, uint64_t cnt, bool exclusive, uint64_t *pm,
                     cd_err *err)
{
	struct cd_page_region vec[SCAN_VEC];
	const uint64_t cats = CD_PAGE_IS_PRESENT | CD_PAGE_IS_SWAPPED | CD_PAGE_IS_GUARD;
	uint64_t start = addr, end = addr + cnt * CD_PAGE_SIZE;

	memset(pm, 0, cnt * sizeof(*pm));
	while (start < end) {
		/* no write-protect: only a look (a guard page is swapped too) */
		struct cd_pm_scan_arg a = {.size = sizeof(a),
		                           .start = start,
		                           .end = end,
		                           .vec = (uint64_t)(uintptr_t)vec,
		                           .vec_len = SCAN_VEC,
		                           .category_anyof_mask = cats,
		                           .return_mask = cats};
		long n = ioctl(pm_fd, CD_PAGEMAP_SCAN, &a);
		if (n < 0 && errno == EINVAL)
			return 1;
		if (n < 0)
			return cd_err_sys(err, errno, "PAGEMAP_SCAN %" PRIx64 "-%" PRIx64, start,
			                  end);
		for (long i = 0; i < n; i++)
			region_entries(&vec[i], addr, cnt, exclusive, pm);
		if (a.walk_end <= start)
			return cd_err_set(err, EIO, "PAGEMAP_SCAN made no progress at %" PRIx64,
			                  start);
		start = a.walk_end;
	}
	return 0;
}

/* The first written range that ends after addr (d->n: none). */
static size_t written_from(const struct cd_dirty *d, uint64_t addr)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->w[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool cd_dirty_unchanged(const struct cd_dirty *d, const struct cd_vma *v, uint64_t addr,
                        struct cd_dirty_cursor *c)
{
	if (!d)
		return false;
	/* searched once per mapping (and should the order ever go back) */
	if (c->v != v || addr < c->last) {
		c->v = v;
		c->tracked = sorted_has(d->tracked, d->ntracked, v->start);
		c->at = written_from(d, addr);
	}
	c->last = addr;
	if (!c->tracked)
		return false;
	while (c->at < d->n && d->w[c->at].end <= addr)
		c->at++;
	return !(c->at < d->n && d->w[c->at].start <= addr);
}

/* A userfaultfd made inside the task, taken out and closed there
 * (cd_uffd_from_task), in write-protect-async mode. */
static int take_uffd(cd_inject *inj, pid_t pid, int *ret, cd_err *err)
{
	int ours;
	int r =
	    cd_uffd_from_task(inj, pid, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, &ours, err);

	if (r < 0)
		return r;
	struct uffdio_api api = {
	    .api = UFFD_API, .features = CD_UFFD_FEATURE_WP_ASYNC | CD_UFFD_FEATURE_WP_UNPOPULATED};
	if (ioctl(ours, UFFDIO_API, &api) < 0) {
		int e = errno;
		close(ours);
		return cd_err_sys(err, e, "userfaultfd write-protect-async");
	}
	*ret = ours;
	return 0;
}

/* Registers the mappings not tracked yet and protects their pages (those
 * present or swapped: an unpopulated page counts as protected). */
static int register_vmas(int uffd, const struct cd_task *t, const struct cd_dirty *d, cd_err *err)
{
	_cleanup_close_ int pm_fd = open_pagemap(t->pid, err);

	if (pm_fd < 0)
		return pm_fd;
	for (size_t i = 0; i < t->nvmas; i++) {
		const struct cd_vma *v = &t->vmas[i];
		if (!trackable(v) || (d && sorted_has(d->tracked, d->ntracked, v->start)))
			continue;
		struct uffdio_register reg = {.range = {v->start, v->end - v->start},
		                              .mode = UFFDIO_REGISTER_MODE_WP};
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
			/* the program's own userfaultfd has it: left to it, dumped in full */
			if (errno == EBUSY || errno == EINVAL)
				continue;
			return cd_err_sys(err, errno, "register %" PRIx64 "-%" PRIx64, v->start,
			                  v->end);
		}
		/* its VmFlags now have "uw", which /proc/PID/maps does not show */
		cd_proc_maps_forget(t->pid);
		int r = scan(pm_fd, v->start, v->end, CD_PAGE_IS_PRESENT | CD_PAGE_IS_SWAPPED, 0,
		             NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int track_task(struct cd_dirty_state *ds, cd_inject *inj, const struct cd_task *t,
                      const struct cd_dirty *d, cd_err *err)
{
	const struct cd_track_task *old = prev_tracker(ds, t->pid);
	struct cd_track_task tt = {.pid = t->pid, .uffd = -1};
	int r;

	if (start_time(t->pid, &tt.start_time) < 0)
		return cd_err_set(err, ESRCH, "no start time");
	if (old && d && (tt.uffd = fcntl(old->uffd, F_DUPFD_CLOEXEC, 3)) >= 0 &&
	    register_vmas(tt.uffd, t, d, err) < 0) {
		/* the old one's mm is gone (execve): a new one for the new mm */
		close(tt.uffd);
		tt.uffd = -1;
	}
	if (tt.uffd < 0) {
		if ((r = take_uffd(inj, t->pid, &tt.uffd, err)) < 0)
			return r;
		if ((r = register_vmas(tt.uffd, t, NULL, err)) < 0) {
			close(tt.uffd);
			return r;
		}
	}
	struct cd_track_task *nt = realloc(ds->next.tasks, (ds->next.n + 1) * sizeof(*nt));
	if (!nt) {
		close(tt.uffd);
		return cd_err_set(err, ENOMEM, "out of memory");
	}
	ds->next.tasks = nt;
	nt[ds->next.n++] = tt;
	return 0;
}

void cd_dirty_track(struct cd_dirty_state *ds, cd_inject *inj, const struct cd_task *t,
                    const struct cd_dirty *d)
{
	cd_err err = {0};

	/* never fails the dump: the next one is full instead */
	(void)track_task(ds, inj, t, d, &err);
}
