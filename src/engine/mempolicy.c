/* NUMA memory policies: each thread's own (set_mempolicy) and the policies
 * of private mappings (mbind). The dump asks the task itself with injected
 * get_mempolicy calls, which give the policy as it was set, one batch of
 * MPOL_F_ADDR calls for which mappings have one (numa_maps shows the nodes
 * a relative or static policy resolves to, and the task's policy on every
 * mapping without one of its own, and costs a walk of every page table).
 * The restore puts them back with mbind on each mapping once memory is in
 * place, and set_mempolicy in each thread. A policy on shared memory
 * belongs to its object (a shmem file's ranges), not to the mapping:
 * refused. Nodes this machine does not have are refused before anything
 * runs (cd_mempolicy_check). */
#include <errno.h>
#include <inttypes.h>
#include <linux/mempolicy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#ifndef MPOL_WEIGHTED_INTERLEAVE
#define MPOL_WEIGHTED_INTERLEAVE 6
#endif

/* get_mempolicy and set_mempolicy count one bit more than the mask holds
 * (the kernel drops the last): 1025 covers the 1024 of the image. */
#define MAXNODE (CD_MAX_NUMA_NODES + 1)
/* Where a get_mempolicy result goes in the scratch page. */
#define SCRATCH_NODES 64

static const char *mode_name(int mode)
{
	static const char *const names[] = {
	    [MPOL_DEFAULT] = "default",
	    [MPOL_PREFERRED] = "prefer",
	    [MPOL_BIND] = "bind",
	    [MPOL_INTERLEAVE] = "interleave",
	    [MPOL_LOCAL] = "local",
	    [MPOL_PREFERRED_MANY] = "prefer (many)",
	    [MPOL_WEIGHTED_INTERLEAVE] = "weighted interleave",
	};

	return mode >= 0 && (size_t)mode < ARRAY_SIZE(names) ? names[mode] : "unknown";
}

/* ---- dump ---- */

/* Runs get_mempolicy(flags, addr) in the thread of inj. A kernel without
 * NUMA (ENOSYS) has no policies: the default. */
/* A get_mempolicy result: ret, the mode word and the node mask. */
static int decode_policy(long ret, int mode, const uint64_t *nodes, struct cd_mempolicy *p,
                         cd_err *err)
{
	memset(p, 0, sizeof(*p));
	if (ret == -ENOSYS)
		return 0;
	if (ret < 0)
		return cd_err_sys(err, (int)-ret, "get_mempolicy");
	memcpy(p->nodes, nodes, sizeof(p->nodes));
	p->mode = mode & ~MPOL_MODE_FLAGS;
	p->flags = mode & MPOL_MODE_FLAGS;
	if (p->mode > MPOL_WEIGHTED_INTERLEAVE)
		return cd_err_set(err, EOPNOTSUPP, "NUMA memory policy mode %d is not known",
		                  p->mode);
	return 0;
}

static int get_policy(cd_inject *inj, uint64_t scratch, uint64_t addr, unsigned long flags,
                      struct cd_mempolicy *p, cd_err *err)
{
	uint64_t nodes[sizeof(p->nodes) / sizeof(uint64_t)] = {0};
	int mode = 0;
	long ret;
	int r = cd_call(inj, SYS_get_mempolicy, scratch, scratch + SCRATCH_NODES, MAXNODE, addr,
	                flags, 0, &ret, err);

	memset(p, 0, sizeof(*p));
	if (r < 0)
		return r;
	if (ret >= 0 &&
	    ((r = cd_inject_read_mem(inj, scratch, &mode, sizeof(mode), err)) < 0 ||
	     (r = cd_inject_read_mem(inj, scratch + SCRATCH_NODES, nodes, sizeof(nodes), err)) < 0))
		return r;
	return decode_policy(ret, mode, nodes, p, err);
}

static bool shared_kind(enum cd_vma_kind kind)
{
	return kind == CD_VMA_ANON_SHARED || kind == CD_VMA_FILE_SHARED;
}

