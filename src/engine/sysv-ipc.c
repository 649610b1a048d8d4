/* SysV IPC objects of the host IPC namespace used by the tree: what the
 * kinds (sysv-shm.c, sysv-msg.c, sysv-sem.c) share, and the entry points.
 *
 * The objects outlive their users and belong to the IPC namespace, which
 * the tree shares with the host: the dump takes the ones the tree used into
 * the image and the restore makes them again in the restoring host's
 * namespace, with their keys and ids (a program keeps ids in memory),
 * before the tree exists. "Used by the tree" is read from what the kernel
 * records per object (each kind's file says what); an object the tree knows
 * by id but never touched in those ways cannot be seen: documented in
 * docs/engine.md. The pids are those of the dumper's pid namespace, as are
 * the tree's. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#define KEY(k) ((unsigned long)(uint32_t)(k))

static const struct cd_sysv_kind *const kinds[] = {
    &cd_sysv_shm_kind,
    &cd_sysv_msg_kind,
    &cd_sysv_sem_kind,
};

bool cd_sysv_in_tree(const struct cd_image *img, long pid)
{
	for (size_t i = 0; pid > 0 && i < img->ntasks; i++)
		if (img->tasks[i].pid == pid)
			return true;
	return false;
}

static int waits_on(pid_t tid, long nr1, long nr2, int id, bool *ret, cd_err *err)
{
	char path[64], line[512];
	long nr;
	unsigned long arg0;

	*ret = false;
	snprintf(path, sizeof(path), "/proc/%d/syscall", tid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return cd_err_sys(err, errno, "open %s", path);
	if (!fgets(line, sizeof(line), f) || sscanf(line, "%ld %lx", &nr, &arg0) != 2)
		return 0; /* "running" or "-1 ..." (not in a syscall) */
	*ret = (nr == nr1 || nr == nr2) && (int)arg0 == id;
	return 0;
}

