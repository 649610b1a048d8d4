/* SysV shared memory segments (see sysv-ipc.c). Used by the tree: its
 * creator or last shmat/shmdt pid (shm_cpid, shm_lpid) is a task of the
 * tree, or a task has it attached (a /SYSV mapping, whose inode number is
 * the id). Taken: key, id, mode, owner, size, contents (its page file),
 * SHM_LOCK and whether it was removed (IPC_RMID) while attached; a segment
 * also attached outside the tree is refused. The tree's attachments are
 * mappings of the image (mem.c makes them again with shmat). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/pageio.h"
#include "shared/cleanup.h"

#define PAGE   CD_PAGE_SIZE
#define KEY(k) ((unsigned long)(uint32_t)(k))

static int shm_lookup(int32_t key)
{
	return shmget(key, 0, 0);
}

static int shm_stat(int id)
{
	struct shmid_ds ds;

	return shmctl(id, IPC_STAT, &ds);
}

static int shm_rmid(int id)
{
	return shmctl(id, IPC_RMID, NULL);
}

static int shm_make_any(void)
{
	return shmget(IPC_PRIVATE, 1, 0600);
}

const struct cd_sysv_kind cd_sysv_shm_kind = {
    .what = "shared memory segment",
    .table = "/proc/sysvipc/shm",
    .next_id = "/proc/sys/kernel/shm_next_id",
    .lookup = shm_lookup,
    .stat = shm_stat,
    .rmid = shm_rmid,
    .make_any = shm_make_any,
};

/* ---- dump ---- */

void cd_sysv_shm_file(const struct cd_sysv_shm *m, char *buf, size_t len)
{
	snprintf(buf, len, "sysv-shm-%d.img", m->id);
}

/* The tree's attachments of segment id (its mappings: the kernel counts
 * one per mapping in shm_nattch). */
static int tree_attachments(const struct cd_image *img, int id, unsigned long *ret, cd_err *err)
{
	*ret = 0;
	for (size_t i = 0; i < img->ntasks; i++) {
		_cleanup_free_ struct cd_proc_map *maps = NULL;
		size_t n;
		if (img->tasks[i].zombie)
			continue;
		int r = cd_proc_maps(img->tasks[i].pid, &maps, &n, err);
		if (r < 0)
			return r;
		for (size_t k = 0; k < n; k++)
			if (maps[k].shared && !strncmp(maps[k].path, "/SYSV", 5) &&
			    maps[k].ino == (uint64_t)id)
				(*ret)++;
	}
	return 0;
}

static int add_data_run(struct cd_sysv_shm *m, size_t *cap, uint64_t page, cd_err *err)
{
	struct cd_run *last = m->nruns ? &m->runs[m->nruns - 1] : NULL;

	if (last && last->page + last->npages == page) {
		last->npages++;
		return 0;
	}
	if (m->nruns == *cap || !m->runs) {
		struct cd_run *p = realloc(m->runs, (*cap = *cap ? *cap * 2 : 8) * sizeof(*p));
		if (!p)
			return cd_err_set(err, ENOMEM, "out of memory");
		m->runs = p;
	}
	m->runs[m->nruns++] = (struct cd_run){.page = page, .npages = 1, .src = CD_RUN_DATA};
	return 0;
}

static bool page_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];

	return !memcmp(p, zero, PAGE);
}

/* A segment of huge pages (SHM_HUGETLB) would come back of small pages:
 * refused (an attached one is refused as a hugetlb mapping by mem.c). Seen
 * on the dumper's own attachment at. */
static int refuse_hugetlb(const void *at, cd_err *err)
{
	_cleanup_free_ struct cd_proc_map *maps = NULL;
	size_t n;
	int r = cd_proc_maps(getpid(), &maps, &n, err);

	for (size_t i = 0; r >= 0 && i < n; i++)
		if (maps[i].start == (uint64_t)(uintptr_t)at && cd_proc_vmflag(&maps[i], "ht"))
			return cd_err_set(err, EOPNOTSUPP,
			                  "huge pages (SHM_HUGETLB): not supported (it would come "
			                  "back of small pages)");
	return r;
}

/* Copies the segment's pages but the zero ones into its page file, through
 * an attachment of the dumper's own (read-only; it makes the dumper the
 * segment's last shmat/shmdt pid). */
