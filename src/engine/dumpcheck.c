/* What the restore would refuse, refused at dump time instead, while the
 * tree is still stopped (dump.c releases it untouched and removes the
 * image): a dump that kills the tree must be one that can come back.
 *
 * The restore reaches every file of the image by the path the dumper read
 * (/proc/PID/exe, maps, fd and cwd links: named from the dumper's root,
 * whatever the task's own root): the executable and mapped files are
 * opened again, fds reopened, the cwd entered. So each such path must
 * still lead to the very file the task holds: not deleted (" (deleted)"),
 * not replaced by another file, not hidden by a mount over it, and still
 * writable where it is opened for writing again. Tasks that share an fd
 * table, cwd and root, or memory would come back apart: refused too. What
 * the restore checks that cannot be known here (that the pids are free,
 * the restorer's kernel, a file changed after the dump) stays with it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#define REPLACED "the path now leads to another file (replaced, or a mount over it)"

static bool deleted(const char *link)
{
	size_t n = strlen(link);

	return n > 10 && !strcmp(link + n - 10, " (deleted)");
}

/* Whether path leads to the object behind the /proc link (stat follows
 * both); *errnum is set when the path leads nowhere. */
static bool same_object(const char *proc_link, const char *path, bool nofollow, int *errnum)
{
	struct stat held, named;
	int r = nofollow ? lstat(path, &named) : stat(path, &named);

	*errnum = 0;
	if (r < 0) {
		*errnum = errno;
		return false;
	}
	if (stat(proc_link, &held) < 0)
		return true; /* nothing to compare with: the dump reads it again anyway */
	if ((held.st_mode & S_IFMT) != (named.st_mode & S_IFMT))
		return false;
	/* a device reopened by path is the device, whichever node names it */
	if (S_ISCHR(held.st_mode) || S_ISBLK(held.st_mode))
		return held.st_rdev == named.st_rdev;
	return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

/* The executable: mapped again and opened for PR_SET_MM_MAP by its path,
 * which must be executable (check_mapped_files in restore.c). */
static int check_exe(pid_t pid, const char *comm, cd_err *err)
{
	_cleanup_free_ char *exe = NULL;
	char link[64];
	int r, errnum;

	if ((r = cd_proc_readlink(pid, "exe", &exe, err)) < 0)
		return r;
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	if (deleted(exe))
		return cd_err_set(
		    err, ESTALE,
		    "pid %d (%s): its executable %s was deleted or replaced since it "
		    "started (an upgrade?); a restore could not map it again: restart "
		    "the process from the file now there",
		    pid, comm, exe);
	if (!same_object(link, exe, false, &errnum))
		return cd_err_set(err, ESTALE,
		                  "pid %d (%s): its executable %s: " REPLACED
		                  "%s%s; a restore would run that one: undo the change or restart "
		                  "the process",
		                  pid, comm, exe, errnum ? ", or to none: " : "",
		                  errnum ? strerror(errnum) : "");
	if (faccessat(AT_FDCWD, exe, X_OK, AT_EACCESS) < 0)
		return cd_err_set(
		    err, EACCES,
		    "pid %d (%s): its executable %s is not executable by path (%s); a "
		    "restore opens it again: make it executable (chmod +x)",
		    pid, comm, exe, strerror(errno));
	return 0;
}

/* A file mapping is mapped again by its path (mem.c); memfd, SysV, aio
 * rings and shared anonymous objects are not files of a path and are left
 * to the memory module's own classification. */
static bool mapped_by_path(const struct cd_proc_map *m)
{
	const char *p = m->path;

	if (p[0] != '/' || !strncmp(p, "/memfd:", 7) || !strncmp(p, "/SYSV", 5) ||
	    !strncmp(p, "/dev/zero", 9) || !strncmp(p, "/[", 2))
		return false;
	/* a mapping of a deleted file, shared or private, is of the image's
	 * deleted file (mem.c, fd-deleted.c), made again at restore */
	return !deleted(p);
}

static int check_mapping(pid_t pid, const char *comm, const struct cd_proc_map *m, cd_err *err)
{
	char link[96];
	int errnum;

	snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start,
	         m->end);
	if (!same_object(link, m->path, false, &errnum))
		return cd_err_set(err, ESTALE,
		                  "pid %d (%s): mapped file %s (%" PRIx64 "-%" PRIx64 "): " REPLACED
		                  "%s%s; a restore would map that one: undo the change or restart "
		                  "the process",
		                  pid, comm, m->path, m->start, m->end,
		                  errnum ? ", or to none: " : "", errnum ? strerror(errnum) : "");
	/* a writable shared mapping is opened O_RDWR again */
	if (m->shared && (m->prot & PROT_WRITE) &&
	    faccessat(AT_FDCWD, m->path, W_OK, AT_EACCESS) < 0)
		return cd_err_set(err, errno,
		                  "pid %d (%s): mapped file %s (%" PRIx64 "-%" PRIx64
		                  "): shared and writable, but no longer writable by its path "
		                  "(%s); a restore opens it for writing again: make it writable "
		                  "(a read-only mount over it?)",
		                  pid, comm, m->path, m->start, m->end, strerror(errno));
	return 0;
}

