/* Shared between the engine's resource modules; not part of the public API. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/image.h"
#include "engine/inject/inject.h"
#include "engine/proc.h"
#include "plugins/plugin.h"

/* Monotonic clock in nanoseconds, for the stats. */
uint64_t cd_now_ns(void);

/* Progress over page data, reported to the caller's function (if any). */
struct cd_progress {
	const char *stage;
	cd_progress_fn fn;
	void *userdata;
	uint64_t done, total, reported;
};
/* -ECANCELED once cd_engine_cancel was called: checked at safe points. */
int cd_check_cancel(cd_err *err);
/* Adds bytes done; reports every few MiB. */
void cd_progress_add(struct cd_progress *p, uint64_t bytes);
/* Reports the end: done becomes total. */
void cd_progress_end(struct cd_progress *p);

/* Per-task context while dumping: the task is seized; scratch is a page
 * mapped in the task (by injection) for syscalls with memory arguments. */
struct cd_dump_ctx {
	struct cd_image *img;
	cd_inject *inj;
	int dirfd;
	uint64_t scratch;
	uint64_t batch_code; /* the batch runner (cd_call_batch); the batch area is scratch */
	/* per-thread halves: their injected calls go here, run in one round
	 * trip after the last half (dump.c) */
	struct cd_batch *batch;
	bool shell_job;
	unsigned external_stdio; /* cd_dump_opts' (all three before version 4) */
	/* the parent task, dumped already, and its pagemap (-1 when none) */
	const struct cd_task *parent;
	int parent_pm_fd;
	/* object ids shared across tasks, found with kcmp */
	struct cd_dump_tree *tree;
	struct cd_dump_stats *stats;
	struct cd_progress *progress;
	/* when not NULL, memory is only counted: bytes of page data to read */
	uint64_t *count;
	struct cd_dump_plugins *plugins;    /* NULL: none (plugin-hooks.c) */
	struct cd_dirty_state *dirty_state; /* NULL: no tracking (dirty.c) */
	const struct cd_dirty *dirty;       /* the task's written pages; NULL: all */
};

/* Per-task context while restoring: the task runs our trampoline; data is a
 * scratch area inside it for syscall arguments. */
struct cd_restore_ctx {
	const struct cd_image *img;
	cd_inject *inj;
	int dirfd;
	uint64_t tramp, tramp_len;
	uint64_t data, data_len;
	uint64_t batch_code; /* the batch runner (cd_call_batch); its area is data */
	/* per-thread halves of phase TASK: their injected calls go here, run
	 * in one round trip after the last half (restore.c) */
	struct cd_batch *batch;
	uint64_t vtmp;            /* free area for moving the vDSO family in two steps */
	const struct cd_shm *shm; /* shared anonymous memory objects, held by the controller */
	size_t nshm;
	struct cd_progress *progress;
	/* the premapped area (kept by cd_layout_unmap_rest) and, per mapping of
	 * the task, where the task premapped it (NULL: no plan) */
	uint64_t premap_base, premap_len;
	const struct cd_premap_vma *premap;
	const struct cd_file_objs *objs; /* the open files the tasks inherited */
	/* the part of the task's page file checksum the task itself read
	 * while premapping (cd_mem_premap) */
	const struct cd_csum_part *pages_csum;
	struct cd_chain *chain; /* the image's parents (parent.c); NULL: none */
	struct cd_lazy *lazy;   /* lazy restore (lazy.c); NULL: eager */
};

/* Premapped memory (mem.c). Private anonymous and private file mappings
 * with contents are mapped and filled by each new task itself, before it
 * clones its children, in a free area of the address space: one slot per
 * distinct start and end in the image. A child keeps its parent's slot for
 * a mapping whose pages it still shared copy-on-write at dump time (and
 * rewrites only its own pages in it), so the sharing survives; the memory
 * module later moves each slot to its place with mremap. The plan is made
 * once by the controller, before the tree exists, and read by every task. */
enum cd_premap_how {
	CD_PREMAP_NONE,    /* mapped and filled by injected calls (map_vma) */
	CD_PREMAP_FRESH,   /* mapped fresh in the slot and filled by the task */
	CD_PREMAP_INHERIT, /* the parent's slot, inherited copy-on-write */
};
struct cd_premap_vma {
	uint64_t off; /* of the slot from the area's base */
	uint8_t how;  /* enum cd_premap_how */
	bool lazy;    /* left to the lazy restore's server (lazy.c) */
	/* its page data's bytes in the page file: a walk passes over a
	 * mapping of many runs at once */
	uint64_t data;
};
struct cd_premap {
	uint64_t base, len;          /* base: set once the area is placed */
	struct cd_premap_vma **task; /* per task of the image, per mapping */
	size_t ntasks;
	bool lazy; /* set before the plan: lazy mappings are not premapped */
	/* per task, compressed streams with a record index, eager: where its
	 * records stored as they are lie (cd_mem_premap_stored); else NULL */
	struct cd_page_stored **stored;
};
/* Lazy restore (lazy.c): whether a mapping is left to the server; its
 * registration, at the mapping's place in the task (off: of its data in
 * the task's page file); the shared way of taking a userfaultfd out of a
 * task. */
bool cd_lazy_vma(const struct cd_vma *v);
int cd_lazy_new(struct cd_lazy **ret, cd_err *err);
/* The image's page layout (plain by default): streamed page data is
 * decoded by the server where a fault or the pass needs it. */
void cd_lazy_set_layout(struct cd_lazy *lz, const struct cd_page_layout *l);
int cd_lazy_register(struct cd_lazy *lz, cd_inject *inj, int dirfd, const struct cd_task *t,
                     const struct cd_vma *v, uint64_t off, cd_err *err);
/* Stops the thread that answers faults while the restore runs. */
void cd_lazy_handover(struct cd_lazy *lz);
/* Gives lz the manifest's text its mappings' runs are kept in (cd_vma.later),
 * before the image is freed and lz handed to the caller. */
void cd_lazy_keep_text(struct cd_lazy *lz, char *text);
int cd_uffd_from_task(cd_inject *inj, pid_t pid, int flags, int *ret, cd_err *err);
int cd_mem_premap_plan(const struct cd_image *img, struct cd_premap *plan, cd_err *err);
void cd_mem_premap_free(struct cd_premap *plan);
/* Opens, for an eager restore of compressed streams with a record index,
 * each task's stored records (cd_page_stored_open), before any task
 * exists: the tasks read them in steps (cd_mem_premap_read_stored). */