int cd_sysv_waited_on(const struct cd_image *img, long nr1, long nr2, int id, bool *ret,
                      cd_err *err)
{
	*ret = false;
	for (size_t i = 0; i < img->ntasks && !*ret; i++) {
		const struct cd_task *t = &img->tasks[i];
		int r = t->zombie ? 0 : waits_on(t->pid, nr1, nr2, id, ret, err);
		for (size_t k = 0; r >= 0 && !t->zombie && !*ret && k < t->nthreads; k++)
			r = waits_on(t->threads[k].tid, nr1, nr2, id, ret, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int cd_sysv_list_ids(const struct cd_sysv_kind *k, int **ret, size_t *ret_n, cd_err *err)
{
	_cleanup_free_ int *ids = NULL;
	size_t n = 0, cap = 0;
	char line[512];
	long key, id;

	*ret = NULL;
	*ret_n = 0;
	_cleanup_fclose_ FILE *f = fopen(k->table, "re");
	if (!f)
		return errno == ENOENT ? 0 : cd_err_sys(err, errno, "open %s", k->table);
	if (!fgets(line, sizeof(line), f))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%ld %ld", &key, &id) != 2 || id < 0 || id > INT32_MAX)
			return cd_err_set(err, EINVAL, "%s: unexpected line: %s", k->table, line);
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

int cd_sysv_check_free(const struct cd_sysv_kind *k, int32_t key, int id, cd_err *err)
{
	if (key != IPC_PRIVATE && (k->lookup(key) >= 0 || errno != ENOENT))
		return cd_err_set(err, EEXIST, "SysV %s key 0x%08lx (id %d) is taken on this host",
		                  k->what, KEY(key), id);
	if (k->stat(id) >= 0 || (errno != EINVAL && errno != EIDRM))
		return cd_err_set(err, EEXIST, "SysV %s id %d (key 0x%08lx) is taken on this host",
		                  k->what, id, KEY(key));
	return 0;
}

static int write_next_id(const struct cd_sysv_kind *k, int fd, long id, cd_err *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld", id);

	if (pwrite(fd, buf, (size_t)n, 0) != n)
		return cd_err_sys(err, errno, "write %s", k->next_id);
	return 0;
}

/* The next_id files are locked for other restores. The kernel sets one
 * back to -1 (a value it does not take from a write) when it makes an
 * object: when make fails, a small object is made and removed at once so
 * that it does. */
static void spend(const struct cd_sysv_kind *k)
{
	int id = k->make_any();

	if (id >= 0)
		k->rmid(id);
}

int cd_sysv_create(const struct cd_sysv_kind *k, int id, int (*make)(const void *arg),
                   const void *arg, cd_err *err)
{
	_cleanup_close_ int fd = open(k->next_id, O_RDWR | O_CLOEXEC);
	int got, r;

	if (fd < 0)
		return cd_err_sys(err, errno, "open %s (a SysV id cannot be chosen)", k->next_id);
	if (flock(fd, LOCK_EX) < 0)
		return cd_err_sys(err, errno, "lock %s", k->next_id);
	if ((r = write_next_id(k, fd, id, err)) < 0)
		return r;
	got = make(arg);
	if (got < 0) {
		int saved = errno;
		spend(k);
		return cd_err_sys(err, saved, "create");
	}
	if (got != id) {
		k->rmid(got);
		return cd_err_set(err, EEXIST,
		                  "SysV %s id %d is taken on this host (its slot is in use)",
		                  k->what, id);
	}
	return 0;
}

int cd_sysv_dump(struct cd_image *img, int dirfd, cd_err *err)
{
	int r;

	if ((r = cd_sysv_sem_dump(img, err)) < 0 || (r = cd_sysv_msg_dump(img, err)) < 0)
		return r;
	return cd_sysv_shm_dump(img, dirfd, err);
}

static void remove_all(const struct cd_image *img)
{
	for (size_t i = 0; i < img->nsysv_shm; i++)
		cd_sysv_shm_kind.rmid(img->sysv_shm[i].id);
	for (size_t i = 0; i < img->nsysv_msq; i++)
		cd_sysv_msg_kind.rmid(img->sysv_msq[i].id);
	for (size_t i = 0; i < img->nsysv_sem; i++)
		cd_sysv_sem_kind.rmid(img->sysv_sem[i].id);
}

void cd_sysv_dump_release(const struct cd_image *img)
{
	remove_all(img);
}

static int check_all_free(const struct cd_image *img, cd_err *err)
{
	int r = 0;

	for (size_t i = 0; i < img->nsysv_shm && r >= 0; i++)
		r = cd_sysv_check_free(kinds[0], img->sysv_shm[i].key, img->sysv_shm[i].id, err);
	for (size_t i = 0; i < img->nsysv_msq && r >= 0; i++)
		r = cd_sysv_check_free(kinds[1], img->sysv_msq[i].key, img->sysv_msq[i].id, err);
	for (size_t i = 0; i < img->nsysv_sem && r >= 0; i++)
		r = cd_sysv_check_free(kinds[2], img->sysv_sem[i].key, img->sysv_sem[i].id, err);
	return r;
}

static int make_all(const struct cd_image *img, int dirfd, cd_err *err)
{
	int r;

	if ((r = cd_sysv_shm_restore(img, dirfd, err)) < 0 ||
	    (r = cd_sysv_msg_restore(img, err)) < 0 || (r = cd_sysv_sem_restore(img, err)) < 0)
		remove_all(img);
	return r;
}

/* The objects record who made and last used them (shm_cpid, shm_lpid,
 * msg_lspid, each semaphore's pid), which is how a later dump of the
 * restored tree finds them: they are made by a helper that has the root's
 * pid (clone3 set_tid; free until the tree is made), reporting its error
 * on a pipe. */
static int make_as_root(const struct cd_image *img, int dirfd, cd_err *err)
{
	pid_t set_tid[1] = {img->root};
	struct clone_args args = {
	    .exit_signal = SIGCHLD,
	    .set_tid = (uint64_t)(uintptr_t)set_tid,
	    .set_tid_size = 1,
	};
	int fds[2], status;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return cd_err_sys(err, errno, "pipe");
	pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (pid == 0) {
		cd_err e = {0};
		close(fds[0]);
		int r = make_all(img, dirfd, &e);
		if (r < 0 && write(fds[1], &e, sizeof(e)) != (ssize_t)sizeof(e))
			_exit(2);
		_exit(r < 0);
	}
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return cd_err_sys(err, errno, "clone3 pid %d (to make the SysV objects)",
		                  img->root);
	}
	ssize_t n = read(fds[0], err, sizeof(*err));
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(*err))
		return -err->code;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		remove_all(img);
		return cd_err_set(err, EIO,
		                  "the helper making the SysV objects failed (status %#x)", status);
	}
	return 0;
}

/* Every key and id is checked before any object is made: a taken one
 * refuses the restore with nothing made. Past that, a failure removes
 * every object of the image (none of them was another's). */
int cd_sysv_restore(const struct cd_image *img, int dirfd, cd_err *err)
{
	int r = check_all_free(img, err);

	if (r < 0 || (!img->nsysv_shm && !img->nsysv_msq && !img->nsysv_sem))
		return r;
	return make_as_root(img, dirfd, err);
}

int cd_sysv_restore_late(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->nsysv_shm; i++) {
		const struct cd_sysv_shm *m = &img->sysv_shm[i];
		if (!m->removed)
			continue;
		if (cd_sysv_shm_kind.rmid(m->id) < 0)
			return cd_err_sys(
			    err, errno, "SysV shared memory segment id %d: mark removed (IPC_RMID)",
			    m->id);
	}
	return 0;
}

void cd_sysv_restore_undo(const struct cd_image *img)
{
	remove_all(img);
}
