/* The chain of images behind an incremental image (docs/image-format.md,
 * "Incremental images"): its runs of CD_RUN_PREV are the pages the same
 * task had at the same address in its parent image, which may say the
 * same of its own parent, and so on. The chain is opened and checked
 * whole before any task exists: each parent must be there, its manifest
 * exactly the one its child names (checksum of the bytes), its page files
 * whole (their checksums, read in full here since a restore reads them
 * only in part). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/pageio.h"
#include "shared/cleanup.h"
#include "shared/fsid.h"

/* The runs of one task of one level, by address, with page file offsets. */
struct chain_ent {
	uint64_t start, end, off;
	uint8_t src;
};

struct chain_task {
	pid_t pid;
	struct chain_ent *e;
	size_t n;
	struct cd_page_reader *pr;
};

struct chain_level {
	struct cd_image img;
	int dirfd;
	struct chain_task *tasks; /* indexed as img.tasks, built on first use */
};

struct cd_chain {
	struct chain_level *lv; /* lv[0] is the image's parent */
	size_t n;
};

void cd_chain_free(struct cd_chain *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		struct chain_level *l = &c->lv[i];
		for (size_t k = 0; l->tasks && k < l->img.ntasks; k++) {
			free(l->tasks[k].e);
			cd_pr_free(l->tasks[k].pr);
		}
		free(l->tasks);
		cd_image_free(&l->img);
		if (l->dirfd >= 0)
			close(l->dirfd);
	}
	free(c->lv);
	free(c);
}

/* Opens one parent and checks it against what its child says of it. */
static int open_level(struct chain_level *l, const char *dir, uint64_t want_hash, cd_err *err)
{
	uint64_t hash;
	int r;

	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0)
		return cd_err_sys(err, errno, "parent image %s", dir);
	if ((r = cd_image_read_manifest_hashed(l->dirfd, &l->img, &hash, err)) < 0)
		return cd_err_wrap(err, "parent image %s", dir);
	if (hash != want_hash)
		return cd_err_set(err, EINVAL,
		                  "parent image %s is not the one this checkpoint was made on "
		                  "(its manifest changed or was replaced)",
		                  dir);
	if ((r = cd_image_verify_pages(&l->img, l->dirfd, NULL, err)) < 0)
		return cd_err_wrap(err, "parent image %s", dir);
	l->tasks = calloc(l->img.ntasks + 1, sizeof(*l->tasks));
	if (!l->tasks)
		return cd_err_set(err, ENOMEM, "out of memory");
	return 0;
}

static int open_chain(const struct cd_image *img, struct cd_chain *c, cd_err *err)
{
	const struct cd_image *cur = img;
	int r;

	while (cur->parent) {
		if (c->n == CD_MAX_CHAIN)
			return cd_err_set(err, ELOOP,
			                  "more than %d parent images behind this checkpoint",
			                  CD_MAX_CHAIN);
		struct chain_level *l = &c->lv[c->n];
		l->dirfd = -1;
		c->n++;
		if ((r = open_level(l, cur->parent, cur->parent_hash, err)) < 0)
			return r;
		cur = &l->img;
	}
	return 0;
}

int cd_chain_open(const struct cd_image *img, const struct cd_fs_identity *open_as,
                  struct cd_chain **ret, cd_err *err)
{
	struct fsid_saved saved;
	int r;