int cd_mem_premap_stored(const struct cd_image *img, struct cd_premap *plan, int dirfd,
                         cd_err *err);
/* Runs in the new task t, before it clones its children: drops the
 * parent's slots t does not keep and maps t's own, ready for its data
 * (cd_mem_premap_read with cd_mem_premap_help, or cd_mem_premap_fill). */
int cd_mem_premap(const struct cd_premap *plan, const struct cd_image *img, const struct cd_task *t,
                  cd_err *err);
/* t's premapped data from its plain page file, in steps that the task
 * (cd_mem_premap_read, pages_fd) and the controller (cd_mem_premap_help,
 * writing into task pid) take in turns from the counter *next, shared by
 * both; each adds what it read to csum, for the controller's check. Either
 * side stops the other on an error (cd_mem_premap_stop). */
#define CD_PREMAP_STEPS_STOP (1u << 31)
bool cd_mem_premap_has_data(const struct cd_premap *plan, const struct cd_image *img,
                            const struct cd_task *t);
int cd_mem_premap_read(const struct cd_premap *plan, const struct cd_image *img,
                       const struct cd_task *t, int pages_fd, uint32_t *next,
                       struct cd_csum_part *csum, cd_err *err);
int cd_mem_premap_help(const struct cd_premap *plan, const struct cd_image *img, int dirfd,
                       const struct cd_task *t, pid_t pid, uint32_t *next,
                       struct cd_csum_part *csum, cd_err *err);
/* The same steps over t's records stored as they are (plan->stored), task
 * side: 0 at once where there are none. cd_mem_premap_fill takes the
 * controller's side of them. */
int cd_mem_premap_read_stored(const struct cd_premap *plan, const struct cd_image *img,
                              const struct cd_task *t, uint32_t *next, struct cd_csum_part *csum,
                              cd_err *err);
void cd_mem_premap_stop(uint32_t *next);
/* In the new task t while the controller writes its streamed data in:
 * faults t's premapped data pages in, front to back, until *done is set,
 * so the first touch of fresh memory runs on the task's core and the
 * controller's writes meet present pages. Changes no byte: a page already
 * written is left as it is (MADV_POPULATE_WRITE). */
void cd_mem_premap_populate(const struct cd_premap *plan, const struct cd_image *img,
                            const struct cd_task *t, const uint32_t *done);
/* In the controller, while new task t (pid) waits after cd_mem_premap
 * with no page file: decodes its streamed page data once, in one thread
 * per stream, and writes what its premapped slots hold straight into them
 * (process_vm_writev), adding it to csum. */
int cd_mem_premap_fill(const struct cd_premap *plan, const struct cd_image *img, int dirfd,
                       const struct cd_task *t, pid_t pid, uint32_t *next,
                       struct cd_csum_part *csum, cd_err *err);

/* A shared anonymous memory object: a memfd of the controller that each task
 * maps again through /proc/<controller>/fd/<fd>. */
struct cd_shm {
	int64_t id;
	uint64_t size;
	int fd;
	/* a memfd's "/memfd:NAME (deleted)", the image's; NULL otherwise; with
	 * id 0 a deleted file mapped shared: its "PATH (deleted)" */
	const char *path;
};
char *cd_shm_name(const char *path);
int cd_mem_shm_prepare(const struct cd_image *img, const struct cd_file_objs *objs, int dirfd,
                       struct cd_shm **ret, size_t *ret_n, cd_err *err);
void cd_mem_shm_free(struct cd_shm *shm, size_t n);

/* Phases of the restore of one task (transplant() in restore.c), in order:
 * TASK: the main thread's and process-wide state, by injected calls in the
 *   main thread, with the controller's privileges (memory first, it
 *   replaces the address space);
 * THREAD: each other thread is created (clone3 with its tid, threads.c)
 *   and every module's restore_thread of phase TASK runs in it;
 * DROP: what takes privileges away (credentials), in every thread, each by
 *   itself (restore_thread), then in the main thread (restore);
 * LATE: what needs the whole tree and is done as the task itself.
 * The dump has two: per task (dump, with a scratch page; memory after the
 * table, dump.c) and per thread (dump_thread, for every other thread, while
 * the scratch page is still there). */
enum cd_phase {
	CD_PHASE_TASK,
	CD_PHASE_DROP,
	CD_PHASE_LATE,
};

/* A resource type. To add one: a file with its dump half (fills the task's
 * fields, refusing what it cannot handle with an error naming the task and
 * the object) and its restore half (injected syscalls through ctx), its
 * fields in image.h and image-task.c, and an entry in modules.c (a restore
 * step with its phase); per-thread halves where a thread has its own. */
struct cd_module {
	const char *name;
	/* Collects this resource of a seized task into t. */
	int (*dump)(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err);
	/* Puts it back by injected syscalls, in table order. */
	int (*restore)(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err);
	/* Per-thread halves (NULL: nothing per thread): ctx->inj is the handle
	 * of thread th of t (injected calls run in that thread), the rest is
	 * the task's context. */
	int (*dump_thread)(struct cd_dump_ctx *ctx, const struct cd_task *t, struct cd_thread *th,
	                   cd_err *err);
	int (*restore_thread)(struct cd_restore_ctx *ctx, const struct cd_task *t,
	                      const struct cd_thread *th, cd_err *err);
};

/* modules.c: the modules in dump order, and in restore order with the
 * phase each restores in. */
struct cd_restore_step {
	const struct cd_module *mod;
	enum cd_phase phase;
};
extern const struct cd_module *const cd_dump_modules[];
extern const struct cd_restore_step cd_restore_steps[];
extern const size_t cd_dump_modules_n, cd_restore_steps_n;

extern const struct cd_module cd_mod_cpu, cd_mod_mem, cd_mod_mm, cd_mod_files, cd_mod_signals,
    cd_mod_timers, cd_mod_attrs, cd_mod_creds, cd_mod_root, cd_mod_posix_timers, cd_mod_locks,
    cd_mod_mempolicy, cd_mod_jobctl, cd_mod_seccomp;

