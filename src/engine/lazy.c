/* Lazy restore (docs/engine.md, "Lazy restore"): the tree runs before its
 * private anonymous memory is filled. Each such mapping is registered with
 * a userfaultfd made inside its task by an injected call and taken out of
 * it (the task never sees it). The server (cd_lazy_serve, run by the
 * caller once the tree is released) answers missing faults from the page
 * files and copies every remaining page in a background pass that reads
 * each page file once, in order, checksumming it; on a bad checksum or a
 * read error it kills the tree.
 *
 * Per task the server keeps the ranges still to be filled, by address,
 * with their page file offset. The program may change its memory while
 * the pass runs: forks (UFFD_FEATURE_EVENT_FORK: the child gets a copy of
 * its parent's ranges: what the parent had filled it inherited), munmap
 * and madvise(MADV_DONTNEED/REMOVE) (EVENT_UNMAP/REMOVE: the range is
 * dropped, to read zero as it would) and mremap (EVENT_REMAP: the ranges
 * move with it). A copy that races such a change fails with EAGAIN until
 * its event is read, so events are always read before a copy is retried. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "engine/image-fields.h"
#include "engine/internal.h"
#include "engine/lazy-ranges.h"
#include "engine/pageio.h"
#include "shared/cleanup.h"

#define PAGE       CD_PAGE_SIZE
#define LAZY_CHUNK (4u << 20)  /* page file read step of the pass */
#define LAZY_COPY  (1u << 20)  /* one UFFDIO_COPY of the pass */
#define LAZY_FAULT (64u << 10) /* filled around a fault: most touch on */
#define LAZY_AHEAD 8u          /* chunks the disk reads ahead of the pass */

#define LAZY_FEATURES                                                                              \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |          \
	 UFFD_FEATURE_EVENT_UNMAP)

/* A mapping whose runs are still text (cd_vma.later): its ranges are made
 * when it is first needed (a fault in it, an event of its mm, the pass),
 * most often after the release, not before the tree runs. */
struct lz_later {
	uint64_t start, end, off; /* off: of its data in the page file */
	const char *text;         /* in text of struct cd_lazy */
	size_t len, ndata;
};

/* One mm the server fills: an image task's, or a fork of one. */
struct lz_mm {
	int uffd;
	size_t file;             /* index in files */
	struct cd_lazy_ranges r; /* still to be filled */
	struct lz_later *later;  /* not yet in r */
	size_t nlater;
};

struct lz_file {
	int fd;
	pid_t pid; /* the image task; its pidfd kills it and what it forked */
	int pidfd;
	uint64_t size, csum;
	/* the page file, mapped: copied from without a read into a buffer */
	const uint8_t *map;
	/* streamed (--streams): no file to map; the pass and the faults each
	 * decode what they need into a reader's window of their own, so that a
	 * fault answered in the middle of the pass's chunk does not move it */
	struct cd_page_reader *pass_pr, *fault_pr;
	uint64_t hint; /* the chunk the pass goes on with: after a fault, its */
	/* a copy: the server outlives the image it was planned from */
	char name[sizeof(((struct cd_task *)0)->pages_file)];
};

struct cd_lazy {
	struct lz_mm *mm;
	size_t nmm;
	struct lz_file *files;
	size_t nfiles;
	/* the chunk the pass copies, at cur_src: a fault there gets more at
	 * once, from there */
	size_t cur_file;
	uint64_t cur_off, cur_len;
	const uint8_t *cur_src;
	/* the manifest's text, which lz_later points into: the image's until
	 * the restore hands the server over (cd_lazy_keep_text) */
	char *text;
	struct cd_page_layout layout; /* of every page file */
	uint64_t bytes;               /* page data left to the server */
	/* While the restore goes on, faults are answered by a thread of the
	 * controller (an injected call may touch a registered page), under mu;
	 * cd_lazy_handover stops it. wake (an eventfd) has it poll again at
	 * once: a new task's userfaultfd, or the stop. */
	pthread_mutex_t mu;
	pthread_t th;
	int wake;
	bool running, stop;
};

bool cd_lazy_vma(const struct cd_vma *v)
{
	bool data = false;

	/* the reader kept only such a mapping's runs as text */
	if (v->later.text)
		return true;
	/* a guard, parent or previous-checkpoint run is filled otherwise */
	if (!cd_vma_lazy_able(v))
		return false;
	for (size_t i = 0; i < v->nruns; i++) {
		if (v->runs[i].src != CD_RUN_DATA && v->runs[i].src != CD_RUN_ZERO)
			return false;
		data |= v->runs[i].src == CD_RUN_DATA;
	}
	return data;
}