/* v's own policy, when it has one (own_modes). */
static int dump_vma_policy(struct cd_dump_ctx *ctx, struct cd_task *t, const struct cd_vma *v,
                           cd_err *err)
{
	struct cd_mempolicy p;
	int r = get_policy(ctx->inj, ctx->scratch, v->start, MPOL_F_ADDR, &p, err);

	if (r < 0)
		return cd_err_wrap(err, "pid %d: mapping %" PRIx64 "-%" PRIx64, t->pid, v->start,
		                   v->end);
	if (p.mode == MPOL_DEFAULT)
		return 0;
	if (shared_kind(v->kind) || v->kind >= CD_VMA_VDSO)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: mapping %" PRIx64 "-%" PRIx64
		                  " (%s) has NUMA memory policy %s (mbind) on shared memory, "
		                  "which belongs to the memory object and is not restored",
		                  t->pid, v->start, v->end, v->path ? v->path : "anonymous",
		                  mode_name(p.mode));
	t->vpols[t->nvpols++] = (struct cd_vma_policy){.start = v->start, .end = v->end, .pol = p};
	return 0;
}

/* A mapping's own mode (get_mempolicy(MPOL_F_ADDR) without the nodes),
 * in a batch: whether it has a policy of its own. Without NUMA (ENOSYS)
 * none has. */
static int got_vma_mode(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	bool *own = arg;
	int mode;

	(void)arg2;
	*own = false;
	if (ret == -ENOSYS)
		return 0;
	if (ret < 0)
		return cd_err_sys(err, (int)-ret, "get_mempolicy");
	memcpy(&mode, out, sizeof(mode));
	*own = (mode & ~MPOL_MODE_FLAGS) != MPOL_DEFAULT;
	return 0;
}

/* Which mappings have a policy of their own: one get_mempolicy(MPOL_F_ADDR)
 * each, batched (CD_BATCH_MAX a round trip). numa_maps would say the same
 * for a read, but the kernel walks every page table for its page counts:
 * about half what smaps costs, per GiB, in every dump (docs/engine.md,
 * *Incremental checkpoints*, Cost). */
static int own_modes(struct cd_dump_ctx *ctx, struct cd_task *t, bool *own, cd_err *err)
{
	struct cd_batch b;
	int r = 0;

	cd_batch_init(&b, ctx->inj, ctx->batch_code, ctx->scratch);
	snprintf(b.call_ctx, sizeof(b.call_ctx), "pid %d", t->pid);
	for (size_t i = 0; r >= 0 && i < t->nvmas; i++) {
		if ((r = cd_batch_reserve(&b, 1, sizeof(int), err)) < 0)
			break;
		uint64_t at = cd_batch_buf(&b, NULL, sizeof(int));
		cd_batch_add(&b, NULL, SYS_get_mempolicy, at, 0, 0, t->vmas[i].start, MPOL_F_ADDR,
		             0, NULL);
		cd_batch_then(&b, got_vma_mode, &own[i], NULL, at, sizeof(int));
	}
	if (r >= 0)
		r = cd_call_batch(&b, err);
	return r;
}

/* The mappings with a policy of their own, each then asked for it whole. */
static int dump_vma_policies(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	_cleanup_free_ bool *own = calloc(t->nvmas + 1, sizeof(*own));
	int r;

	free(t->vpols);
	t->vpols = NULL;
	t->nvpols = 0;
	if (!own)
		return cd_err_set(err, ENOMEM, "out of memory");
	if ((r = own_modes(ctx, t, own, err)) < 0)
		return r;
	t->vpols = calloc(t->nvmas + 1, sizeof(*t->vpols));
	if (!t->vpols)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; r >= 0 && i < t->nvmas; i++)
		if (own[i])
			r = dump_vma_policy(ctx, t, &t->vmas[i], err);
	return r;
}

static int mempolicy_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	int r = get_policy(ctx->inj, ctx->scratch, 0, 0, &t->mempolicy, err);

	if (r < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	return dump_vma_policies(ctx, t, err);
}

