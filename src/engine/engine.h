/* The checkpoint/restore engine: our own, ptrace-based (docs/engine.md; see
 * docs/image-format.md for what an image holds). Library code: it reports
 * through cd_err and logs nothing above debug.
 *
 * Call it from a single-threaded process (the daemon's forked worker): the
 * restore clones new tasks from the caller and runs code in them before
 * their memory is replaced. It needs root (CAP_SYS_PTRACE, CAP_SYS_ADMIN for
 * the exe link, set_tid). SIGCHLD is at its default while a call runs. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/error.h"
#include "shared/fsid.h"

struct cd_plugins; /* plugins/plugins.h */

/* Options are versioned: a caller sets .version to the CD_ENGINE_OPTS_VERSION
 * it was built with; fields added by a later version are read only when
 * .version says they are there. Versions: 1 the first fields; 2 stats,
 * progress and leave_stopped; 3 dump's commit, restore's open_as and check;
 * 4 dump's external_stdio, restore's stdio_external_only and the new
 * meaning of stdio_fd (docs/engine.md, "External stdio"); 5 plugins
 * (docs/plugins.md); 6 tcp_established and tcp_close of dump and restore,
 * dump's parent and track (incremental dumps); 7 restore's lazy, dump's streams and
 * page_codec.
 * A version outside 1..CD_ENGINE_OPTS_VERSION is refused (EINVAL). */
#define CD_ENGINE_OPTS_VERSION 7

/* Progress over the page data: done of total bytes of the stage, which is
 * "dump" (reading pages out of the tasks), "verify" (checksums of System V
 * segments' page files, before any process exists; none without them) or
 * "restore" (putting pages back, each task's page file checksummed as it
 * streams in, before any task runs).
 * Called from the engine's thread every few MiB and once at the end of a
 * stage (done == total). */
typedef void (*cd_progress_fn)(const char *stage, uint64_t done, uint64_t total, void *userdata);

/* Where a dump's time went, in nanoseconds (filled on success). */
struct cd_dump_stats {
	uint64_t freeze_ns;   /* seizing the tree and checking it */
	uint64_t state_ns;    /* per task: mappings, registers, /proc facts, injected queries */
	uint64_t files_ns;    /* fds: identity, pipe data, paths */
	uint64_t mem_scan_ns; /* pagemaps, reading pages out of the tasks, zero checks */
	uint64_t write_ns;    /* writing page files */
	uint64_t fsync_ns;    /* fsync of page files, the manifest and the directory */
	uint64_t release_ns;  /* killing the tree, or letting it run on */
	uint64_t total_ns;
	uint64_t tasks;
	uint64_t pages_bytes; /* page data written */
};

/* Where a restore's time went, in nanoseconds (filled on success). */
struct cd_restore_stats {
	uint64_t validate_ns; /* manifest, page file checksums, pids, files, vDSO */
	uint64_t files_ns;    /* opening the image's files and pipes */
	uint64_t create_ns;   /* shared memory objects, the tree (clone3, fds, cwd …) */
	uint64_t mem_ns;      /* mapping and filling memory */
	uint64_t state_ns;    /* every other resource: registers, signals, creds … */
	uint64_t release_ns;  /* detaching the tasks */
	uint64_t total_ns;
	uint64_t tasks;
	uint64_t pages_bytes; /* page data put back */
};

/* Dirty-page tracking between dumps of one tree (docs/engine.md,
 * "Incremental checkpoints"): per task, a userfaultfd made inside the task
 * and taken out of it, whose write-protect-async registration of the
 * task's private anonymous mappings tells which pages were written since.
 * The caller keeps it between dumps and owns its fds. */
struct cd_track_task {
	pid_t pid;
	uint64_t start_time; /* /proc/PID/stat field 22: the same process */
	int uffd;
};
struct cd_track {
	struct cd_track_task *tasks;
	size_t n;
	uint64_t image_hash; /* manifest checksum of the image these belong to */
	bool incremental;    /* out: the image names its parent */
};
/* Closes its fds and empties it. */
void cd_track_clear(struct cd_track *tr);