static int check_mappings(pid_t pid, const char *comm, cd_err *err)
{
	_cleanup_free_ struct cd_proc_map *maps = NULL;
	size_t n;
	int r = cd_proc_maps(pid, &maps, &n, err);

	for (size_t i = 0; r >= 0 && i < n; i++)
		if (mapped_by_path(&maps[i]))
			r = check_mapping(pid, comm, &maps[i], err);
	return r;
}

/* The cwd is entered and the root chrooted into by path (restore.c, fsroot.c). */
static int check_dir(pid_t pid, const char *comm, const char *name, const char *what, cd_err *err)
{
	_cleanup_free_ char *dir = NULL;
	char link[64];
	int r, errnum;

	if ((r = cd_proc_readlink(pid, name, &dir, err)) < 0)
		return r;
	snprintf(link, sizeof(link), "/proc/%d/%s", pid, name);
	if (deleted(dir))
		return cd_err_set(err, ESTALE,
		                  "pid %d: its %s directory %s was deleted; a restore could not "
		                  "enter it: have the process leave it (chdir) or restart it",
		                  pid, what, dir);
	if (!same_object(link, dir, false, &errnum))
		return cd_err_set(err, ESTALE,
		                  "pid %d (%s): its %s directory %s: " REPLACED
		                  "%s%s; a restore would enter that one: undo the change",
		                  pid, comm, what, dir, errnum ? ", or to none: " : "",
		                  errnum ? strerror(errnum) : "");
	return 0;
}

int cd_dump_check_task(pid_t pid, const char *comm, cd_err *err)
{
	int r;

	/* the directories first: a root hidden hides the files inside it too */
	if ((r = check_dir(pid, comm, "cwd", "working", err)) < 0 ||
	    (r = check_dir(pid, comm, "root", "root", err)) < 0 ||
	    (r = check_exe(pid, comm, err)) < 0)
		return r;
	return check_mappings(pid, comm, err);
}

/* Kinds the controller reopens by path (files.c open_path_obj). */
static bool reopened_by_path(enum cd_fd_kind kind)
{
	return kind == CD_FD_REG || kind == CD_FD_DIR || kind == CD_FD_CHR || kind == CD_FD_FIFO ||
	       kind == CD_FD_PATH;
}

/* The controller opens a regular file with the fd's access mode, and a
 * FIFO read-write whatever the fd's mode (files.c). */
static bool reopened_for_writing(const struct cd_fd *d)
{
	return d->kind == CD_FD_FIFO ||
	       (d->kind == CD_FD_REG && (d->flags & O_ACCMODE) != O_RDONLY);
}

