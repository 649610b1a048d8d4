/* The mm fields: code/data/brk/stack bounds, arg/env area, auxv and the exe
 * link, restored in one PR_SET_MM_MAP (which needs no CAP_SYS_RESOURCE). */
#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

/* mlockall(MCL_FUTURE) shows nowhere itself, but the kernel gives every
 * new mapping its flags: the scratch page, mapped by the dump just before,
 * is such a mapping (mapped low, so that smaps is read only as far as it:
 * dump.c). The same holds for PR_SET_MEMORY_MERGE, which makes
 * new mappings mergeable and is not restored. */
static int dump_future_flags(const struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	struct cd_proc_map map;
	const struct cd_proc_map *m = &map;
	int r = cd_proc_map_at(t->pid, ctx->scratch, &map, err);

	if (r == -ENOENT)
		return cd_err_wrap(err, "scratch page");
	if (r < 0)
		return r;
	if (cd_proc_vmflag(m, "mg"))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: KSM merging of all its memory (PR_SET_MEMORY_MERGE) is "
		                  "not restored",
		                  t->pid);
	t->mlock_future = !cd_proc_vmflag(m, "lo")  ? CD_MLOCK_FUTURE_NONE
	                  : cd_proc_vmflag(m, "lf") ? CD_MLOCK_FUTURE_ONFAULT
	                                            : CD_MLOCK_FUTURE;
	return 0;
}

/* After every mapping is in place, so that none of them is locked by it. */
static int restore_future_lock(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	uint64_t flags = MCL_FUTURE;

	if (t->mlock_future == CD_MLOCK_FUTURE_NONE)
		return 0;
	if (t->mlock_future == CD_MLOCK_FUTURE_ONFAULT)
		flags |= MCL_ONFAULT;
	return cd_call_ok(ctx->inj, "mlockall(MCL_FUTURE)", SYS_mlockall, flags, 0, 0, 0, 0, 0,
	                  NULL, err);
}

static int mm_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	struct cd_proc_stat st;
	_cleanup_free_ char *auxv = NULL;
	size_t len;
	long brk;
	int r;

	if ((r = cd_proc_stat(t->pid, &st, err)) < 0 || (r = dump_future_flags(ctx, t, err)) < 0)
		return r;
	t->mm.start_code = st.start_code;
	t->mm.end_code = st.end_code;
	t->mm.start_data = st.start_data;
	t->mm.end_data = st.end_data;
	t->mm.start_brk = st.start_brk;
	t->mm.start_stack = st.start_stack;
	t->mm.arg_start = st.arg_start;
	t->mm.arg_end = st.arg_end;
	t->mm.env_start = st.env_start;
	t->mm.env_end = st.env_end;
	if ((r = cd_call(ctx->inj, SYS_brk, 0, 0, 0, 0, 0, 0, &brk, err)) < 0)
		return r;
	t->mm.brk = (uint64_t)brk;
	if ((r = cd_proc_read_file(t->pid, "auxv", &auxv, &len, err)) < 0)
		return r;
	len /= sizeof(uint64_t);
	if (len > ARRAY_SIZE(t->mm.auxv))
		return cd_err_set(err, E2BIG, "pid %d: auxv too long", t->pid);
	memcpy(t->mm.auxv, auxv, len * sizeof(uint64_t));
	t->mm.auxv_len = len;
	return cd_proc_readlink(t->pid, "exe", &t->mm.exe, err);
}

static int mm_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	struct prctl_mm_map map = {
	    .start_code = t->mm.start_code,
	    .end_code = t->mm.end_code,
	    .start_data = t->mm.start_data,
	    .end_data = t->mm.end_data,
	    .start_brk = t->mm.start_brk,
	    .brk = t->mm.brk,
	    .start_stack = t->mm.start_stack,
	    .arg_start = t->mm.arg_start,
	    .arg_end = t->mm.arg_end,
	    .env_start = t->mm.env_start,
	    .env_end = t->mm.env_end,
	    .auxv_size = (uint32_t)(t->mm.auxv_len * sizeof(uint64_t)),
	};
	uint64_t auxv_at = ctx->data + 1024;
	long fd = -1, ignored;
	int r;

	if (sizeof(map) + 1024 + sizeof(t->mm.auxv) > ctx->data_len)
		return cd_err_set(err, ENOSPC, "trampoline data area too small");
	/* the exe path goes to the data area first; map and auxv after it */
	r = cd_inject_write_mem(ctx->inj, ctx->data + 512, t->mm.exe, strlen(t->mm.exe) + 1, err);
	if (r < 0)
		return r;
	r = cd_call(ctx->inj, SYS_openat, (uint64_t)AT_FDCWD, ctx->data + 512, O_RDONLY | O_CLOEXEC,
	            0, 0, 0, &fd, err);
	if (r < 0)
		return r;
	if (fd < 0)
		return cd_err_sys(err, (int)-fd, "open exe %s", t->mm.exe);
	map.exe_fd = (uint32_t)fd;
	map.auxv = (__u64 *)auxv_at;
	r = cd_inject_write_mem(ctx->inj, auxv_at, t->mm.auxv, map.auxv_size, err);
	if (r >= 0)
		r = cd_inject_write_mem(ctx->inj, ctx->data, &map, sizeof(map), err);
	if (r >= 0)
		r = cd_call_ok(ctx->inj, "prctl(PR_SET_MM_MAP)", SYS_prctl, PR_SET_MM,
		               PR_SET_MM_MAP, ctx->data, sizeof(map), 0, 0, NULL, err);
	cd_call(ctx->inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err);
	if (r >= 0)
		r = restore_future_lock(ctx, t, err);
	return r;
}

const struct cd_module cd_mod_mm = {.name = "mm", .dump = mm_dump, .restore = mm_restore};