struct cd_dump_opts {
	int version;        /* CD_ENGINE_OPTS_VERSION */
	pid_t pid;          /* root of the tree to checkpoint */
	const char *dir;    /* image directory; must not exist yet */
	bool leave_running; /* detach instead of killing the tree afterwards */
	bool shell_job;     /* a task may have the outside session's terminal as its
	                     * controlling terminal, which the restore does not give back */
	/* version 2 */
	struct cd_dump_stats *stats; /* NULL: not wanted */
	cd_progress_fn progress;     /* NULL: none */
	void *userdata;
	/* version 3 */
	/* Called once the image is complete and durable, while the tree is
	 * still stopped under the engine: the caller makes the checkpoint
	 * final (packs it, records it). Only when it returns 0 is the tree
	 * killed (or let go with leave_running); when it fails, the tree runs
	 * on untouched as after any failed dump and the image directory is
	 * removed. NULL: none. */
	int (*commit)(void *userdata, cd_err *err);
	void *commit_userdata;
	/* version 4 */
	/* Bit N: the root's fd N is the caller's (the daemon's log file or
	 * attach terminal of a managed job), recorded as external stdio that a
	 * restore must replace, with every fd sharing its open file. Any other
	 * fd 0-2 is recorded as the object it is, marked with its std slot.
	 * Before version 4 all three are external. */
	unsigned external_stdio;
	/* version 5 */
	/* The loaded plugins (plugins/plugins.h) whose hooks run at their
	 * points (docs/plugins.md); NULL: none. */
	struct cd_plugins *plugins;
	/* version 6 */
	/* An established TCP connection to a peer outside the tree is
	 * refused unless one of these says what to do: tcp_established dumps
	 * it (through TCP repair), its traffic locked from before its state is
	 * read until its restore, so that its peer notices nothing (needs
	 * nft); tcp_close records it as a closed socket (docs/engine.md, "TCP
	 * connections"). */
	bool tcp_established, tcp_close;
	/* With track and leave_running, the tree's memory is tracked from
	 * this dump on: when commit is called (and on success) *track holds
	 * this dump's trackers, for the next dump; on failure, or without
	 * leave_running, it is emptied. parent: the image directory of the
	 * previous checkpoint, the one whose dump filled *track, as a restore
	 * will find it (absolute); pages of tracked tasks not written since
	 * are then recorded as the parent's (track->incremental). A parent
	 * that does not match track, or a task not tracked, is dumped in full:
	 * never wrong, only slower. NULL: full dumps. */
	const char *parent;
	struct cd_track *track;
	/* version 7 */
	/* Page data over `streams` files per task, each written (and at
	 * restore read) by a thread of its own, each chunk compressed with
	 * page_codec (0 none, 1 lz4, 2 zstd level 1) where that saves space;
	 * docs/engine.md, "Parallel streams". 0 or 1 with no codec: the plain
	 * single page file. A restore finds the layout in the image. */
	unsigned streams; /* 0..16 */
	unsigned page_codec;
};

/* The decoded image, for a check callback (engine/image.h). */
struct cd_image;

