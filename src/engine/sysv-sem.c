/* SysV semaphore sets (see sysv-ipc.c). Used by the tree: no pid in
 * /proc/sysvipc/sem (ipc/sem.c sysvipc_sem_proc_show), so each semaphore's
 * last semop/SETVAL/SETALL pid (semctl GETPID) is a task of the tree, or a
 * thread of the tree waits in semop on it; a set created and never
 * operated on is not seen. Taken: key, id, mode, owner,
 * values, and whether it was ever semop'ed (sem_otime, which programs wait
 * for after semget). SEM_UNDO adjustments (semadj) are per task and
 * nothing reads or sets them: a task that has an undo list (kcmp
 * KCMP_SYSVSEM against the dumper, which has none) is refused while the
 * tree uses a set. Not while any set exists on the host: every thread
 * made with CLONE_SYSVSEM (pthread_create) gets an undo list, empty until
 * a semop with SEM_UNDO, so that rule refused every multi-threaded program
 * on a host where some other program holds a set. What is given up: a
 * semadj the tree holds on a set it does not use (another task operated on
 * it last), which is not seen. */
#include <errno.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#define KEY(k) ((unsigned long)(uint32_t)(k))

static int sem_lookup(int32_t key)
{
	return semget(key, 0, 0);
}

static int sem_stat(int id)
{
	struct semid_ds ds;

	return semctl(id, 0, IPC_STAT, &ds);
}

static int sem_rmid(int id)
{
	return semctl(id, 0, IPC_RMID);
}

static int sem_make_any(void)
{
	return semget(IPC_PRIVATE, 1, 0600);
}

const struct cd_sysv_kind cd_sysv_sem_kind = {
    .what = "semaphore set",
    .table = "/proc/sysvipc/sem",
    .next_id = "/proc/sys/kernel/sem_next_id",
    .lookup = sem_lookup,
    .stat = sem_stat,
    .rmid = sem_rmid,
    .make_any = sem_make_any,
};

/* ---- dump ---- */

/* Whether any semaphore's last pid is a task of the tree. */
static int set_used(const struct cd_image *img, int id, size_t nsems, bool *ret, cd_err *err)
{
	*ret = false;
	for (size_t i = 0; i < nsems && !*ret; i++) {
		int pid = semctl(id, (int)i, GETPID);
		if (pid < 0)
			return errno == EINVAL || errno == EIDRM
			           ? 0 /* gone meanwhile */
			           : cd_err_sys(err, errno,
			                        "SysV semaphore set id %d: semctl GETPID (whether "
			                        "the tree uses it cannot be known)",
			                        id);
		*ret = cd_sysv_in_tree(img, pid);
	}
	return 0;
}

static int take_set(const struct cd_image *img, int id, struct cd_sysv_sem *m, bool *ret,
                    cd_err *err)
{
	struct semid_ds ds;
	int r;

	*ret = false;
	if (semctl(id, 0, IPC_STAT, &ds) < 0)
		return errno == EINVAL || errno == EIDRM
		           ? 0
		           : cd_err_sys(err, errno, "SysV semaphore set id %d: IPC_STAT", id);
	if ((r = set_used(img, id, ds.sem_nsems, ret, err)) < 0 ||
	    (!*ret && (r = cd_sysv_waited_on(img, SYS_semop, SYS_semtimedop, id, ret, err)) < 0) ||
	    !*ret)
		return r;
	*m = (struct cd_sysv_sem){
	    .key = ds.sem_perm.__key,
	    .id = id,
	    .mode = ds.sem_perm.mode & 0777,
	    .uid = ds.sem_perm.uid,
	    .gid = ds.sem_perm.gid,
	    .operated = ds.sem_otime != 0,
	    .nsems = ds.sem_nsems,
	};
	m->vals = calloc(ds.sem_nsems + 1, sizeof(*m->vals));
	if (!m->vals)
		return cd_err_set(err, ENOMEM, "out of memory");
	if (semctl(id, 0, GETALL, m->vals) < 0)
		return cd_err_sys(err, errno, "SysV semaphore set (key 0x%08lx, id %d): GETALL",
		                  KEY(m->key), id);
	return 0;
}

/* A task (or thread) with an undo list: its list differs from the
 * dumper's, which is none. */
static int check_undo(pid_t tid, pid_t pid, cd_err *err)
{
	int order;
	int r = cd_kcmp(getpid(), 0, tid, 0, KCMP_SYSVSEM, &order, err);

	if (r < 0)
		return r;
	if (order)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: SEM_UNDO adjustments (semadj) of SysV semaphores%s: not "
		                  "supported (nothing reads or sets them, so a restore would drop "
		                  "them)",
		                  pid, tid == pid ? "" : " of a thread");
	return 0;
}

static int check_undo_lists(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		int r = t->zombie ? 0 : check_undo(t->pid, t->pid, err);
		for (size_t k = 0; r >= 0 && !t->zombie && k < t->nthreads; k++)
			r = check_undo(t->threads[k].tid, t->pid, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int cd_sysv_sem_dump(struct cd_image *img, cd_err *err)
{
	_cleanup_free_ int *ids = NULL;
	size_t n;
	int r = cd_sysv_list_ids(&cd_sysv_sem_kind, &ids, &n, err);

	if (r < 0)
		return r;
	img->sysv_sem = calloc(n + 1, sizeof(*img->sysv_sem));
	if (!img->sysv_sem)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		bool used;
		r = take_set(img, ids[i], &img->sysv_sem[img->nsysv_sem], &used, err);
		if (used)
			img->nsysv_sem++; /* counted even when refused: freed with the image */
		if (r < 0)
			return r;
	}
	return img->nsysv_sem ? check_undo_lists(img, err) : 0;
}

/* ---- restore ---- */

static int make(const void *arg)
{
	const struct cd_sysv_sem *m = arg;

	return semget(m->key, (int)m->nsems, IPC_CREAT | IPC_EXCL | (int)m->mode);
}

/* A set once semop'ed gets a sem_otime again: one semop that takes one
 * from a semaphore and gives it back (or gives and takes, at 0), which
 * leaves every value as it was. */
static int mark_operated(const struct cd_sysv_sem *m, cd_err *err)
{
	short d = m->vals[0] ? -1 : 1;
	struct sembuf ops[2] = {{0, d, IPC_NOWAIT}, {0, (short)-d, IPC_NOWAIT}};

	if (semop(m->id, ops, 2) < 0)
		return cd_err_sys(err, errno, "semop (for sem_otime)");
	return 0;
}

static int set_attrs(const struct cd_sysv_sem *m, cd_err *err)
{
	struct semid_ds ds = {0};

	ds.sem_perm.uid = m->uid;
	ds.sem_perm.gid = m->gid;
	ds.sem_perm.mode = (unsigned short)m->mode;
	if (semctl(m->id, 0, SETALL, m->vals) < 0)
		return cd_err_sys(err, errno, "SETALL");
	if (m->operated && mark_operated(m, err) < 0)
		return -err->code;
	if (semctl(m->id, 0, IPC_SET, &ds) < 0)
		return cd_err_sys(err, errno, "IPC_SET");
	return 0;
}

int cd_sysv_sem_restore(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->nsysv_sem; i++) {
		const struct cd_sysv_sem *m = &img->sysv_sem[i];
		int r = cd_sysv_create(&cd_sysv_sem_kind, m->id, make, m, err);
		if (r >= 0)
			r = set_attrs(m, err);
		if (r < 0)
			return cd_err_wrap(err, "SysV semaphore set (key 0x%08lx, id %d)",
			                   KEY(m->key), m->id);
	}
	return 0;
}