static int check_fd(const struct cd_task *t, const struct cd_fd *d, cd_err *err)
{
	char link[64];
	int errnum;

	/* reopened by the task after its chroot, inside its root (fsroot.c) */
	if (d->kind == CD_FD_PROC && t->root && strcmp(t->root, "/"))
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d (%s): fd %d (%s): a /proc file of a task whose root is %s "
		    "(chroot) is not supported: the restored task would reopen it "
		    "inside its root; have it close the fd",
		    t->pid, t->comm, d->fd, d->path, t->root);
	if (!reopened_by_path(d->kind) || !d->path)
		return 0;
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", t->pid, d->fd);
	/* a procfs seen elsewhere (inside a chroot, say) names pids by a path
	 * the restore would not recognize as the tree's: reopened by the
	 * controller before the tree exists, it would be another process's */
	struct statfs fs;
	if (strncmp(d->path, "/proc/", 6) && statfs(link, &fs) == 0 &&
	    fs.f_type == PROC_SUPER_MAGIC)
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d (%s): fd %d (%s): a file of a procfs mounted elsewhere than "
		    "/proc is not supported; have the process open it under /proc",
		    t->pid, t->comm, d->fd, d->path);
	if (!same_object(link, d->path, d->flags & O_NOFOLLOW, &errnum))
		return cd_err_set(err, ESTALE,
		                  "pid %d (%s): fd %d (%s): " REPLACED
		                  "%s%s; a restore would open that one: undo the change, or have "
		                  "the process close the fd",
		                  t->pid, t->comm, d->fd, d->path, errnum ? ", or to none: " : "",
		                  errnum ? strerror(errnum) : "");
	if (reopened_for_writing(d) && faccessat(AT_FDCWD, d->path, W_OK, AT_EACCESS) < 0)
		return cd_err_set(err, errno,
		                  "pid %d (%s): fd %d (%s): open for writing, but no longer "
		                  "writable by its path (%s); a restore opens it for writing "
		                  "again: make it writable (a read-only mount over it?), or have "
		                  "the process close the fd",
		                  t->pid, t->comm, d->fd, d->path, strerror(errno));
	return 0;
}

int cd_dump_check_fds(const struct cd_image *img, cd_err *err)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < img->ntasks; i++)
		for (size_t j = 0; r >= 0 && j < img->tasks[i].nfds; j++)
			r = check_fd(&img->tasks[i], &img->tasks[i].fds[j], err);
	return r < 0 ? r : cd_unix_check_peers(img, err);
}

/* ---- objects shared between tasks by clone() flags ---- */

/* Two tasks (not threads: those are refused) that share their fd table,
 * cwd and root, or memory would each get their own at restore. */
int cd_dump_check_sharing(const struct cd_image *img, cd_err *err)
{
	static const struct {
		int type;
		const char *what;
	} kinds[] = {{KCMP_FILES, "fd table (CLONE_FILES)"},
	             {KCMP_FS, "working and root directories (CLONE_FS)"},
	             {KCMP_VM, "memory (CLONE_VM)"}};
	_cleanup_free_ pid_t *pids = calloc(img->ntasks + 1, sizeof(*pids));
	size_t n = 0;
	int r, order;

	if (!pids)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < img->ntasks; i++)
		if (!img->tasks[i].zombie)
			pids[n++] = img->tasks[i].pid;

	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		/* sorted by the object, tasks sharing one are neighbours */
		if ((r = cd_kcmp_sort_tasks(pids, n, kinds[k].type, err)) < 0)
			return cd_err_wrap(err, "%s", kinds[k].what);
		for (size_t i = 1; i < n; i++) {
			if ((r = cd_kcmp(pids[i - 1], 0, pids[i], 0, kinds[k].type, &order, err)) <
			    0)
				return cd_err_wrap(err, "%s", kinds[k].what);
			if (order == 0)
				return cd_err_set(
				    err, EOPNOTSUPP,
				    "pids %d and %d share their %s, which a restore "
				    "would not: not supported (have them unshare() it, "
				    "or start them without that clone flag)",
				    pids[i - 1], pids[i], kinds[k].what);
		}
	}
	return 0;
}