static int copy_contents(int dirfd, struct cd_sysv_shm *m, cd_err *err)
{
	_cleanup_(cd_pw_freep) struct cd_page_writer *pw = NULL;
	char name[64];
	size_t cap = 0;
	uint64_t npages = (m->size + PAGE - 1) / PAGE;
	int r;

	cd_sysv_shm_file(m, name, sizeof(name));
	if ((r = cd_pw_open(dirfd, name, &pw, err)) < 0)
		return r;
	const uint8_t *at = shmat(m->id, NULL, SHM_RDONLY);
	if (at == (void *)-1)
		return cd_err_sys(err, errno, "shmat");
	r = refuse_hugetlb(at, err);
	for (uint64_t p = 0; p < npages && r >= 0; p++) {
		uint8_t *dst;
		if (page_zero(at + p * PAGE))
			continue;
		cd_pw_reserve(pw, &dst);
		memcpy(dst, at + p * PAGE, PAGE);
		if ((r = cd_pw_commit(pw, PAGE, err)) >= 0)
			r = add_data_run(m, &cap, p, err);
	}
	shmdt(at);
	if (r >= 0)
		r = cd_pw_finish(pw, &m->pages_size, &m->pages_csum, err);
	return r;
}

/* Whether the tree used segment id; if so, *m is filled from IPC_STAT. */
static int shm_used(const struct cd_image *img, int id, struct cd_sysv_shm *m, bool *ret,
                    cd_err *err)
{
	struct shmid_ds ds;
	unsigned long mine;
	int r;

	*ret = false;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return errno == EINVAL || errno == EIDRM
		           ? 0 /* gone meanwhile */
		           : cd_err_sys(err, errno, "SysV shared memory segment id %d: IPC_STAT",
		                        id);
	if ((r = tree_attachments(img, id, &mine, err)) < 0)
		return r;
	if (!mine && !cd_sysv_in_tree(img, ds.shm_cpid) && !cd_sysv_in_tree(img, ds.shm_lpid))
		return 0;
	long pid = cd_sysv_in_tree(img, ds.shm_cpid) ? ds.shm_cpid : ds.shm_lpid;
	/* the restore makes a new segment: an attachment of another process
	 * would go on with the old one */
	if (ds.shm_nattch > mine)
		return cd_err_set(err, EOPNOTSUPP,
		                  "SysV shared memory segment (key 0x%08lx, id %d) used by the "
		                  "tree is also attached by %lu process mapping(s) outside the "
		                  "tree: not supported (the restored tree would no longer share "
		                  "it with them)",
		                  KEY(ds.shm_perm.__key), id, (unsigned long)ds.shm_nattch - mine);
	if (ds.shm_segsz > CD_SYSV_SHM_MAX)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %ld: SysV shared memory segment (key 0x%08lx, id %d): %zu "
		                  "bytes, more than an image holds",
		                  pid, KEY(ds.shm_perm.__key), id, (size_t)ds.shm_segsz);
	*m = (struct cd_sysv_shm){
	    .key = ds.shm_perm.__key,
	    .id = id,
	    .mode = ds.shm_perm.mode & 0777,
	    .uid = ds.shm_perm.uid,
	    .gid = ds.shm_perm.gid,
	    .removed = ds.shm_perm.mode & SHM_DEST,
	    .locked = ds.shm_perm.mode & SHM_LOCKED,
	    .size = ds.shm_segsz,
	};
	*ret = true;
	return 0;
}

int cd_sysv_shm_dump(struct cd_image *img, int dirfd, cd_err *err)
{
	_cleanup_free_ int *ids = NULL;
	size_t n;
	int r = cd_sysv_list_ids(&cd_sysv_shm_kind, &ids, &n, err);

	if (r < 0)
		return r;
	img->sysv_shm = calloc(n + 1, sizeof(*img->sysv_shm));
	if (!img->sysv_shm)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct cd_sysv_shm *m = &img->sysv_shm[img->nsysv_shm];
		bool used;
		if ((r = shm_used(img, ids[i], m, &used, err)) < 0)
			return r;
		if (!used)
			continue;
		img->nsysv_shm++;
		if ((r = copy_contents(dirfd, m, err)) < 0)
			return cd_err_wrap(err, "SysV shared memory segment (key 0x%08lx, id %d)",
			                   KEY(m->key), m->id);
	}
	return 0;
}

/* ---- attachments (the dump's and the decoder's check) ---- */

/* Mappings i.. of t that are one attachment of a segment: the first at
 * offset 0, each next one where the one before ends. */