int cd_lazy_new(struct cd_lazy **ret, cd_err *err)
{
	struct cd_lazy *lz = calloc(1, sizeof(*lz));

	if (!lz)
		return cd_err_set(err, ENOMEM, "out of memory");
	if ((lz->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		int e = errno;
		free(lz);
		return cd_err_sys(err, e, "eventfd for the lazy restore's server");
	}
	pthread_mutex_init(&lz->mu, NULL);
	lz->layout = (struct cd_page_layout){.streams = 1, .codec = CD_CODEC_NONE};
	*ret = lz;
	return 0;
}

void cd_lazy_set_layout(struct cd_lazy *lz, const struct cd_page_layout *l)
{
	if (lz && l)
		lz->layout = *l;
}

static void mm_close(struct lz_mm *m)
{
	if (m->uffd >= 0)
		close(m->uffd);
	m->uffd = -1;
	cd_lr_free(&m->r);
	free(m->later);
	m->later = NULL;
	m->nlater = 0;
}

void cd_lazy_free(struct cd_lazy *lz)
{
	if (!lz)
		return;
	cd_lazy_handover(lz);
	for (size_t i = 0; i < lz->nmm; i++)
		mm_close(&lz->mm[i]);
	for (size_t i = 0; i < lz->nfiles; i++) {
		if (lz->files[i].fd >= 0)
			close(lz->files[i].fd);
		if (lz->files[i].pidfd >= 0)
			close(lz->files[i].pidfd);
		if (lz->files[i].map)
			munmap((void *)lz->files[i].map, lz->files[i].size);
		cd_pr_free(lz->files[i].pass_pr);
		cd_pr_free(lz->files[i].fault_pr);
	}
	close(lz->wake);
	free(lz->text);
	free(lz->mm);
	free(lz->files);
	free(lz);
}

uint64_t cd_lazy_bytes(const struct cd_lazy *lz)
{
	return lz ? lz->bytes : 0;
}

void cd_lazy_keep_text(struct cd_lazy *lz, char *text)
{
	free(lz->text);
	lz->text = text;
}

/* ---- at restore, in the controller ---- */

/* A userfaultfd made inside the task (it belongs to the task's mm) with
 * flags, taken out with pidfd_getfd and closed in the task again: the
 * program never sees it. Also the incremental trackers' (dirty.c). */
int cd_uffd_from_task(cd_inject *inj, pid_t pid, int flags, int *ret, cd_err *err)
{
	long fd, ignored;
	int r = cd_call_ok(inj, "userfaultfd", SYS_userfaultfd, (uint64_t)flags, 0, 0, 0, 0, 0, &fd,
	                   err);

	if (r < 0)
		return r;
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int ours = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
	int e = errno;
	/* the program must not see it, whatever happened here */
	r = cd_call(inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err);
	if (ours < 0)
		return cd_err_sys(err, e, "take the userfaultfd out of the task");
	if (r < 0) {
		close(ours);
		return r;
	}
	*ret = ours;
	return 0;
}

/* Opens t's page data for f: a plain file is mapped, streams get two
 * readers. Either stays open until the pass ends, even once the caller
 * removes an unpacked image. */
static int open_pages(const struct cd_lazy *lz, struct lz_file *f, int dirfd,
                      const struct cd_task *t, cd_err *err)
{
	int r;

	if (!cd_page_layout_plain(&lz->layout)) {
		if ((r = cd_pr_open_layout(dirfd, t->pages_file, t->pages_size, &lz->layout,
		                           &f->pass_pr, err)) < 0 ||
		    (r = cd_pr_open_layout(dirfd, t->pages_file, t->pages_size, &lz->layout,
		                           &f->fault_pr, err)) < 0)
			return r;
		/* faults jump: no read-ahead of what the pass will read anyway */
		cd_pr_advise_random(f->fault_pr);
		return 0;
	}
	if ((f->fd = openat(dirfd, t->pages_file, O_RDONLY | O_CLOEXEC)) < 0)
		return cd_err_sys(err, errno, "open %s", t->pages_file);
	struct stat st;
	if (fstat(f->fd, &st) < 0)
		return cd_err_sys(err, errno, "stat %s", t->pages_file);
	if ((uint64_t)st.st_size != f->size)
		return cd_err_set(err, EINVAL, "%s: %" PRIu64 " bytes, not %" PRIu64, t->pages_file,
		                  (uint64_t)st.st_size, f->size);
	/* the kernel reads a missing source page during UFFDIO_COPY; a read
	 * error there is EFAULT, reported (the checksum's are caught, mapped_sum) */
	void *p = f->size ? mmap(NULL, f->size, PROT_READ, MAP_SHARED, f->fd, 0) : NULL;
	if (p == MAP_FAILED)
		return cd_err_sys(err, errno, "map %s", t->pages_file);
	f->map = p;
	return 0;
}

static int add_task(struct cd_lazy *lz, cd_inject *inj, int dirfd, const struct cd_task *t,
                    cd_err *err)
{
	struct lz_file *f = realloc(lz->files, (lz->nfiles + 1) * sizeof(*f));
	struct lz_mm *m;
	int r;

	if (!f)
		return cd_err_set(err, ENOMEM, "out of memory");
	lz->files = f;
	f = &lz->files[lz->nfiles];
	*f = (struct lz_file){
	    .fd = -1, .pidfd = -1, .pid = t->pid, .size = t->pages_size, .csum = t->pages_csum};
	snprintf(f->name, sizeof(f->name), "%s", t->pages_file);
	lz->nfiles++;
	if ((r = open_pages(lz, f, dirfd, t, err)) < 0)
		return r;
	if ((f->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0)) < 0)
		return cd_err_sys(err, errno, "pidfd_open %d", t->pid);
	m = realloc(lz->mm, (lz->nmm + 1) * sizeof(*m));
	if (!m)
		return cd_err_set(err, ENOMEM, "out of memory");
	lz->mm = m;
	m = &lz->mm[lz->nmm++];
	*m = (struct lz_mm){.uffd = -1, .file = lz->nfiles - 1};
	/* not UFFD_USER_MODE_ONLY: a system call that reads a page not yet
	 * filled must wait for it as a user access does, not fail with EFAULT */
	if ((r = cd_uffd_from_task(inj, t->pid, O_CLOEXEC | O_NONBLOCK, &m->uffd, err)) < 0)
		return r;
	struct uffdio_api api = {.api = UFFD_API, .features = LAZY_FEATURES};
	if (ioctl(m->uffd, UFFDIO_API, &api) < 0)
		return cd_err_sys(err, errno, "userfaultfd events for lazy restore");
	/* room for the ranges of every mapping of t that may be lazy, at
	 * once: grown mapping by mapping, the largest was copied again */
	size_t ndata = 0;
	for (size_t i = 0; i < t->nvmas; i++) {
		const struct cd_vma *v = &t->vmas[i];
		if (!cd_lazy_vma(v))
			continue;
		/* (those kept as text get theirs when they are made) */
		for (size_t j = 0; j < v->nruns; j++)
			ndata += v->runs[j].src == CD_RUN_DATA;
	}
	if (cd_lr_reserve(&m->r, ndata) < 0)
		return cd_err_set(err, ENOMEM, "out of memory");
	return 0;
}

