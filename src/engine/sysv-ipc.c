/* SysV IPC objects of the host IPC namespace used by the tree.
 *
 * The objects outlive their users and belong to the IPC namespace, which
 * the tree shares with the host: the dump takes the ones the tree used into
 * the image and the restore makes them again in the restoring host's
 * namespace, with their keys and ids (a program keeps ids in memory).
 *
 * "Used by the tree" is read from what the kernel records per object:
 *   shm: creator and last shmat/shmdt pid (shm_cpid, shm_lpid), and the
 *        tree's attachments (its /SYSV mappings);
 *   msg: last msgsnd and msgrcv pid (lspid, lrpid in /proc/sysvipc/msg);
 *   sem: no pid in /proc/sysvipc/sem (ipc/sem.c sysvipc_sem_proc_show), so
 *        each semaphore's last semop/SETVAL pid (semctl GETPID).
 * An object the tree knows by id but never touched in any of these ways
 * (a set created and not yet operated on, a queue not yet used) cannot be
 * seen: documented in docs/engine.md. The pids are those of the dumper's
 * pid namespace, as are the tree's.
 *
 * Shared memory segments are taken (key, id, mode, owner, size, contents,
 * SHM_LOCK, whether removed); message queues and semaphore sets are still
 * refused. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/pageio.h"
#include "shared/cleanup.h"

#define PAGE        CD_PAGE_SIZE
#define SHM_NEXT_ID "/proc/sys/kernel/shm_next_id"
#define KEY(k)      ((unsigned long)(k)&0xffffffffUL)

static bool in_tree(const struct cd_image *img, long pid)
{
	for (size_t i = 0; pid > 0 && i < img->ntasks; i++)
		if (img->tasks[i].pid == pid)
			return true;
	return false;
}

static int refuse(const char *what, long key, long id, long pid, cd_err *err)
{
	return cd_err_set(err, EOPNOTSUPP,
	                  "pid %ld: SysV %s (key 0x%08lx, id %ld) used by the tree: SysV IPC "
	                  "objects of this kind are not supported (a restore would not bring "
	                  "it back); have the process remove it (ipcrm) or use POSIX IPC",
	                  pid, what, KEY(key), id);
}

/* The ids listed in /proc/sysvipc/NAME (second column). */
static int list_ids(const char *name, int **ret, size_t *ret_n, cd_err *err)
{
	char path[64], line[512];
	_cleanup_free_ int *ids = NULL;
	size_t n = 0, cap = 0;
	long key, id;

	*ret = NULL;
	*ret_n = 0;
	snprintf(path, sizeof(path), "/proc/sysvipc/%s", name);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : cd_err_sys(err, errno, "open %s", path);
	if (!fgets(line, sizeof(line), f))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%ld %ld", &key, &id) != 2 || id < 0 || id > INT32_MAX)
			return cd_err_set(err, EINVAL, "%s: unexpected line: %s", path, line);
		if (n == cap) {
			int *p = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof(*ids));
			if (!p)
				return cd_err_set(err, ENOMEM, "out of memory");
			ids = p;
		}
		ids[n++] = (int)id;
	}
	*ret = TAKE_PTR(ids);
	*ret_n = n;
	return 0;
}

/* ---- message queues and semaphore sets: refused ---- */

static int check_msgs(const struct cd_image *img, cd_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/sysvipc/msg", "re");
	char line[512];
	long key, id, a, b;

	if (!f)
		return errno == ENOENT ? 0 : cd_err_sys(err, errno, "open /proc/sysvipc/msg");
	if (!fgets(line, sizeof(line), f))
		return 0;
	/* key msqid perms cbytes qnum lspid lrpid ... */
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%ld %ld %*s %*s %*s %ld %ld", &key, &id, &a, &b) != 4)
			return cd_err_set(err, EINVAL, "/proc/sysvipc/msg: unexpected line: %s",
			                  line);
		if (in_tree(img, a) || in_tree(img, b))
			return refuse("message queue", key, id, in_tree(img, a) ? a : b, err);
	}
	return 0;
}

static int check_sems(const struct cd_image *img, cd_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/sysvipc/sem", "re");
	char line[512];
	long key, id, nsems;

	if (!f)
		return errno == ENOENT ? 0 : cd_err_sys(err, errno, "open /proc/sysvipc/sem");
	if (!fgets(line, sizeof(line), f))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%ld %ld %*s %ld", &key, &id, &nsems) != 3)
			return cd_err_set(err, EINVAL, "/proc/sysvipc/sem: unexpected line: %s",
			                  line);
		for (long i = 0; i < nsems; i++) {
			int pid = semctl((int)id, (int)i, GETPID);
			/* one the dumper may not read (it has the tree's rights or
			 * more) the tree may not read either: see the top */
			if (pid < 0 && errno != EIDRM && errno != EINVAL && errno != EACCES)
				return cd_err_sys(err, errno,
				                  "SysV semaphore set key 0x%08lx id %ld: "
				                  "semctl GETPID (whether the tree uses it cannot "
				                  "be known)",
				                  KEY(key), id);
			if (in_tree(img, pid))
				return refuse("semaphore set", key, id, pid, err);
		}
	}
	return 0;
}