/* seccomp.c: suspends seccomp in a seized task of the dump and its threads
 * (a filter could refuse our calls), when it has any; refuses, naming it, an
 * image with seccomp when this engine cannot suspend it for the restore. */
int cd_seccomp_suspend(pid_t pid, cd_inject *inj, cd_inject **thr, size_t nthr, cd_err *err);
int cd_seccomp_check(const struct cd_image *img, cd_err *err);

/* jobctl.c: stopped tasks. The dump refuses, naming it, a stop the restore
 * could not make again (check, once the sessions are planned); the restore
 * lets the stopped tasks go into their group stops first, each parent
 * still ours (release). */
int cd_jobctl_check(const struct cd_image *img, cd_err *err);
int cd_jobctl_release(const struct cd_image *img, cd_inject **inj, cd_inject ***thr, cd_err *err);

/* mempolicy.c: refuses, naming it, a NUMA policy of the image on a node this
 * machine lacks (or any policy without NUMA support): before anything runs. */
int cd_mempolicy_check(const struct cd_image *img, cd_err *err);

/* A SIGCHLD handler of the caller that reaps with waitpid(-1) would take
 * our ptrace stops: the entry points run with SIGCHLD at its default. */
struct sigaction;
void cd_sigchld_default(struct sigaction *saved);
void cd_sigchld_restore(const struct sigaction *saved);

/* Refuses, naming it, a kernel feature that what (CD_PROBE_DUMP or
 * _RESTORE) needs and cd_engine_probe found missing. */
int cd_probe_require(unsigned what, cd_err *err);
/* Whether the probe called name ("timer ids") found its feature. */
bool cd_probe_ok(const char *name);

/* Fault injection for tests: true when $CEDANA_ENGINE_FAULT names point
 * (e.g. "dump-memory", "restore-transplant"). */
bool cd_fault(const char *point);
/* Test hook: at a point named by CEDANA_ENGINE_FAULT, holds the engine for
 * up to 30 s (cancellable), so that a test can kill the daemon, the worker
 * or the client right there. */
int cd_fault_stall(const char *point, cd_err *err);

/* Incremental dumps (dirty.c): which pages of a task's private anonymous
 * mappings were written since the previous dump of the tree. */
struct cd_dirty_state {
	struct cd_track *prev; /* the caller's trackers (opts->track) */
	struct cd_track next;  /* this dump's, filled task by task */
	char *parent;          /* the parent image when prev matches it, else NULL */
	uint64_t parent_hash;
	bool used; /* some page was recorded as the parent's */
};
struct cd_dirty;
int cd_dirty_init(struct cd_dirty_state *ds, const char *parent, struct cd_track *prev,
                  cd_err *err);
void cd_dirty_state_free(struct cd_dirty_state *ds);
/* Before t's pages are read: its written pages since the previous dump
 * (write-protecting them again); *ret NULL when t is not tracked. */
int cd_dirty_scan(struct cd_dirty_state *ds, const struct cd_task *t, struct cd_dirty **ret,
                  cd_err *err);
/* Where cd_dirty_unchanged left off: asked page by page in increasing
 * order, it walks the written ranges along instead of searching them for
 * each page (a 4 GiB mapping is a million pages, 5% written is 50000
 * ranges). Zero before the first question. */
struct cd_dirty_cursor {
	const struct cd_vma *v;
	uint64_t last;
	size_t at;
	bool tracked;
};
/* Whether page addr of v (wanted by the dump) is unchanged since the
 * parent image: recorded as CD_RUN_PREV. */
bool cd_dirty_unchanged(const struct cd_dirty *d, const struct cd_vma *v, uint64_t addr,
                        struct cd_dirty_cursor *c);
void cd_dirty_free(struct cd_dirty *d);
/* Whether v is tracked: its pages not written since are the parent's. */
bool cd_dirty_tracked(const struct cd_dirty *d, const struct cd_vma *v);
/* What /proc/PID/pagemap (pm_fd) reads for pages [addr, addr + cnt * 4096)
 * of a tracked mapping, as far as an incremental dump looks at it:
 * present (exclusive when told so), swapped, guard, else 0; the page
 * frames are not given. From PAGEMAP_SCAN, which looks at no page of the
 * mapping (pagemap reads each one's map count, a tenth of a second a GiB
 * under load). 1 when this kernel's PAGEMAP_SCAN cannot tell guard pages. */
int cd_dirty_pagemap(int pm_fd, uint64_t addr, uint64_t cnt, bool exclusive, uint64_t *pm,
                     cd_err *err);
/* Whether mapping [start, end) of pid is registered by this dump's own
 * trackers (VmFlags "uw" that is not the program's). */
bool cd_dirty_ours(pid_t pid, uint64_t start, uint64_t end);
/* After t's pages are read: tracks t from here on (ds->next). Failing to
 * leaves t untracked (its next dump is full), never fails the dump. */
void cd_dirty_track(struct cd_dirty_state *ds, cd_inject *inj, const struct cd_task *t,
                    const struct cd_dirty *d);

/* The parent images of an incremental image (parent.c), opened and
 * checked before any task exists. */
#define CD_MAX_CHAIN 64
struct cd_chain;
struct cd_fs_identity;
int cd_chain_open(const struct cd_image *img, const struct cd_fs_identity *open_as,
                  struct cd_chain **ret, cd_err *err);
void cd_chain_free(struct cd_chain *c);
typedef int (*cd_chain_write_fn)(void *arg, uint64_t addr, const void *src, uint64_t len,
                                 cd_err *err);
/* Pages [addr, addr+len) of task pid as its parent image holds them, given
 * to write (pages not stored there are zero: not written). */
int cd_chain_fill(struct cd_chain *c, pid_t pid, uint64_t addr, uint64_t len,
                  cd_chain_write_fn write, void *arg, cd_err *err);

/* Runs syscall nr in the task; *ret is its raw result. */
int cd_call(cd_inject *inj, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
            uint64_t a4, uint64_t a5, long *ret, cd_err *err);
/* Same, and turns a negative result into an error naming what. */
int cd_call_ok(cd_inject *inj, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
               uint64_t a3, uint64_t a4, uint64_t a5, long *ret, cd_err *err);