static int later_add(struct cd_lazy *lz, struct lz_mm *m, const struct cd_vma *v, uint64_t off)
{
	struct lz_later *l = realloc(m->later, (m->nlater + 1) * sizeof(*l));

	if (!l)
		return -ENOMEM;
	m->later = l;
	m->later[m->nlater++] =
	    (struct lz_later){v->start, v->end, off, v->later.text, v->later.len, v->later.ndata};
	lz->bytes += v->later.data_pages * PAGE;
	return 0;
}

/* The data runs of l's text into s, in address and file order. The text
 * was checked when the manifest was read (image-task.c, runs_keep_text). */
static int later_ranges(const struct lz_later *l, struct cd_lazy_ranges *s)
{
	struct cd_runs_text t = {l->text, l->text + l->len, 0};
	uint64_t off = l->off;
	int64_t x[3];
	int r;

	while ((r = cd_runs_text_next(&t, x)) > 0) {
		uint64_t len = (uint64_t)x[1] * PAGE;
		if (x[2] != CD_RUN_DATA)
			continue; /* a missing page reads zero: served as one */
		if (cd_lr_add(
		        s, &(struct cd_lazy_range){l->start + (uint64_t)x[0] * PAGE, len, off}) < 0)
			return -ENOMEM;
		off += len;
	}
	return r < 0 ? -EINVAL : 0;
}

#define LATER_ALL UINT64_MAX

static bool later_wanted(const struct lz_later *l, uint64_t at)
{
	return at == LATER_ALL || (at >= l->start && at < l->end);
}

/* m's ranges of the mappings still kept as text that hold at, or all of
 * them (LATER_ALL): an event may move or drop any range, and the pass
 * fills them all. Made once each. */
static int mm_make_later(struct lz_mm *m, uint64_t at, cd_err *err)
{
	struct cd_lazy_ranges add = {0};
	size_t ndata = 0, k = 0;
	int r = 0;

	for (size_t i = 0; i < m->nlater; i++)
		if (later_wanted(&m->later[i], at))
			ndata += m->later[i].ndata;
	if (!ndata)
		return 0;
	if (cd_lr_reserve(&add, ndata) < 0)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < m->nlater; i++) {
		if (!later_wanted(&m->later[i], at))
			m->later[k++] = m->later[i];
		else
			r = later_ranges(&m->later[i], &add);
	}
	if (r >= 0 && !m->r.n) {
		cd_lr_free(&m->r);
		m->r = add;
		add = (struct cd_lazy_ranges){0};
	} else if (r >= 0) {
		r = cd_lr_merge(&m->r, &add);
	}
	cd_lr_free(&add);
	m->nlater = k;
	if (r == -ENOMEM)
		return cd_err_set(err, ENOMEM, "out of memory");
	return r < 0 ? cd_err_set(err, EINVAL, "a mapping's runs are not what was read") : 0;
}