static int got_thread_policy(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	struct cd_thread *th = arg;
	const uint8_t *o = out;
	uint64_t nodes[sizeof(th->mempolicy.nodes) / sizeof(uint64_t)];
	int mode;

	(void)arg2;
	memcpy(&mode, o, sizeof(mode));
	memcpy(nodes, o + SCRATCH_NODES, sizeof(nodes));
	if (decode_policy(ret, mode, nodes, &th->mempolicy, err) < 0)
		return cd_err_wrap(err, "tid %d", th->tid);
	return 0;
}

/* Queued in the thread's batch. */
static int mempolicy_dump_thread(struct cd_dump_ctx *ctx, const struct cd_task *t,
                                 struct cd_thread *th, cd_err *err)
{
	const size_t len = SCRATCH_NODES + sizeof(th->mempolicy.nodes);
	struct cd_batch *b = ctx->batch;
	int r = cd_batch_reserve(b, 1, len, err);

	(void)t;
	if (r < 0)
		return r;
	uint64_t at = cd_batch_buf(b, NULL, len);
	cd_batch_add(b, NULL, SYS_get_mempolicy, at, at + SCRATCH_NODES, MAXNODE, 0, 0, 0, NULL);
	cd_batch_then(b, got_thread_policy, th, NULL, at, len);
	return 0;
}

/* ---- restore ---- */

static bool is_default(const struct cd_mempolicy *p)
{
	return p->mode == MPOL_DEFAULT;
}

/* set_mempolicy in the thread of ctx->inj. The default is set too: a new
 * task has the restorer's. Without NUMA (ENOSYS) only the default is there
 * (cd_mempolicy_check refused any other). */
static int set_policy(struct cd_restore_ctx *ctx, const struct cd_mempolicy *p, cd_err *err)
{
	long ret;
	int r = cd_inject_write_mem(ctx->inj, ctx->data, p->nodes, sizeof(p->nodes), err);

	if (r < 0 || (r = cd_call(ctx->inj, SYS_set_mempolicy, (uint64_t)(p->mode | p->flags),
	                          ctx->data, MAXNODE, 0, 0, 0, &ret, err)) < 0)
		return r;
	if (ret == -ENOSYS && is_default(p))
		return 0;
	if (ret < 0)
		return cd_err_sys(err, (int)-ret, "set_mempolicy(%s)", mode_name(p->mode));
	return 0;
}

/* mbind on the mapping, moving the pages the fill placed elsewhere. */
static int set_vma_policy(struct cd_restore_ctx *ctx, const struct cd_vma_policy *vp, cd_err *err)
{
	const struct cd_mempolicy *p = &vp->pol;
	int r = cd_inject_write_mem(ctx->inj, ctx->data, p->nodes, sizeof(p->nodes), err);

	if (r < 0 || (r = cd_call_ok(ctx->inj, "mbind", SYS_mbind, vp->start, vp->end - vp->start,
	                             (uint64_t)(p->mode | p->flags), ctx->data, MAXNODE,
	                             MPOL_MF_MOVE, NULL, err)) < 0)
		return cd_err_wrap(err, "mapping %" PRIx64 "-%" PRIx64 ": NUMA policy %s",
		                   vp->start, vp->end, mode_name(p->mode));
	return 0;
}

static int mempolicy_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < t->nvpols; i++)
		r = set_vma_policy(ctx, &t->vpols[i], err);
	return r < 0 ? r : set_policy(ctx, &t->mempolicy, err);
}

static int check_set_policy(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	const struct cd_mempolicy *p = arg2;

	(void)arg, (void)out;
	if (ret == -ENOSYS && is_default(p))
		return 0;
	if (ret < 0)
		return cd_err_sys(err, (int)-ret, "set_mempolicy(%s)", mode_name(p->mode));
	return 0;
}