/* A batch of injected calls, run in one round trip by the runner the
 * caller placed in the task (cd_inject_batch); what it saves is the number
 * of threads times calls (docs/engine.md, "Cost of threads"). The calls
 * run in order; a failure of one with a name (what) ends the batch and is
 * reported as cd_call_ok would, after call_ctx ("pid P: thread T") when
 * set; a call without a name is not checked. Memory arguments live in the
 * batch's buffer: cd_batch_buf copies data there (NULL: zeroes, for
 * results) and gives its address in the task. cd_batch_then attaches a
 * function to the call added last, run once the batch ran, in call order,
 * with the call's result and a copy of its buffer at out: it fills the
 * caller's fields and may refuse what it sees. The prefix set when a call
 * is added (a module's name) goes before its errors. A task whose SIGTRAP
 * the runner's trap would disturb (cd_inject_batch_ok), or a batch without
 * a runner (code 0), gets the same calls one by one. */
#define CD_BATCH_MAX  24
#define CD_BATCH_BUF  2048
#define CD_BATCH_AREA (CD_BATCH_MAX * sizeof(struct cd_inject_entry) + CD_BATCH_BUF)
typedef int (*cd_batch_fn)(void *arg, const void *arg2, long ret, const void *out, cd_err *err);
struct cd_batch_call {
	const char *what, *prefix;
	long *ret;
	cd_batch_fn then;
	void *arg;
	const void *arg2;
	uint64_t out;
	size_t out_len;
};
struct cd_batch {
	cd_inject *inj;
	uint64_t code, area; /* the runner; CD_BATCH_AREA bytes of the task's for us */
	size_t n, used;
	bool overflow;
	const char *prefix;
	char call_ctx[64];
	struct cd_batch_call c[CD_BATCH_MAX];
	struct cd_inject_entry e[CD_BATCH_MAX];
	uint8_t buf[CD_BATCH_BUF];
};
void cd_batch_init(struct cd_batch *b, cd_inject *inj, uint64_t code, uint64_t area);
/* Runs what is queued now when fewer than calls and bytes are left. */
int cd_batch_reserve(struct cd_batch *b, size_t calls, size_t bytes, cd_err *err);
uint64_t cd_batch_buf(struct cd_batch *b, const void *data, size_t len);
void cd_batch_add(struct cd_batch *b, const char *what, long nr, uint64_t a0, uint64_t a1,
                  uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, long *ret);
void cd_batch_then(struct cd_batch *b, cd_batch_fn fn, void *arg, const void *arg2, uint64_t out,
                   size_t out_len);
/* Runs the batch and empties it (cd_batch_read: before the next call). */
int cd_call_batch(struct cd_batch *b, cd_err *err);
void cd_batch_read(const struct cd_batch *b, uint64_t addr, void *out, size_t len);

/* Layout (layout.c): vDSO family and the inherited address space. */
bool cd_vdso_kind(const char *path, enum cd_vma_kind *kind);
int cd_layout_move_vdso(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err);
int cd_layout_unmap_rest(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err);

/* Memory: the dump writes page files, the restore maps and fills. */
int cd_mem_vdso_check(const struct cd_image *img, cd_err *err);
int cd_mem_self_vdso(uint64_t size[CD_VMA_KIND_MAX], cd_err *err);

/* Files (files.c): what every fd has. The dump lists a task's fds, reads
 * their flags, position and SIGIO owner, and finds which open file each one
 * is (kcmp, one object id per open file in the tree); the restore opens
 * every object once in the controller (cd_files_prepare), each new task
 * installs its fds at their numbers (cd_files_install), and what needs the
 * whole tree is put back as the task after its credentials (cd_mod_files).
 * What depends on the kind of object is in the kinds' ops below. */
struct cd_file_objs;
/* Which fd replaces each std slot (-1: the image's object), as
 * cd_restore_opts asks; for a slot recorded as external, ext. */
struct cd_stdio_plan {
	int obj[3]; /* for slots recorded as objects */
	int ext[3]; /* for slots recorded as external stdio: always an fd */
};
void cd_stdio_plan_make(const struct cd_image *img, const struct cd_restore_opts *opts,
                        struct cd_stdio_plan *ret);
int cd_files_prepare(const struct cd_image *img, int dirfd, const struct cd_stdio_plan *plan,
                     struct cd_file_objs **ret, cd_err *err);
/* Whether d is replaced by a fd of the caller (nothing of its own to restore). */
bool cd_files_replaced(const struct cd_file_objs *objs, const struct cd_fd *d);
/* The controller's fd of object obj (what the tasks inherited), -1 when
 * none: a kind whose task makes the object may put it there (dup3 onto
 * it) for the other tasks that hold it (fd-unix.c: a shared pair). */
int cd_files_obj_fd(const struct cd_file_objs *objs, int obj);
int cd_files_install(const struct cd_image *img, const struct cd_task *t,
                     const struct cd_file_objs *objs, int *keep_fd, cd_err *err);
void cd_files_free(struct cd_file_objs *objs);

/* A kind of fd (enum cd_fd_kind): one struct cd_fd_ops each, in one file
 * per family (fd-reg.c: files, directories, O_PATH; fd-chr.c: devices and
 * terminals; fd-pipe.c: pipes and FIFOs with their data; fd-proc.c: /proc
 * files of the tree; fd-stdio.c: the root's external stdio slots), each
 * with its dump half and its restore half. To add a kind: its value in
 * enum cd_fd_kind (image.h, docs/image-format.md), a file fd-NAME.c with
 * its ops, and one line in fd-kinds.c. Its own fields live in struct cd_fd
 * (the manifest's fd object), validated by check. See docs/engine.md,
 * "Adding a kind of fd". */
struct stat;

/* What the dump knows of an fd when its kind is chosen. */
struct cd_fd_dump {
	struct cd_dump_ctx *ctx;
	const struct cd_task *t;
	const char *link;      /* readlink of /proc/PID/fd/N */
	const struct stat *st; /* stat of it */
	bool new_obj;          /* the first fd of its open file in the tree */
};

/* The controller's restore: state of a family of kinds (the pipes, made
 * once each), in state[] at the family's first kind. */