static int lazy_register(struct cd_lazy *lz, cd_inject *inj, int dirfd, const struct cd_task *t,
                         const struct cd_vma *v, uint64_t off, cd_err *err)
{
	int r;

	if ((!lz->nfiles || lz->files[lz->nfiles - 1].pid != t->pid) &&
	    (r = add_task(lz, inj, dirfd, t, err)) < 0)
		return r;
	struct lz_mm *m = &lz->mm[lz->nmm - 1];
	struct uffdio_register reg = {.range = {v->start, v->end - v->start},
	                              .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(m->uffd, UFFDIO_REGISTER, &reg) < 0)
		return cd_err_sys(err, errno, "register %" PRIx64 "-%" PRIx64 " for lazy restore",
		                  v->start, v->end);
	if (v->later.text)
		return later_add(lz, m, v, off) < 0 ? cd_err_set(err, ENOMEM, "out of memory") : 0;
	for (size_t i = 0; i < v->nruns; i++) {
		const struct cd_run *run = &v->runs[i];
		if (run->src != CD_RUN_DATA)
			continue; /* a missing page reads zero: served as one */
		uint64_t len = run->npages * PAGE;
		if (cd_lr_add(&m->r,
		              &(struct cd_lazy_range){v->start + run->page * PAGE, len, off}) < 0)
			return cd_err_set(err, ENOMEM, "out of memory");
		off += len;
		lz->bytes += len;
	}
	return 0;
}

static void *restore_server(void *arg);
static void kill_tree(const struct cd_lazy *lz);

int cd_lazy_register(struct cd_lazy *lz, cd_inject *inj, int dirfd, const struct cd_task *t,
                     const struct cd_vma *v, uint64_t off, cd_err *err)
{
	pthread_mutex_lock(&lz->mu);
	size_t nmm = lz->nmm;
	int r = lazy_register(lz, inj, dirfd, t, v, off, err);
	pthread_mutex_unlock(&lz->mu);
	if (lz->running && lz->nmm != nmm)
		eventfd_write(lz->wake, 1);
	if (r >= 0 && !lz->running) {
		if ((r = pthread_create(&lz->th, NULL, restore_server, lz)) != 0)
			return cd_err_sys(err, r, "start the lazy restore's server thread");
		lz->running = true;
	}
	return r;
}

/* ---- the server ---- */

static int serve(struct cd_lazy *lz, int timeout_ms, cd_err *err);

static void wake_page(const struct lz_mm *m, uint64_t addr)
{
	struct uffdio_range w = {addr, PAGE};

	ioctl(m->uffd, UFFDIO_WAKE, &w);
}

/* Copies src to addr in m: 1 when *ret_done bytes from addr are done
 * (copied, or the page is there already, or the mm is gone), 0 to retry
 * once the events are read (EAGAIN), or an error.
 *
 * ENOENT is no mapping of m's at addr, or one that ends before addr+len
 * (the program split it: mprotect). It is not proof that the range is
 * gone: the kernel looks for the mapping before it checks for a change of
 * the mappings in flight (a move whose event, not yet read, carries the
 * range elsewhere), and a copy asked while one is in flight fails with
 * EAGAIN at once. So the copy is asked again, halved down to a page: the
 * part within the mapping is copied, and a page is only given up after
 * two ENOENTs in a row for it alone, the second asked with no change in
 * flight. A thread that faulted there is woken to fault again. */
static int copy_once(struct lz_mm *m, uint64_t addr, const void *src, uint64_t len,
                     uint64_t *ret_done, cd_err *err)
{
	bool missed = false;

	*ret_done = 0;
	for (;;) {
		struct uffdio_copy c = {.dst = addr, .src = (uint64_t)(uintptr_t)src, .len = len};
		if (ioctl(m->uffd, UFFDIO_COPY, &c) == 0) {
			*ret_done = len;
			return 1;
		}
		if (errno == EAGAIN && c.copy > 0) {
			*ret_done = (uint64_t)c.copy;
			return 1;
		}
		if (errno == EAGAIN)
			return 0;
		if (errno == EEXIST) {
			/* faulted meanwhile: the page is the program's now */
			*ret_done = PAGE;
			return 1;
		}
		if (errno == ESRCH) {
			/* the task exited or exec'd: its mm is gone */
			*ret_done = len;
			return 1;
		}
		if (errno != ENOENT)
			return cd_err_sys(err, errno, "UFFDIO_COPY at %" PRIx64, addr);
		if (len == PAGE && missed) {
			wake_page(m, addr);
			*ret_done = PAGE;
			return 1;
		}
		missed = len == PAGE;
		len = len / 2 / PAGE * PAGE;
		len = len < PAGE ? PAGE : len;
	}
}