/* Queued in the thread's batch, as set_policy. */
static int mempolicy_restore_thread(struct cd_restore_ctx *ctx, const struct cd_task *t,
                                    const struct cd_thread *th, cd_err *err)
{
	const struct cd_mempolicy *p = &th->mempolicy;
	struct cd_batch *b = ctx->batch;
	int r = cd_batch_reserve(b, 1, sizeof(p->nodes), err);

	(void)t;
	if (r < 0)
		return r;
	uint64_t at = cd_batch_buf(b, p->nodes, sizeof(p->nodes));
	cd_batch_add(b, NULL, SYS_set_mempolicy, (uint64_t)(p->mode | p->flags), at, MAXNODE, 0, 0,
	             0, NULL);
	cd_batch_then(b, check_set_policy, NULL, p, 0, 0);
	return 0;
}

const struct cd_module cd_mod_mempolicy = {.name = "mempolicy",
                                           .dump = mempolicy_dump,
                                           .restore = mempolicy_restore,
                                           .dump_thread = mempolicy_dump_thread,
                                           .restore_thread = mempolicy_restore_thread};

/* ---- checks before the restore ---- */

/* The online nodes, from "0-3,5"; false when the kernel has no NUMA. */
static bool read_online(uint64_t online[CD_MAX_NUMA_NODES / 64])
{
	_cleanup_fclose_ FILE *f = fopen("/sys/devices/system/node/online", "re");
	unsigned a, b;
	char sep;

	memset(online, 0, CD_MAX_NUMA_NODES / 8);
	if (!f)
		return false;
	while (fscanf(f, "%u", &a) == 1) {
		b = a;
		if (fscanf(f, "%c", &sep) == 1 && sep == '-' && fscanf(f, "%u%c", &b, &sep) < 1)
			break;
		for (unsigned n = a; n <= b && n < CD_MAX_NUMA_NODES; n++)
			online[n / 64] |= 1ULL << (n % 64);
		if (sep != ',')
			break;
	}
	return true;
}

/* Refuses p, named by what, when it needs a node this machine lacks.
 * Relative nodes are positions in the task's allowed set, not nodes. */
static int check_nodes(const struct cd_mempolicy *p, const uint64_t *online, bool numa,
                       const char *what, cd_err *err)
{
	if (is_default(p))
		return 0;
	if (!numa)
		return cd_err_set(err, EOPNOTSUPP,
		                  "%s: NUMA memory policy %s, and this kernel has no NUMA support",
		                  what, mode_name(p->mode));
	if (p->flags & MPOL_F_RELATIVE_NODES)
		return 0;
	for (unsigned n = 0; n < CD_MAX_NUMA_NODES; n++)
		if ((p->nodes[n / 64] >> (n % 64) & 1) && !(online[n / 64] >> (n % 64) & 1))
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "%s: NUMA memory policy %s on node %u, which this machine "
			    "does not have",
			    what, mode_name(p->mode), n);
	return 0;
}

static int check_task(const struct cd_task *t, const uint64_t *online, bool numa, cd_err *err)
{
	char what[96];
	int r;

	snprintf(what, sizeof(what), "pid %d", t->pid);
	if ((r = check_nodes(&t->mempolicy, online, numa, what, err)) < 0)
		return r;
	for (size_t i = 0; i < t->nthreads; i++) {
		snprintf(what, sizeof(what), "pid %d: tid %d", t->pid, t->threads[i].tid);
		if ((r = check_nodes(&t->threads[i].mempolicy, online, numa, what, err)) < 0)
			return r;
	}
	for (size_t i = 0; i < t->nvpols; i++) {
		snprintf(what, sizeof(what), "pid %d: mapping %" PRIx64 "-%" PRIx64, t->pid,
		         t->vpols[i].start, t->vpols[i].end);
		if ((r = check_nodes(&t->vpols[i].pol, online, numa, what, err)) < 0)
			return r;
	}
	return 0;
}

int cd_mempolicy_check(const struct cd_image *img, cd_err *err)
{
	uint64_t online[CD_MAX_NUMA_NODES / 64];
	bool numa = read_online(online);
	int r = 0;

	for (size_t i = 0; r >= 0 && i < img->ntasks; i++)
		if (!img->tasks[i].zombie)
			r = check_task(&img->tasks[i], online, numa, err);
	return r;
}