struct cd_fd_open {
	const struct cd_image *img;
	int dirfd; /* the image directory */
	void *state[CD_FD_KIND_MAX];
};

/* The decoder's view of the image, for a kind's checks. */
struct cd_unix_ref {
	int64_t ino, peer;
	int obj, type;
	pid_t pid; /* the task of the fd */
	bool named, listen;
};
struct cd_fd_check {
	const struct cd_image *img;
	const int64_t *pipe_ids; /* sorted */
	size_t npipes;
	const struct cd_unix_ref *unix_refs; /* every unix socket fd, by inode */
	size_t nunix;
};

struct cd_fd_ops {
	enum cd_fd_kind kind;
	const char *name;
	bool has_path;  /* reopened by its path: the image holds "path" */
	bool has_owner; /* status flags and SIGIO owner are the object's own */
	bool external;  /* the restore caller's object: ids 0..2, one per slot */
	bool by_task;   /* opened by its task once the tree exists (restore),
	                 * not by the controller */
	/* Dump: whether this kind takes the fd; kinds are asked in the order
	 * of cd_fd_kinds. NULL: chosen otherwise (external stdio). */
	bool (*claims)(const struct cd_fd_dump *x, const struct cd_fd *d);
	/* Dump: the kind's own fields of d, or a refusal naming the task and
	 * the fd. NULL: nothing of its own. */
	int (*dump)(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err);
	/* Restore, in the controller: opens d's object and returns its fd,
	 * which the tasks inherit. NULL: by_task, or the caller's. */
	int (*open)(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err);
	/* Restore, in the controller: frees the family's state; NULL: none. */
	void (*open_done)(struct cd_fd_open *o);
	/* Restore, as the task after its credentials: a by_task kind opens
	 * d at its number with its flags and position. */
	int (*restore)(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err);
	/* Restore, as the task, once every fd of the task exists (after all the
	 * restore halves): what refers to other fds, as an epoll's watches. */
	int (*restore_late)(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err);
	/* Decoder: d's fields of this kind against the image. NULL: none. */
	int (*check)(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
	             cd_err *err);
};

/* fd-kinds.c: the one place that registers a kind, in the order the dump
 * asks them whether they take an fd. */
extern const struct cd_fd_ops *const cd_fd_kinds[];
extern const size_t cd_fd_kinds_n;
extern const struct cd_fd_ops cd_fd_ops_reg, cd_fd_ops_dir, cd_fd_ops_path, cd_fd_ops_chr,
    cd_fd_ops_pipe, cd_fd_ops_fifo, cd_fd_ops_proc, cd_fd_ops_stdio, cd_fd_ops_memfd,
    cd_fd_ops_deleted, cd_fd_ops_eventfd, cd_fd_ops_signalfd, cd_fd_ops_timerfd, cd_fd_ops_epoll,
    cd_fd_ops_inotify, cd_fd_ops_unix, cd_fd_ops_pidfd, cd_fd_ops_inet, cd_fd_ops_netlink;
/* The ops of kind; NULL when no file registers it. */
const struct cd_fd_ops *cd_fd_ops_of(enum cd_fd_kind kind);

/* files.c, for the kinds: whether p1's fd1 and p2's fd2 are one open file
 * (kcmp); the status flags F_SETFL sets put on the controller's fd, or,
 * injected, on the task's fd d->fd (O_ASYNC included). */
int cd_fd_same_file(pid_t p1, int fd1, pid_t p2, int fd2, bool *ret, cd_err *err);
int cd_fd_set_flags(int fd, const struct cd_fd *d, cd_err *err);
/* fd-unix.c: the image's unix sockets sorted by inode, for the decoder's
 * checks of their peers (*ret NULL when none); the dump's check that every
 * connected socket's peer is in the image, before anything is released. */
int cd_unix_refs(const struct cd_image *img, struct cd_unix_ref **ret, size_t *ret_n, cd_err *err);
int cd_unix_check_peers(const struct cd_image *img, cd_err *err);
/* fd-unix.c, dump, once every task is dumped: the open files of the image
 * that the fds in flight (SCM_RIGHTS) in the queues are (their object ids,
 * in the queues' messages), or a refusal naming the file. */
int cd_unix_resolve_rights(struct cd_image *img, cd_err *err);
/* fd-inet.c, for the socket kinds (each reads a task's socket through
 * cd_fd_copy_from's copy, fd-pass.c): an int socket option or -errno; the
 * family of a socket fd of the task being dumped (-1: not a socket);
 * SO_RCVBUF or SO_SNDBUF set to what getsockopt read (0: left as is);
 * whether d is the first fd of its open file in the image (its task binds
 * it); bind or connect (nr) of d's fd in the task to the address sa. */
int cd_sk_opt(int fd, int level, int opt, int *ret);
int cd_sk_family(const struct cd_fd_dump *x, const struct cd_fd *d);
int cd_sk_set_buf(int fd, int opt, const char *name, uint32_t want, cd_err *err);
bool cd_sk_first_of_obj(const struct cd_image *img, const struct cd_fd *d);
int cd_sk_addr_call(struct cd_restore_ctx *ctx, const struct cd_fd *d, long nr, const char *name,
                    const uint8_t *sa, size_t len, cd_err *err);
/* The poll events of a socket (POLLIN: something queued, POLLERR: an error
 * pending), read without taking either; a refusal when a buffer size v of
 * SO_RCVBUF or SO_SNDBUF (opt) is above what the sysctl lets SO_RCVBUF set. */
int cd_sk_events(int fd, cd_err *err);
/* A refusal when the socket fd belongs to another network namespace than
 * the engine's (the restore makes sockets in its own). */
int cd_sk_netns_ours(int fd, cd_err *err);
int cd_sk_buf_fits(uint32_t v, int opt, cd_err *err);
/* fd-tcp.c: established TCP connections through TCP repair. Dump
 * (cd_tcp_dump_begin first: with established, connections are locked,
 * tcp-lock.c): puts our copy sk of d's socket in repair mode (kept so until
 * cd_tcp_dump_end) and reads its state into d->sk_tcp and its queues into
 * the image file tcp-INO.img; cd_tcp_check_peers then refuses a connection
 * whose peer is not a socket of the image unless flags has
 * CD_TCP_ESTABLISHED (kept, locked) or CD_TCP_CLOSE (recorded as a closed
 * socket); at the end of the dump, repair is turned off again unless the
 * tree is killed (its sockets then close without a packet), and every lock
 * but those of connections to the outside of a killed tree goes. Restore:
 * the controller's socket goes into repair mode when made; the image's
 * connections to the outside need a flag (cd_tcp_restore_check); once the
 * tree is restored every connection is made again (CD_TCP_CLOSE: those to
 * the outside stay closed), repair is turned off on all, then their locks
 * go. cd_tcp_show: an address as ss shows it. */
