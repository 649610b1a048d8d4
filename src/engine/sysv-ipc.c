/* SysV IPC objects of the host IPC namespace used by the tree: refused at
 * dump, by name, while the tree is still stopped (not restored yet).
 *
 * The objects outlive their users and are not attached to a task (only shm
 * segments are, through their /SYSV mappings, which mem.c refuses), so
 * "used by the tree" is read from what the kernel records per object:
 *   shm: creator and last shmat/shmdt pid (cpid, lpid in /proc/sysvipc/shm);
 *   msg: last msgsnd and msgrcv pid (lspid, lrpid in /proc/sysvipc/msg);
 *   sem: no pid in /proc/sysvipc/sem (ipc/sem.c sysvipc_sem_proc_show), so
 *        each semaphore's last semop/SETVAL pid (semctl GETPID).
 * An object the tree knows by id but never touched in any of these ways
 * (a set created and not yet operated on, a queue not yet used) cannot be
 * seen: documented in docs/engine.md. The pids are those of the dumper's
 * pid namespace, as are the tree's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sem.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

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
	                  "objects are not supported (a restore would not bring it back); "
	                  "have the process remove it (ipcrm) or use POSIX IPC",
	                  pid, what, (unsigned long)key & 0xffffffffUL, id);
}

/* shm: key shmid perms size cpid lpid ...; msg: key msqid perms cbytes
 * qnum lspid lrpid ...: the two pids are the 5th and 6th, or 6th and 7th,
 * columns. */
static int check_table(const struct cd_image *img, const char *path, const char *what, int skip,
                       cd_err *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[512];
	long key, id, a, b;

	if (!f)
		return errno == ENOENT ? 0 : cd_err_sys(err, errno, "open %s", path);
	if (!fgets(line, sizeof(line), f))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		int n = skip ? sscanf(line, "%ld %ld %*s %*s %*s %ld %ld", &key, &id, &a, &b)
		             : sscanf(line, "%ld %ld %*s %*s %ld %ld", &key, &id, &a, &b);
		if (n != 4)
			return cd_err_set(err, EINVAL, "%s: unexpected line: %s", path, line);
		if (in_tree(img, a) || in_tree(img, b))
			return refuse(what, key, id, in_tree(img, a) ? a : b, err);
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
				                  (unsigned long)key & 0xffffffffUL, id);
			if (in_tree(img, pid))
				return refuse("semaphore set", key, id, pid, err);
		}
	}
	return 0;
}

int cd_dump_check_sysv(const struct cd_image *img, cd_err *err)
{
	int r;

	if ((r = check_table(img, "/proc/sysvipc/shm", "shared memory segment", 0, err)) < 0 ||
	    (r = check_table(img, "/proc/sysvipc/msg", "message queue", 1, err)) < 0)
		return r;
	return check_sems(img, err);
}