/* Fills mm mi's pending pages of file offsets [off, off+len), whose bytes
 * are at buf. By index: a fork answered meanwhile moves lz->mm. Faults are
 * answered every LAZY_COPY copied (the program waits on them; a copy per
 * run of a many-run mapping made that a poll per page), and at once when a
 * copy raced a change of the mappings: it waits for its event. */
static int copy_span(struct cd_lazy *lz, size_t mi, uint64_t off, uint64_t len, const uint8_t *buf,
                     cd_err *err)
{
	uint64_t copied = 0;

	for (;;) {
		struct lz_mm *m = &lz->mm[mi];
		const struct cd_lazy_range *x = m->uffd < 0 ? NULL : cd_lr_of_off(&m->r, off, len);
		if (!x)
			return copied ? serve(lz, 0, err) : 0;
		uint64_t lo = x->off > off ? x->off : off;
		uint64_t hi = x->off + x->len < off + len ? x->off + x->len : off + len;
		if (hi - lo > LAZY_COPY)
			hi = lo + LAZY_COPY;
		uint64_t addr = x->addr + (lo - x->off), done;
		int r = copy_once(m, addr, buf + (lo - off), hi - lo, &done, err);
		if (r < 0)
			return r;
		if (done && cd_lr_cut(&m->r, addr, addr + done, NULL) < 0)
			return cd_err_set(err, ENOMEM, "out of memory");
		copied += done;
		if ((r == 0 || copied >= LAZY_COPY) && (r = serve(lz, 0, err)) < 0)
			return r;
		if (copied >= LAZY_COPY)
			copied = 0;
	}
}

static int zero_page(struct lz_mm *m, uint64_t addr, cd_err *err)
{
	struct uffdio_zeropage z = {.range = {addr, PAGE}};

	if (ioctl(m->uffd, UFFDIO_ZEROPAGE, &z) == 0 || errno == ESRCH)
		return 1;
	if (errno == EAGAIN)
		return 0;
	if (errno == EEXIST || errno == ENOENT) {
		/* filled meanwhile, or no mapping of ours there (any more, or
		 * not yet: a change in flight): the thread faults again if it
		 * must, after the change's event */
		wake_page(m, addr);
		return 1;
	}
	return cd_err_sys(err, errno, "UFFDIO_ZEROPAGE at %" PRIx64, addr);
}

/* Where the bytes [off, off+*len) of m's page file are for a fault, *len
 * cut to what is worth copying at once: in the chunk the pass is at (in
 * memory) as much as one copy of the pass, the program touches on; in a
 * streamed file up to the end of the decoded chunk, at most as much; in a
 * mapped file elsewhere a little. */
static int fault_src(struct cd_lazy *lz, const struct lz_mm *m, uint64_t off, uint64_t *len,
                     const uint8_t **ret, cd_err *err)
{
	struct lz_file *f = &lz->files[m->file];
	uint64_t most = LAZY_FAULT;

	if (m->file == lz->cur_file && lz->cur_off <= off && off < lz->cur_off + lz->cur_len) {
		most = lz->cur_off + lz->cur_len - off;
		most = most < LAZY_COPY ? most : LAZY_COPY;
		*len = *len < most ? *len : most;
		*ret = lz->cur_src + (off - lz->cur_off);
		return 0;
	}
	if (!f->fault_pr) {
		*len = *len < most ? *len : most;
		*ret = f->map + off;
		return 0;
	}
	most = CD_STREAM_CHUNK - off % CD_STREAM_CHUNK;
	most = most < LAZY_COPY ? most : LAZY_COPY;
	*len = *len < most ? *len : most;
	const void *src;
	int r = cd_pr_at(f->fault_pr, off, (size_t)*len, &src, err);
	if (r < 0)
		return cd_err_wrap(err, "%s", f->name);
	*ret = src;
	return 0;
}

/* 1 when the fault at addr is answered, 0 to retry after the events. */
static int answer_fault(struct cd_lazy *lz, struct lz_mm *m, uint64_t addr, cd_err *err)
{
	const struct cd_lazy_range *x = cd_lr_at(&m->r, addr);
	const uint8_t *src = NULL;
	int r;

	addr &= ~(uint64_t)(PAGE - 1);
	if (!x)
		return zero_page(m, addr, err);
	uint64_t len = x->addr + x->len - addr, done;
	uint64_t off = x->off + (addr - x->addr);
	/* the pass goes on where the program works */
	lz->files[m->file].hint = off / LAZY_CHUNK;
	if ((r = fault_src(lz, m, off, &len, &src, err)) < 0)
		return r;
	if ((r = copy_once(m, addr, src, len, &done, err)) <= 0)
		return r;
	if (done == PAGE && len > PAGE)
		wake_page(m, addr); /* EEXIST on the first page: another thread's fault won */
	if (cd_lr_cut(&m->r, addr, addr + done, NULL) < 0)
		return cd_err_set(err, ENOMEM, "out of memory");
	return 1;
}