enum { CD_TCP_ESTABLISHED = 1u << 0, CD_TCP_CLOSE = 1u << 1 };
void cd_tcp_dump_begin(bool established);
int cd_tcp_dump(int dirfd, int sk, struct cd_fd *d, cd_err *err);
int cd_tcp_check_peers(struct cd_image *img, int dirfd, unsigned flags, cd_err *err);
void cd_tcp_dump_end(bool killed);
int cd_tcp_repair_on(int fd, cd_err *err);
int cd_tcp_restore_check(const struct cd_image *img, unsigned flags, cd_err *err);
int cd_tcp_restore_all(const struct cd_image *img, const struct cd_file_objs *objs, int dirfd,
                       unsigned flags, cd_err *err);
void cd_tcp_show(const uint8_t *sa, size_t len, char *buf, size_t size);
/* tcp-lock.c: whether nft (nftables) is there; the lock of the connection
 * from a to pa
 * (an nftables table named after it that drops its packets both ways),
 * refused when another dump holds it; its release (none: nothing). */
bool cd_tcp_lock_available(void);
int cd_tcp_lock(const uint8_t *a, size_t alen, const uint8_t *pa, size_t plen, cd_err *err);
void cd_tcp_unlock(const uint8_t *a, size_t alen, const uint8_t *pa, size_t plen);
/* memfd.c: the image's memfd of open file obj, NULL when none. */
const struct cd_memfd *cd_memfd_of(const struct cd_image *img, int obj);
/* fd-pass.c: a copy of pid's fd (pidfd_getfd; -errno on failure); the
 * controller's fd handed to the task of ctx (SCM_RIGHTS over a pair the
 * task makes), *ret its new fd there (close-on-exec). */
int cd_fd_copy_from(pid_t pid, int fd);
int cd_fd_send_to_task(struct cd_restore_ctx *ctx, int fd, int *ret, cd_err *err);
/* memfd.c: a new read-write fd of the memfd of the mappings of shmid (an
 * image's memfd entry names them): the one the controller made for its
 * fds, or, for a memfd no fd holds, made now from the image (dirfd); or
 * -ENOENT when no memfd of the image is mapped so. */
int cd_memfd_shm_fd(const struct cd_image *img, const struct cd_file_objs *objs, int dirfd,
                    int64_t shmid, cd_err *err);
/* memfd.c: whether the memfd of the mappings of shmid is one no fd holds
 * (its entry's obj -1): made by cd_mem_shm_prepare as a shared memory
 * object, private mappings of it too. */
bool cd_memfd_unheld(const struct cd_image *img, int64_t shmid);
/* memfd.c: the seals of every memfd the tree maps, added once every
 * mapping is made and filled (a shared writable mapping cannot be made
 * after F_SEAL_FUTURE_WRITE); shm: the shared memory objects, which hold
 * the memfds no fd holds. */
int cd_memfd_seal_mapped(const struct cd_image *img, const struct cd_file_objs *objs,
                         const struct cd_shm *shm, size_t nshm, cd_err *err);
/* memfd.c, for mem.c: the entry of the memfd of mapping m, which no fd of
 * the tree holds (made when none, its contents saved by
 * cd_memfd_save_mapped once the task's memory is dumped). */
int cd_memfd_mapped(struct cd_image *img, pid_t pid, const struct cd_proc_map *m, cd_err *err);
int cd_memfd_save_mapped(struct cd_dump_ctx *ctx, const struct cd_task *t, cd_err *err);
/* memfd.c: the controller's fd of the memfd of shmid (read-write, its own
 * open file), or -ENOENT. */
int cd_memfd_ctl_fd(const struct cd_image *img, const struct cd_file_objs *objs, int64_t shmid);
/* fd-deleted.c, for mem.c (cd_deleted_path: image.h): the entry of the file of a shared
 * mapping m (made when none, its contents saved by
 * cd_deleted_save_mapped once the task's memory is dumped); at restore, a
 * new read-write fd of that file (an fd's, else made again at its path
 * and unlinked), by the mapping's path. */
int cd_deleted_mapped(struct cd_image *img, pid_t pid, const struct cd_proc_map *m, cd_err *err);
int cd_deleted_save_mapped(struct cd_dump_ctx *ctx, const struct cd_task *t, cd_err *err);
int cd_deleted_map_fd(const struct cd_image *img, const struct cd_file_objs *objs, int dirfd,
                      const char *vpath, cd_err *err);
/* fd-deleted.c: the image's deleted file of open file obj, NULL when none. */
const struct cd_deleted *cd_deleted_of(const struct cd_image *img, int obj);
/* fd-contents.c, for the kinds whose contents travel in the image: 1 and
 * *ret the task when a task of the tree maps inode ino under name (a
 * prefix of the maps name when prefix), else 0. */
int cd_contents_mapper(const struct cd_image *img, uint64_t ino, const char *name, bool prefix,
                       pid_t *ret, cd_err *err);
/* The name of the contents file of entry i of a kind ("memfd", "deleted"). */
void cd_contents_file(const char *kind, size_t i, char *buf, size_t len);
/* fd's first len bytes into the image file name (its checksum in
 * *ret_csum); back from it into fd (checked by cd_image_check_pages). */
int cd_contents_save(int dirfd, const char *name, int fd, uint64_t len, uint64_t *ret_csum,
                     cd_err *err);
int cd_contents_load(int dirfd, const char *name, int fd, uint64_t len, cd_err *err);
/* The file behind pid's mapping start-end, read-only, through
 * /proc/PID/map_files: the file itself (a memfd, a deleted file), not a
 * private mapping's copied pages. */