static size_t attachment_end(const struct cd_task *t, size_t i)
{
	const struct cd_vma *a = &t->vmas[i];
	size_t k = i + 1;

	while (k < t->nvmas) {
		const struct cd_vma *p = &t->vmas[k - 1], *v = &t->vmas[k];
		if (v->kind != CD_VMA_SYSV_SHM || v->shmid != a->shmid || v->start != p->end ||
		    v->pgoff != p->pgoff + (p->end - p->start) || !v->pgoff)
			break;
		k++;
	}
	return k;
}

int cd_sysv_check_attachments(const struct cd_image *img, const struct cd_task *t, cd_err *err)
{
	for (size_t i = 0; i < t->nvmas;) {
		const struct cd_vma *v = &t->vmas[i];
		if (v->kind != CD_VMA_SYSV_SHM) {
			i++;
			continue;
		}
		const struct cd_sysv_shm *m = cd_image_sysv_shm(img, v->shmid);
		size_t end = attachment_end(t, i);
		const struct cd_vma *last = &t->vmas[end - 1];
		if (!m)
			return cd_err_set(err, EOPNOTSUPP,
			                  "pid %d: mapping %" PRIx64 "-%" PRIx64
			                  ": SysV shared memory segment id %" PRId64
			                  " that the dump did not take",
			                  t->pid, v->start, v->end, v->shmid);
		if (v->pgoff || !v->shared ||
		    last->pgoff + (last->end - last->start) != (m->size + PAGE - 1) / PAGE * PAGE)
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "pid %d: mapping %" PRIx64 "-%" PRIx64
			    ": part of an attachment of SysV shared memory segment "
			    "(key 0x%08lx, id %d) (some of it unmapped): not supported",
			    t->pid, v->start, v->end, KEY(m->key), m->id);
		for (size_t k = i + 1; k < end; k++)
			if ((t->vmas[k].flags ^ v->flags) & CD_VMF_MAYWRITE)
				return cd_err_set(
				    err, EINVAL,
				    "pid %d: mapping %" PRIx64 "-%" PRIx64
				    ": parts of one SysV attachment, read-only and not",
				    t->pid, t->vmas[k].start, t->vmas[k].end);
		i = end;
	}
	return 0;
}

/* ---- restore ---- */

static int make(const void *arg)
{
	const struct cd_sysv_shm *m = arg;

	return shmget(m->key, m->size, IPC_CREAT | IPC_EXCL | (int)m->mode);
}

static int fill_contents(int dirfd, const struct cd_sysv_shm *m, cd_err *err)
{
	_cleanup_(cd_pr_freep) struct cd_page_reader *pr = NULL;
	char name[64];
	int r = 0;

	if (!m->nruns)
		return 0;
	cd_sysv_shm_file(m, name, sizeof(name));
	if ((r = cd_pr_open(dirfd, name, &pr, err)) < 0)
		return r;
	uint8_t *at = shmat(m->id, NULL, 0);
	if (at == (void *)-1)
		return cd_err_sys(err, errno, "shmat");
	for (size_t i = 0; i < m->nruns && r >= 0; i++) {
		uint64_t off = m->runs[i].page * PAGE, left = m->runs[i].npages * PAGE;
		while (left && r >= 0) {
			const void *src;
			size_t len;
			if ((r = cd_pr_next(pr, left, &src, &len, err)) >= 0) {
				memcpy(at + off, src, len);
				off += len;
				left -= len;
			}
		}
	}
	shmdt(at);
	return r;
}

static int make_shm(int dirfd, const struct cd_sysv_shm *m, cd_err *err)
{
	struct shmid_ds ds = {0};
	int r = cd_sysv_create(&cd_sysv_shm_kind, m->id, make, m, err);

	if (r < 0)
		return r;
	ds.shm_perm.uid = m->uid;
	ds.shm_perm.gid = m->gid;
	ds.shm_perm.mode = (unsigned short)m->mode;
	if ((r = fill_contents(dirfd, m, err)) >= 0 && shmctl(m->id, IPC_SET, &ds) < 0)
		r = cd_err_sys(err, errno, "IPC_SET");
	if (r >= 0 && m->locked && shmctl(m->id, SHM_LOCK, NULL) < 0)
		r = cd_err_sys(err, errno, "SHM_LOCK");
	return r;
}

int cd_sysv_shm_restore(const struct cd_image *img, int dirfd, cd_err *err)
{
	for (size_t i = 0; i < img->nsysv_shm; i++) {
		const struct cd_sysv_shm *m = &img->sysv_shm[i];
		int r = make_shm(dirfd, m, err);
		if (r < 0)
			return cd_err_wrap(err, "SysV shared memory segment (key 0x%08lx, id %d)",
			                   KEY(m->key), m->id);
	}
	return 0;
}