static int on_fork(struct cd_lazy *lz, size_t mi, int uffd, cd_err *err)
{
	struct lz_mm *m = realloc(lz->mm, (lz->nmm + 1) * sizeof(*m));

	if (!m) {
		close(uffd);
		return cd_err_set(err, ENOMEM, "out of memory");
	}
	lz->mm = m;
	struct lz_mm *c = &lz->mm[lz->nmm++], *p = &lz->mm[mi];
	*c = (struct lz_mm){.uffd = uffd, .file = p->file};
	/* what the parent had filled, the child got with its memory */
	if (cd_lr_clone(&c->r, &p->r) < 0)
		return cd_err_set(err, ENOMEM, "out of memory");
	return 0;
}

static int on_event(struct cd_lazy *lz, size_t mi, const struct uffd_msg *msg, cd_err *err)
{
	struct lz_mm *m = &lz->mm[mi];
	int r;

	if ((r = mm_make_later(m, LATER_ALL, err)) < 0)
		return r;
	switch (msg->event) {
	case UFFD_EVENT_FORK:
		return on_fork(lz, mi, (int)msg->arg.fork.ufd, err);
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		/* what the program dropped reads zero: never filled */
		if (cd_lr_cut(&m->r, msg->arg.remove.start, msg->arg.remove.end, NULL) < 0)
			return cd_err_set(err, ENOMEM, "out of memory");
		return 0;
	case UFFD_EVENT_REMAP: {
		struct cd_lazy_ranges moved = {0};
		uint64_t from = msg->arg.remap.from, to = msg->arg.remap.to;
		r = cd_lr_cut(&m->r, from, from + msg->arg.remap.len, &moved);
		/* the target's old ranges were unmapped by the move */
		if (r == 0)
			r = cd_lr_cut(&m->r, to, to + msg->arg.remap.len, NULL);
		for (size_t i = 0; i < moved.n; i++)
			moved.r[i].addr = moved.r[i].addr - from + to;
		if (r == 0)
			r = cd_lr_merge(&m->r, &moved);
		cd_lr_free(&moved);
		return r < 0 ? cd_err_set(err, ENOMEM, "out of memory") : 0;
	}
	default:
		return 0;
	}
}

struct lz_faults {
	uint64_t *a;
	size_t n, cap;
};

/* Reads what m has: events applied at once, faults queued. 1 when
 * something was read. */
static int read_msgs(struct cd_lazy *lz, size_t mi, struct lz_faults *q, cd_err *err)
{
	struct uffd_msg msg[16];
	ssize_t n;

	do
		n = read(lz->mm[mi].uffd, msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	for (size_t i = 0; i < (size_t)n / sizeof(*msg); i++) {
		int r;
		if (msg[i].event != UFFD_EVENT_PAGEFAULT) {
			if ((r = on_event(lz, mi, &msg[i], err)) < 0)
				return r;
			continue;
		}
		if (q->n == q->cap) {
			size_t cap = q->cap ? 2 * q->cap : 64;
			uint64_t *a = realloc(q->a, cap * sizeof(*a));
			if (!a)
				return cd_err_set(err, ENOMEM, "out of memory");
			q->a = a;
			q->cap = cap;
		}
		q->a[q->n++] = msg[i].arg.pagefault.address;
	}
	return 1;
}

/* Answers everything m has. A fault read is never dropped: its thread
 * waits until it is answered, so one that races an event (EAGAIN) is
 * retried once the event is read. */
static int serve_mm(struct cd_lazy *lz, size_t mi, cd_err *err)
{
	struct lz_faults q = {0};
	int r, got;

	while ((got = read_msgs(lz, mi, &q, err)) > 0 || (got == 0 && q.n)) {
		size_t left = 0;
		for (size_t i = 0; i < q.n; i++) {
			/* lz->mm may have moved (a fork) */
			if ((r = mm_make_later(&lz->mm[mi], q.a[i], err)) < 0 ||
			    (r = answer_fault(lz, &lz->mm[mi], q.a[i], err)) < 0) {
				free(q.a);
				return r;
			}
			if (r == 0)
				q.a[left++] = q.a[i];
		}
		q.n = left;
		if (left && !got)
			sched_yield(); /* the event is being queued */
	}
	free(q.a);
	return got < 0 ? got : 0;
}

/* Answers what waits on any of the userfaultfds, waiting up to timeout_ms. */
static int serve(struct cd_lazy *lz, int timeout_ms, cd_err *err)
{
	size_t n = lz->nmm;
	_cleanup_free_ struct pollfd *p = calloc(n + 1, sizeof(*p));

	if (!p)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = lz->mm[i].uffd, .events = POLLIN};
	if (poll(p, n, timeout_ms) <= 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i].revents & (POLLERR | POLLHUP)) {
			mm_close(&lz->mm[i]);
			continue;
		}
		int r = (p[i].revents & POLLIN) ? serve_mm(lz, i, err) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