int cd_contents_open_mapped(pid_t pid, uint64_t start, uint64_t end, cd_err *err);
/* The first len bytes of the file behind pid's mapping v into the contents
 * file of entry i of kind (its checksum in *ret_csum). */
int cd_contents_save_mapped(int dirfd, pid_t pid, const struct cd_vma *v, const char *kind,
                            size_t i, uint64_t len, uint64_t *ret_csum, cd_err *err);
/* The controller's made objects of a kind, one fd per entry (-1: not made
 * yet), kept in o->state[kind] until cd_contents_made_free (open_done). */
int *cd_contents_made(struct cd_fd_open *o, enum cd_fd_kind kind, size_t n, cd_err *err);
void cd_contents_made_free(struct cd_fd_open *o, enum cd_fd_kind kind);
/* An open file of the made object objfd for d: the object's own open file
 * (own: d is of the entry that made it) when d is read-write, else a new
 * open of the inode with d's access mode. */
int cd_contents_open_file(int objfd, bool own, const struct cd_fd *d, cd_err *err);
int cd_fd_set_flags_in(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err);
/* fd-reg.c: opens d's path again with its flags, at its position (REG). */
int cd_fd_reopen(const struct cd_fd *d, cd_err *err);
/* fd-chr.c: whether d is a terminal (the shell's under --shell-job). */
bool cd_fd_is_terminal(const struct cd_fd *d);
/* fd-stdio.c, dump: the root's std slot pid's fd shares (-1: none), and
 * whether slot s is external stdio (the dump caller's, mask). */
int cd_fd_std_slot(const struct cd_image *img, const struct cd_task *t, int fd, int *ret,
                   cd_err *err);
int cd_fd_external_slot(const struct cd_image *img, unsigned mask, int s, bool *ret, cd_err *err);
/* fd-stdio.c, restore: the caller's fd that replaces d, -1 when none. */
int cd_stdio_replacement(const struct cd_stdio_plan *plan, const struct cd_fd *d);

/* Sessions and groups (session.c): the dump plans the layout the restore
 * creates (new_sid, new_pgid), refusing what it cannot recreate; the
 * decoder checks a plan read; each new task enters its place. */
int cd_session_plan(struct cd_image *img, cd_err *err);
int cd_session_check(struct cd_image *img, cd_err *err);
int cd_session_enter(const struct cd_task *t, cd_err *err);

/* kcmp(2) as an order (kcmp.c): *ret_order is -1, 0 (the same object) or 1
 * for object i1 of p1 against i2 of p2 (type KCMP_*; the indexes are fds
 * for KCMP_FILE). A failure is an error, never "different". */
int cd_kcmp(pid_t p1, unsigned long i1, pid_t p2, unsigned long i2, int type, int *ret_order,
            cd_err *err);
/* Sorts pids by their object of type (KCMP_FILES, _FS, _VM): tasks sharing
 * one end up next to each other. */
int cd_kcmp_sort_tasks(pid_t *pids, size_t n, int type, cd_err *err);

/* The open files of the tree dumped so far, ordered by kcmp, with their
 * object ids (files.c): one per dump, in cd_dump_ctx. */
struct cd_dump_tree *cd_dump_tree_new(void);
void cd_dump_tree_free(struct cd_dump_tree *tree);
/* The processes outside the tree holding the pipes and sockets of the tree
 * (holders.c), from one scan of /proc made at the first question: *ret the
 * lowest such pid holding st's inode, 0 when none. */
struct cd_holders;
int cd_outside_holder(struct cd_holders **hp, const struct cd_image *img, const struct stat *st,
                      pid_t *ret, cd_err *err);
void cd_holders_free(struct cd_holders *h);
/* files.c: the dump's holder index (NULL until asked for). */
struct cd_holders **cd_dump_tree_holders(struct cd_dump_tree *tree);

/* Dump-time checks of what the restore would refuse (dumpcheck.c), made
 * while the tree is stopped, before anything is released: the paths of a
 * live task's executable, mapped files, cwd and root (read from /proc,
 * before the task is touched), and of every fd reopened by path (once the
 * tasks are dumped). */
int cd_dump_check_task(pid_t pid, const char *comm, cd_err *err);
int cd_dump_check_fds(const struct cd_image *img, cd_err *err);
/* SysV IPC objects of the host IPC namespace the tree used (sysv-ipc.c).
 * The dump takes them into the image while the tree is stopped (a
 * segment's contents into its page file), refusing by name what it cannot
 * bring back; once the tree is killed it removes them, as the tree's (a
 * --leave-running dump leaves them to the running tree). The restore makes
 * them again with their keys and ids before the tree exists (refusing a
 * key or id taken), marks removed the segments that were once every task
 * has attached them, and removes what it made if the restore fails. */
int cd_sysv_dump(struct cd_image *img, int dirfd, cd_err *err);
void cd_sysv_dump_release(const struct cd_image *img);
int cd_sysv_restore(const struct cd_image *img, int dirfd, cd_err *err);
int cd_sysv_restore_late(const struct cd_image *img, cd_err *err);
void cd_sysv_restore_undo(const struct cd_image *img);
/* Refuses a task's SysV attachments that are not whole attachments of a
 * segment of the image (shmat makes one whole): the dump's and the
 * decoder's check (sysv-shm.c). */
int cd_sysv_check_attachments(const struct cd_image *img, const struct cd_task *t, cd_err *err);

/* A kind of SysV object, for the common parts (sysv-ipc.c) of the kinds'
 * files (sysv-shm.c, sysv-msg.c, sysv-sem.c). */
struct cd_sysv_kind {
	const char *what;    /* "shared memory segment" */
	const char *table;   /* /proc/sysvipc/NAME */
	const char *next_id; /* /proc/sys/kernel/NAME_next_id */
	/* KINDget(key, 0, 0): the id of key's object, or -1 with errno */
	int (*lookup)(int32_t key);
	/* KINDctl(id, IPC_STAT): 0 or -1 with errno */
	int (*stat)(int id);
	/* KINDctl(id, IPC_RMID): 0 or -1 with errno */
	int (*rmid)(int id);
	/* makes a small private object: its id, or -1 */
	int (*make_any)(void);
};
extern const struct cd_sysv_kind cd_sysv_shm_kind, cd_sysv_msg_kind, cd_sysv_sem_kind;
bool cd_sysv_in_tree(const struct cd_image *img, long pid);
/* Whether a thread of the tree (stopped) waits in syscall nr1 or nr2 on
 * object id (their first argument), as /proc/TID/syscall shows it: an
 * object the tree waits on is one it uses, though it left no pid in it. */