	*ret = NULL;
	if (!img->parent)
		return 0;
	struct cd_chain *c = calloc(1, sizeof(*c));
	if (!c || !(c->lv = calloc(CD_MAX_CHAIN, sizeof(*c->lv)))) {
		free(c);
		return cd_err_set(err, ENOMEM, "out of memory");
	}
	/* a user's checkpoint reaches its parents with the user's rights */
	if (open_as && (r = fsid_enter(open_as, &saved, err)) < 0) {
		cd_chain_free(c);
		return r;
	}
	r = open_chain(img, c, err);
	if (open_as)
		fsid_leave(&saved);
	if (r < 0) {
		cd_chain_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

/* The runs of task ti of level l, by address (mappings are sorted, and
 * runs within them). */
static int task_runs(struct chain_level *l, size_t ti, cd_err *err)
{
	struct chain_task *ct = &l->tasks[ti];
	const struct cd_task *t = &l->img.tasks[ti];
	uint64_t off = 0;
	size_t n = 0;
	int r;

	if (ct->pr)
		return 0;
	for (size_t i = 0; i < t->nvmas; i++)
		n += t->vmas[i].nruns;
	if (!(ct->e = calloc(n + 1, sizeof(*ct->e))))
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < t->nvmas; i++) {
		for (size_t j = 0; j < t->vmas[i].nruns; j++) {
			const struct cd_run *run = &t->vmas[i].runs[j];
			uint64_t start = t->vmas[i].start + run->page * CD_PAGE_SIZE;
			ct->e[ct->n++] = (struct chain_ent){
			    start, start + run->npages * CD_PAGE_SIZE, off, run->src};
			if (run->src == CD_RUN_DATA)
				off += run->npages * CD_PAGE_SIZE;
		}
	}
	ct->pid = t->pid;
	if ((r = cd_pr_open_layout(l->dirfd, t->pages_file, t->pages_size, &l->img.pages, &ct->pr,
	                           err)) < 0)
		return r;
	return 0;
}

/* The first run that ends after addr (NULL: none). */
static const struct chain_ent *run_from(const struct chain_task *ct, uint64_t addr)
{
	size_t lo = 0, hi = ct->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ct->e[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ct->n ? &ct->e[lo] : NULL;
}

static int fill_at(struct cd_chain *c, size_t lvl, pid_t pid, uint64_t addr, uint64_t len,
                   unsigned hops, cd_chain_write_fn write, void *arg, cd_err *err);

/* len bytes at page file offset off, written to addr a chunk of the
 * layout at most at once: a streamed reader decodes into a window as big
 * as what it is asked for, so a whole run asked at once would hold a
 * decoded copy of it (memory growing with the largest run). */
static int fill_data(struct cd_page_reader *pr, uint64_t off, uint64_t addr, uint64_t len,
                     cd_chain_write_fn write, void *arg, cd_err *err)
{
	while (len) {
		uint64_t n = CD_STREAM_CHUNK - off % CD_STREAM_CHUNK;
		const void *src;
		int r;

		n = n < len ? n : len;
		if ((r = cd_pr_at(pr, off, n, &src, err)) < 0 ||
		    (r = write(arg, addr, src, n, err)) < 0)
			return r;
		off += n;
		addr += n;
		len -= n;
	}
	return 0;
}

/* Pages [addr, addr+len) as one run of level lvl holds them. */
static int fill_run(struct cd_chain *c, size_t lvl, const struct cd_task *t,
                    const struct chain_task *ct, const struct chain_ent *e, uint64_t addr,
                    uint64_t len, unsigned hops, cd_chain_write_fn write, void *arg, cd_err *err)
{
	switch (e->src) {
	case CD_RUN_DATA:
		return fill_data(ct->pr, e->off + (addr - e->start), addr, len, write, arg, err);
	case CD_RUN_PREV:
		return fill_at(c, lvl + 1, t->pid, addr, len, hops, write, arg, err);
	case CD_RUN_PARENT:
		/* shared copy-on-write with its parent task in that image */
		return fill_at(c, lvl, t->ppid, addr, len, hops + 1, write, arg, err);
	default:
		return 0; /* zero (or a guard then): fresh memory is zero */
	}
}

static int fill_at(struct cd_chain *c, size_t lvl, pid_t pid, uint64_t addr, uint64_t len,
                   unsigned hops, cd_chain_write_fn write, void *arg, cd_err *err)
{
	if (lvl >= c->n)
		return cd_err_set(
		    err, EINVAL, "page %" PRIx64 " of pid %d: no parent image holds it", addr, pid);
	struct chain_level *l = &c->lv[lvl];
	struct cd_task *t = cd_image_task(&l->img, pid);
	int r;

	if (!t || t->zombie || hops > CD_MAX_TASKS)
		return cd_err_set(err, EINVAL,
		                  "page %" PRIx64 ": pid %d is not in parent image %zu", addr, pid,
		                  lvl + 1);
	if ((r = task_runs(l, (size_t)(t - l->img.tasks), err)) < 0)
		return r;
	const struct chain_task *ct = &l->tasks[t - l->img.tasks];
	for (uint64_t end = addr + len; addr < end;) {
		const struct chain_ent *e = run_from(ct, addr);
		/* not stored there: the page was not present then, so zero */
		if (!e || e->start >= end)
			return 0;
		if (e->start > addr)
			addr = e->start;
		uint64_t to = e->end < end ? e->end : end;
		if ((r = fill_run(c, lvl, t, ct, e, addr, to - addr, hops, write, arg, err)) < 0)
			return r;
		addr = to;
	}
	return 0;
}

int cd_chain_fill(struct cd_chain *c, pid_t pid, uint64_t addr, uint64_t len,
                  cd_chain_write_fn write, void *arg, cd_err *err)
{
	if (!c)
		return cd_err_set(err, EINVAL, "pages from a parent image, but none is open");
	return fill_at(c, 0, pid, addr, len, 0, write, arg, err);
}