/* Until the handover: what the restore's injected calls fault on. A fault
 * that cannot be answered (a read error) would leave its call waiting for
 * ever: the tree is killed instead, and the restore fails on its call. */
static void *restore_server(void *arg)
{
	struct cd_lazy *lz = arg;

	for (;;) {
		pthread_mutex_lock(&lz->mu);
		size_t n = lz->nmm;
		bool stop = lz->stop;
		struct pollfd *p = calloc(n + 1, sizeof(*p));
		for (size_t i = 0; p && i < n; i++)
			p[i] = (struct pollfd){.fd = lz->mm[i].uffd, .events = POLLIN};
		pthread_mutex_unlock(&lz->mu);
		if (stop || !p) {
			free(p);
			return NULL;
		}
		p[n] = (struct pollfd){.fd = lz->wake, .events = POLLIN};
		int k = poll(p, n + 1, -1);
		eventfd_t ignored;
		if (k > 0 && (p[n].revents & POLLIN))
			eventfd_read(lz->wake, &ignored);
		pthread_mutex_lock(&lz->mu);
		for (size_t i = 0; k > 0 && i < n; i++) {
			cd_err err = {0};
			if ((p[i].revents & POLLIN) && serve_mm(lz, i, &err) < 0)
				kill_tree(lz);
		}
		pthread_mutex_unlock(&lz->mu);
		free(p);
	}
}

void cd_lazy_handover(struct cd_lazy *lz)
{
	if (!lz || !lz->running)
		return;
	pthread_mutex_lock(&lz->mu);
	lz->stop = true;
	pthread_mutex_unlock(&lz->mu);
	eventfd_write(lz->wake, 1);
	pthread_join(lz->th, NULL);
	lz->running = false;
}

/* The chunk of f the pass fills next: the first not done from f->hint on
 * (where the program last faulted, or after the previous chunk), else the
 * first not done. */
static uint64_t next_chunk(const struct lz_file *f, const bool *done, uint64_t n, uint64_t *low)
{
	while (*low < n && done[*low])
		(*low)++;
	for (uint64_t c = f->hint; c < n; c++)
		if (!done[c])
			return c;
	return *low;
}

/* A read error of the mapped page file (or the file cut short) is a
 * SIGBUS on the thread that touched it: it returns to mapped_sum, which
 * reports it. */
static _Thread_local sigjmp_buf *bus_jmp;