struct cd_restore_opts {
	int version;     /* CD_ENGINE_OPTS_VERSION */
	const char *dir; /* image directory */
	/* Replacements for the root task's std slots (fd 0, 1, 2 and every fd
	 * sharing those open files; docs/engine.md says which fd takes which).
	 * Version 4: a fd >= 0 replaces slot N whether the dump recorded it as
	 * external or as an object; -1 keeps the image's object, and for an
	 * external slot (or a terminal of a --shell-job image) the caller's own
	 * fd N. Before version 4 every slot is replaced, -1 by the caller's own
	 * fd N. */
	int stdio_fd[3];
	/* version 2 */
	struct cd_restore_stats *stats; /* NULL: not wanted */
	cd_progress_fn progress;        /* NULL: none */
	void *userdata;
	bool leave_stopped; /* every task is released with SIGSTOP pending: it
	                     * stops before running an instruction of its own */
	/* version 3 */
	/* Opens every path the image names (fds, cwd, mapped files, the
	 * executable) with this user's filesystem rights instead of root's:
	 * for a checkpoint a user could edit, the kernel then refuses what
	 * that user may not reach. NULL: root's own. */
	const struct cd_fs_identity *open_as;
	/* Called on the manifest exactly as the engine decoded it and will use
	 * it, before anything else is done: the caller's policy (what a user's
	 * image may ask for). Failing refuses the restore. NULL: none. */
	int (*check)(const struct cd_image *img, void *userdata, cd_err *err);
	void *check_userdata;
	/* version 4 */
	/* Bit N: stdio_fd[N] replaces slot N only if the dump recorded it as
	 * external. The daemon re-creating a managed job's log or terminal
	 * leaves a FIFO or file the job itself put on its stdin or stdout as
	 * it was; --out gives /dev/null to an external stdin only. */
	unsigned stdio_external_only;
	/* version 5 */
	/* The loaded plugins; an image that names a plugin not among them
	 * (or not ready) is refused before anything is created. NULL: none. */
	struct cd_plugins *plugins;
	/* version 6 */
	/* An image's TCP connection to a peer outside it is refused unless one
	 * of these is set: tcp_established makes it again (and releases its
	 * lock), tcp_close makes its socket closed (docs/engine.md, "TCP
	 * connections"). Not both. */
	bool tcp_established, tcp_close;
	/* version 7 */
	/* Lazy restore (docs/engine.md, "Lazy restore"): non-NULL, the tree
	 * is released before its private anonymous memory is filled, and
	 * *lazy gets the server that fills it (NULL when nothing was left to
	 * it). The caller must run cd_lazy_serve on it at once, in a process
	 * or thread apart from the tree, then cd_lazy_free it; every other
	 * copy of its fds must be closed (cd_lazy_free in the other process
	 * after a fork), or a fault would wait forever. */
	struct cd_lazy **lazy;
};

/* The server of a lazy restore (engine/lazy.c). */
struct cd_lazy;
/* Answers the tree's page faults from the page files while a pass copies
 * every page and checks each page file's checksum; returns once every
 * page is in. On a read error or a bad checksum it kills the tree (which
 * ran already: a lazy restore gives up refusing a bad image before any
 * code runs) and fails. */
int cd_lazy_serve(struct cd_lazy *lz, cd_err *err);
/* Page data left to the server, in bytes. */
uint64_t cd_lazy_bytes(const struct cd_lazy *lz);
void cd_lazy_free(struct cd_lazy *lz);

/* Asks the dump or restore running in this process to stop at its next
 * safe point (between tasks, between page chunks): it then fails with
 * ECANCELED through its ordinary failure path, the dumped tree running on,
 * the restored tasks killed. Async-signal-safe: for a SIGTERM handler. */
void cd_engine_cancel(void);

/* Kernel features the engine depends on (probe.c), probed on the first
 * call and kept for the life of the process. needed_by: CD_PROBE_DUMP,
 * CD_PROBE_RESTORE, or 0 for one reported only (a dump or restore that
 * needs a missing feature refuses before it touches anything). */
#define CD_PROBE_DUMP    1u
#define CD_PROBE_RESTORE 2u
struct cd_probe {
	const char *name; /* as `cedana check` prints it: "ptrace", "kcmp" … */
	bool ok;
	unsigned needed_by;
	char detail[200];
};
/* Every probe (*ret_n of them), in the order `cedana check` lists them. */
const struct cd_probe *cd_engine_probe(size_t *ret_n);

/* Checkpoints the tree rooted at opts->pid. On failure nothing is left in
 * opts->dir and the tree runs on untouched. */
int cd_engine_dump(const struct cd_dump_opts *opts, cd_err *err);

/* Validates the image, then recreates the tree as a child of the caller,
 * running when this returns (stopped with leave_stopped); the caller reaps the root (waitpid).
 * *ret_pid gets the root's pid. On failure no process is left behind. */
int cd_engine_restore(const struct cd_restore_opts *opts, pid_t *ret_pid, cd_err *err);