/* ---- shared memory: dump ---- */

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
	if (m->nruns == *cap) {
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
	if (!mine && !in_tree(img, ds.shm_cpid) && !in_tree(img, ds.shm_lpid))
		return 0;
	long pid = in_tree(img, ds.shm_cpid) ? ds.shm_cpid : ds.shm_lpid;
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

static int dump_shms(struct cd_image *img, int dirfd, cd_err *err)
{
	_cleanup_free_ int *ids = NULL;
	size_t n;
	int r = list_ids("shm", &ids, &n, err);

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

int cd_sysv_dump(struct cd_image *img, int dirfd, cd_err *err)
{
	int r;

	if ((r = check_msgs(img, err)) < 0 || (r = check_sems(img, err)) < 0)
		return r;
	return dump_shms(img, dirfd, err);
}

void cd_sysv_dump_release(const struct cd_image *img)
{
	for (size_t i = 0; i < img->nsysv_shm; i++)
		shmctl(img->sysv_shm[i].id, IPC_RMID, NULL);
}

/* ---- attachments ---- */

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

/* ---- shared memory: restore ---- */

/* Refuses a key or id of the image that the host's namespace has. */
static int shm_free(const struct cd_sysv_shm *m, cd_err *err)
{
	struct shmid_ds ds;

	if (m->key != IPC_PRIVATE && (shmget(m->key, 0, 0) >= 0 || errno != ENOENT))
		return cd_err_set(err, EEXIST,
		                  "SysV shared memory segment key 0x%08lx (id %d) is taken on this "
		                  "host",
		                  KEY(m->key), m->id);
	if (shmctl(m->id, IPC_STAT, &ds) >= 0 || (errno != EINVAL && errno != EIDRM))
		return cd_err_set(err, EEXIST,
		                  "SysV shared memory segment id %d (key 0x%08lx) is taken on this "
		                  "host",
		                  m->id, KEY(m->key));
	return 0;
}

static int write_next_id(int fd, long id, cd_err *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld", id);

	if (pwrite(fd, buf, (size_t)n, 0) != n)
		return cd_err_sys(err, errno, "write %s", SHM_NEXT_ID);
	return 0;
}

/* shmget with the image's id: shm_next_id is set for it, under a lock
 * (other restores). The kernel sets it back to -1 (a value it does not
 * take from a write) when it makes a segment: when shmget fails, a segment
 * is made and removed at once so that it does. */
static int create_with_id(const struct cd_sysv_shm *m, cd_err *err)
{
	_cleanup_close_ int fd = open(SHM_NEXT_ID, O_RDWR | O_CLOEXEC);
	int id, r;

	if (fd < 0)
		return cd_err_sys(err, errno, "open %s (a SysV id cannot be chosen)", SHM_NEXT_ID);
	if (flock(fd, LOCK_EX) < 0)
		return cd_err_sys(err, errno, "lock %s", SHM_NEXT_ID);
	if ((r = write_next_id(fd, m->id, err)) < 0)
		return r;
	id = shmget(m->key, m->size, IPC_CREAT | IPC_EXCL | (int)m->mode);
	if (id < 0) {
		int saved = errno, spent = shmget(IPC_PRIVATE, 1, 0600);
		if (spent >= 0)
			shmctl(spent, IPC_RMID, NULL);
		return cd_err_sys(err, saved, "shmget");
	}
	if (id != m->id) {
		shmctl(id, IPC_RMID, NULL);
		return cd_err_set(err, EEXIST,
		                  "SysV shared memory segment id %d is taken on this host (its "
		                  "slot is in use)",
		                  m->id);
	}
	return 0;
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
	int r = create_with_id(m, err);

	if (r < 0)
		return r;
	ds.shm_perm.uid = m->uid;
	ds.shm_perm.gid = m->gid;
	ds.shm_perm.mode = (unsigned short)m->mode;
	if ((r = fill_contents(dirfd, m, err)) >= 0 && shmctl(m->id, IPC_SET, &ds) < 0)
		r = cd_err_sys(err, errno, "IPC_SET");
	if (r >= 0 && m->locked && shmctl(m->id, SHM_LOCK, NULL) < 0)
		r = cd_err_sys(err, errno, "SHM_LOCK");
	if (r < 0)
		shmctl(m->id, IPC_RMID, NULL);
	return r;
}

int cd_sysv_restore(const struct cd_image *img, int dirfd, cd_err *err)
{
	int r = 0;

	for (size_t i = 0; i < img->nsysv_shm && r >= 0; i++)
		r = shm_free(&img->sysv_shm[i], err);
	for (size_t i = 0; i < img->nsysv_shm && r >= 0; i++) {
		const struct cd_sysv_shm *m = &img->sysv_shm[i];
		if ((r = make_shm(dirfd, m, err)) < 0) {
			r = cd_err_wrap(err, "SysV shared memory segment (key 0x%08lx, id %d)",
			                KEY(m->key), m->id);
			while (i--)
				shmctl(img->sysv_shm[i].id, IPC_RMID, NULL);
		}
	}
	return r;
}

int cd_sysv_restore_late(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->nsysv_shm; i++) {
		const struct cd_sysv_shm *m = &img->sysv_shm[i];
		if (m->removed && shmctl(m->id, IPC_RMID, NULL) < 0)
			return cd_err_sys(
			    err, errno, "SysV shared memory segment id %d: mark removed (IPC_RMID)",
			    m->id);
	}
	return 0;
}

void cd_sysv_restore_undo(const struct cd_image *img)
{
	for (size_t i = 0; i < img->nsysv_shm; i++)
		shmctl(img->sysv_shm[i].id, IPC_RMID, NULL);
}