static void on_sigbus(int sig)
{
	if (bus_jmp)
		siglongjmp(*bus_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int mapped_sum(struct cd_csum_part *sum, const struct lz_file *f, uint64_t off, uint64_t len,
                      cd_err *err)
{
	sigjmp_buf jb;

	if (sigsetjmp(jb, 1)) {
		bus_jmp = NULL;
		return cd_err_set(
		    err, EIO, "read at %" PRIu64 ": an I/O error, or the file was cut short", off);
	}
	bus_jmp = &jb;
	cd_csum_part_add(sum, f->map + off, (size_t)len, off, f->size);
	bus_jmp = NULL;
	return 0;
}

/* Sums chunk c of file fi and fills its pending pages, LAZY_COPY at a time
 * (still in the cache when copied), in every task and fork of that file. */
static int fill_chunk(struct cd_lazy *lz, size_t fi, uint64_t c, struct cd_csum_part *sum,
                      cd_err *err)
{
	const struct lz_file *f = &lz->files[fi];
	uint64_t off = c * LAZY_CHUNK,
	         end = f->size - off < LAZY_CHUNK ? f->size : off + LAZY_CHUNK;
	const void *src = f->map + off;
	int r;

	/* streamed: the whole chunk decoded first (a bad record fails here),
	 * and summed from the decoded bytes */
	if (f->pass_pr && (r = cd_pr_at(f->pass_pr, off, (size_t)(end - off), &src, err)) < 0)
		return r;
	lz->cur_file = fi;
	lz->cur_off = off;
	lz->cur_len = end - off;
	lz->cur_src = src;
	for (uint64_t at = off; at < end; at += LAZY_COPY) {
		uint64_t n = end - at < LAZY_COPY ? end - at : LAZY_COPY;
		const uint8_t *p = lz->cur_src + (at - off);
		if (f->pass_pr)
			cd_csum_part_add(sum, p, (size_t)n, at, f->size);
		else if ((r = mapped_sum(sum, f, at, n, err)) < 0)
			return r;
		for (size_t i = 0; i < lz->nmm; i++)
			if (lz->mm[i].file == fi && (r = copy_span(lz, i, at, n, p, err)) < 0)
				return r;
	}
	if (cd_fault("lazy-read") && end >= f->size / 2)
		return cd_err_set(err, EIO, "injected fault lazy-read");
	return 0;
}

/* The pass over one page file: each chunk summed once (the sum does not
 * depend on the order) and every pending page of its task and of the
 * task's forks filled from it. In order, but from where the program
 * faults: it waits least there. The disk reads LAZY_AHEAD chunks ahead
 * (all of them again after a jump). */
static int pass_file(struct cd_lazy *lz, size_t fi, cd_err *err)
{
	struct lz_file *f = &lz->files[fi];
	uint64_t n = (f->size + LAZY_CHUNK - 1) / LAZY_CHUNK, low = 0, prev = UINT64_MAX - 1;
	_cleanup_free_ bool *done = calloc(n + 1, sizeof(*done));
	struct cd_csum_part sum = {0};
	int r = 0;

	if (!done)
		return cd_err_set(err, ENOMEM, "out of memory");
	f->hint = 0;
	for (uint64_t k = 0; k < n && r >= 0; k++) {
		/* a fault waits for no read of ours */
		if ((r = serve(lz, 0, err)) < 0)
			break;
		uint64_t c = next_chunk(f, done, n, &low);
		bool jumped = c != prev + 1;
		/* (the streams' readers are sequential: the kernel reads ahead) */
		if (f->map)
			posix_fadvise(f->fd, (off_t)((jumped ? c : c + LAZY_AHEAD) * LAZY_CHUNK),
			              (off_t)((jumped ? LAZY_AHEAD + 1 : 1) * LAZY_CHUNK),
			              POSIX_FADV_WILLNEED);
		done[c] = true;
		prev = c;
		f->hint = c + 1;
		r = fill_chunk(lz, fi, c, &sum, err);
		/* for the tests: a pass slow enough that the program changes its
		 * memory while it runs, its faults still answered */
		if (r >= 0 && cd_fault("lazy-slow"))
			r = serve(lz, 20, err);
	}
	lz->cur_len = 0;
	lz->cur_src = NULL;
	/* streamed: every record well formed and nothing after the last */
	if (r >= 0 && f->pass_pr)
		r = cd_pr_check_ends(f->pass_pr, err);
	if (r < 0)
		return cd_err_wrap(err, "%s", f->name);
	if (cd_csum_part_final(&sum, f->size) != f->csum)
		return cd_err_set(err, EINVAL,
		                  "%s: checksum mismatch (corrupt image), found by the background "
		                  "pass of a lazy restore",
		                  f->name);
	return 0;
}

/* Kills pid and everything below it (what it forked during the pass). */
static void kill_below(pid_t pid, int depth)
{
	char path[64], buf[4096];
	ssize_t n;

	kill(pid, SIGKILL);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || depth > 64 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return;
	buf[n] = '\0';
	for (char *s = buf, *e; *s; s = e) {
		long c = strtol(s, &e, 10);
		if (e == s)
			break;
		kill_below((pid_t)c, depth + 1);
	}
}

static void kill_tree(const struct cd_lazy *lz)
{
	/* stop first, so that nothing forks while we walk */
	for (size_t i = 0; i < lz->nfiles; i++)
		if (lz->files[i].pidfd >= 0)
			syscall(SYS_pidfd_send_signal, lz->files[i].pidfd, SIGKILL, NULL, 0);
	for (size_t i = 0; i < lz->nfiles; i++)
		kill_below(lz->files[i].pid, 0);
}

int cd_lazy_serve(struct cd_lazy *lz, cd_err *err)
{
	int r = 0;

	if (!lz->nmm)
		return 0;
	/* this process is the server's alone (engine.h): its handler */
	struct sigaction sa = {.sa_handler = on_sigbus};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	for (size_t i = 0; r >= 0 && i < lz->nmm; i++)
		r = mm_make_later(&lz->mm[i], LATER_ALL, err);
	for (size_t i = 0; r >= 0 && i < lz->nfiles; i++)
		r = pass_file(lz, i, err);
	if (r < 0) {
		kill_tree(lz);
		return cd_err_wrap(err, "lazy restore: the tree was killed");
	}
	/* every page is in: what is still missing reads zero without us */
	for (size_t i = 0; i < lz->nmm; i++)
		mm_close(&lz->mm[i]);
	return 0;
}