int cd_sysv_waited_on(const struct cd_image *img, long nr1, long nr2, int id, bool *ret,
                      cd_err *err);
/* The ids of the kind's table. */
int cd_sysv_list_ids(const struct cd_sysv_kind *k, int **ret, size_t *ret_n, cd_err *err);
/* Refuses, naming it, a key (but IPC_PRIVATE) or id some object of the
 * host has. */
int cd_sysv_check_free(const struct cd_sysv_kind *k, int32_t key, int id, cd_err *err);
/* Makes the object with id id: make(arg) (KINDget with IPC_CREAT |
 * IPC_EXCL) with the kind's next_id set to id, under a lock of it. */
int cd_sysv_create(const struct cd_sysv_kind *k, int id, int (*make)(const void *arg),
                   const void *arg, cd_err *err);
/* The kinds' halves: taken into img (dump), made again (restore). */
int cd_sysv_shm_dump(struct cd_image *img, int dirfd, cd_err *err);
int cd_sysv_shm_restore(const struct cd_image *img, int dirfd, cd_err *err);
int cd_sysv_msg_dump(struct cd_image *img, cd_err *err);
int cd_sysv_msg_restore(const struct cd_image *img, cd_err *err);
int cd_sysv_sem_dump(struct cd_image *img, cd_err *err);
int cd_sysv_sem_restore(const struct cd_image *img, cd_err *err);

/* Refuses tasks that share an fd table, fs (cwd, root) or memory. */
int cd_dump_check_sharing(const struct cd_image *img, cd_err *err);

/* Final CPU state of a restored task or thread, set at its last stop. */
int cd_cpu_restore_final(cd_inject *inj, const struct cd_task *t, cd_err *err);
int cd_cpu_restore_thread_final(cd_inject *inj, const struct cd_thread *th, cd_err *err);

/* Threads (threads.c). The dump seizes every thread of a seized task,
 * scanning /proc/PID/task until no new one appears (the seized ones cannot
 * make more); *ret holds a handle per other thread, *ret_n of them. */
int cd_threads_seize(pid_t pid, const char *comm, cd_inject ***ret, size_t *ret_n, cd_err *err);
void cd_threads_free(cd_inject **thr, size_t n);
/* Refuses what a thread holds that the restore could not give it back the
 * same: credentials, seccomp or no_new_privs other than the main thread's. */
int cd_threads_check(const struct cd_task *t, cd_err *err);
/* Makes thread th of t in the task (ctx->inj its main thread): an injected
 * clone3 with its tid; *ret its handle, stopped before any instruction. */
int cd_thread_create(struct cd_restore_ctx *ctx, const struct cd_task *t,
                     const struct cd_thread *th, cd_inject **ret, cd_err *err);

/* Lists the mappings of pid into t (no page data), refusing unsupported kinds. */
struct cd_dump_plugins;
/* plugins (NULL: none) may claim a mapping the engine refuses: it is left
 * out of t. */
int cd_mem_collect(pid_t pid, struct cd_task *t, struct cd_image *img,
                   struct cd_dump_plugins *plugins, cd_err *err);
/* Forgets what cd_mem_collect listed. */
void cd_mem_forget(struct cd_task *t);
/* Bytes of page data the dump of t will read (t's mappings listed, its
 * parent dumped or counted before it). */
int cd_mem_count(struct cd_dump_ctx *ctx, struct cd_task *t, uint64_t *ret, cd_err *err);
/* Bytes of page data the restore of t puts back. */
uint64_t cd_mem_restore_bytes(const struct cd_task *t);

/* Undoes what a new task inherited from the controller and must not keep
 * while its memory is replaced (rseq registration). */
int cd_attrs_reset(cd_inject *inj, cd_err *err);

/* Plugin hook points (plugin-hooks.c, docs/plugins.md). The dump's
 * record of which task each plugin paused, to resume. */
struct cd_dump_plugins {
	struct cd_plugins *ps; /* NULL: none */
	const char *dir;
	bool leave_running;
	struct {
		pid_t pid;
		uint64_t mask; /* of plugin slots whose pause_devices returned OK */
	} * paused;            /* CD_MAX_TASKS */
	size_t npaused;
};
/* Asks the plugins to take over an fd (fd >= 0) or a mapping the engine
 * refuses; true when one did (recorded in img: a restore needs it). */
bool cd_plugins_dump_claim(struct cd_dump_plugins *dp, struct cd_image *img,
                           const struct cd_plugin_object *obj);
/* Before pid is seized; records every plugin that answered OK in img. */
int cd_plugins_dump_pause(struct cd_dump_plugins *dp, struct cd_image *img, pid_t pid, cd_err *err);
/* Once the tree is frozen, before anything of it is read. */
int cd_plugins_dump_checkpoint(struct cd_dump_plugins *dp, struct cd_image *img, cd_err *err);
/* After the tree is let go (leave_running or failure), every paused task. */
int cd_plugins_dump_resume(struct cd_dump_plugins *dp, bool failed, cd_err *err);
/* Restore: every plugin the image names loaded and ready. */
int cd_plugins_restore_check(struct cd_plugins *ps, const struct cd_image *img, cd_err *err);
int cd_plugins_restore_prepare(struct cd_plugins *ps, const struct cd_image *img, const char *dir,
                               cd_err *err);
int cd_plugins_restore_devices(struct cd_plugins *ps, const struct cd_image *img, const char *dir,
                               cd_err *err);
/* The engine's side of host->thread_run / thread_stop while it holds a
 * restored tree: one thread at a time. */
struct cd_thread_hold {
	bool (*held)(void *held_ctx, pid_t tid);
	void *held_ctx;
	pid_t running;
	uint64_t saved_mask;
};
int cd_plugins_thread_run(struct cd_thread_hold *h, pid_t tid, char *msg, size_t len);
int cd_plugins_thread_stop(struct cd_thread_hold *h, pid_t tid, char *msg, size_t len);
