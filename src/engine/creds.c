/* Credentials: uids, gids, supplementary groups, capabilities and
 * no_new_privs. Set last, by injection, since they can take away the
 * rights the earlier steps need. */
#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

static int creds_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	struct cd_proc_status st;
	int r = cd_proc_status(t->pid, &st, err);

	if (r < 0)
		return r;
	long dumpable;
	if ((r = cd_call_ok(ctx->inj, "prctl(PR_GET_DUMPABLE)", SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0,
	                    0, 0, &dumpable, err)) < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	t->dumpable = (int)dumpable;
	long securebits;
	if ((r = cd_call_ok(ctx->inj, "prctl(PR_GET_SECUREBITS)", SYS_prctl, PR_GET_SECUREBITS, 0,
	                    0, 0, 0, 0, &securebits, err)) < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	/* not in the image: the restore would leave them at the restorer's (none) */
	if (securebits)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d (%s): securebits %#lx (PR_SET_SECUREBITS, "
		                  "PR_SET_KEEPCAPS) are not supported (clear them with "
		                  "prctl(PR_SET_KEEPCAPS, 0) or PR_SET_SECUREBITS 0 first)",
		                  t->pid, t->comm, securebits);
	memcpy(t->uid, st.uid, sizeof(t->uid));
	memcpy(t->gid, st.gid, sizeof(t->gid));
	if ((r = cd_proc_groups(t->pid, &t->groups, &t->ngroups, err)) < 0)
		return r;
	t->cap_inh = st.cap_inh;
	t->cap_prm = st.cap_prm;
	t->cap_eff = st.cap_eff;
	t->cap_bnd = st.cap_bnd;
	t->cap_amb = st.cap_amb;
	return 0;
}

static bool same_as_task(pid_t pid, const struct cd_task *t)
{
	struct cd_proc_status st;
	_cleanup_free_ uint32_t *groups = NULL;
	size_t ngroups;
	cd_err ignored;

	if (cd_proc_status(pid, &st, &ignored) < 0 ||
	    cd_proc_groups(pid, &groups, &ngroups, &ignored) < 0)
		return false;
	return !memcmp(st.uid, t->uid, sizeof(t->uid)) && !memcmp(st.gid, t->gid, sizeof(t->gid)) &&
	       ngroups == t->ngroups && !memcmp(groups, t->groups, ngroups * sizeof(*groups)) &&
	       st.cap_inh == t->cap_inh && st.cap_prm == t->cap_prm && st.cap_eff == t->cap_eff &&
	       st.cap_bnd == t->cap_bnd && st.cap_amb == t->cap_amb;
}

static int drop_bounding(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
		if (t->cap_bnd & (1ULL << cap))
			continue;
		int r = cd_call_ok(ctx->inj, "prctl(PR_CAPBSET_DROP)", SYS_prctl, PR_CAPBSET_DROP,
		                   (uint64_t)cap, 0, 0, 0, 0, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Up to 65536 groups (256 KiB) do not fit the trampoline's data area: a
 * longer list goes through a mapping of its own in the task. */
static int set_groups(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	cd_inject *inj = ctx->inj;
	uint64_t len = t->ngroups * sizeof(*t->groups), at = ctx->data;
	long addr = 0, ignored;
	int r;

	if (len > ctx->data_len) {
		if ((r = cd_call_ok(inj, "mmap for setgroups", SYS_mmap, 0, len,
		                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		                    (uint64_t)-1, 0, &addr, err)) < 0)
			return r;
		at = (uint64_t)addr;
	}
	if ((r = cd_inject_write_mem(inj, at, t->groups, len, err)) >= 0)
		r = cd_call_ok(inj, "setgroups", SYS_setgroups, t->ngroups, at, 0, 0, 0, 0, NULL,
		               err);
	if (addr && r >= 0)
		r = cd_call_ok(inj, "munmap after setgroups", SYS_munmap, (uint64_t)addr, len, 0, 0,
		               0, 0, &ignored, err);
	return r;
}

static int set_ids(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	cd_inject *inj = ctx->inj;
	int r;

	if ((r = set_groups(ctx, t, err)) < 0 ||
	    (r = cd_call_ok(inj, "prctl(PR_SET_KEEPCAPS)", SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0,
	                    0, NULL, err)) < 0 ||
	    (r = cd_call_ok(inj, "setresgid", SYS_setresgid, t->gid[0], t->gid[1], t->gid[2], 0, 0,
	                    0, NULL, err)) < 0 ||
	    (r = cd_call_ok(inj, "setresuid", SYS_setresuid, t->uid[0], t->uid[1], t->uid[2], 0, 0,
	                    0, NULL, err)) < 0)
		return r;
	long ignored;
	/* setfsuid/setfsgid report the previous id, never an error */
	cd_call(inj, SYS_setfsgid, t->gid[3], 0, 0, 0, 0, 0, &ignored, err);
	cd_call(inj, SYS_setfsuid, t->uid[3], 0, 0, 0, 0, 0, &ignored, err);
	return 0;
}

/* The ambient set, raised bit by bit once permitted and inheritable hold
 * each bit (the kernel's rule for an ambient capability). */
static int set_ambient(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	int r = cd_call_ok(ctx->inj, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)", SYS_prctl, PR_CAP_AMBIENT,
	                   PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0, NULL, err);

	for (int cap = 0; r >= 0 && cap < 64; cap++)
		if (t->cap_amb & (1ULL << cap))
			r = cd_call_ok(ctx->inj, "prctl(PR_CAP_AMBIENT_RAISE)", SYS_prctl,
			               PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (uint64_t)cap, 0, 0, 0,
			               NULL, err);
	return r;
}

static int set_caps(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {
	    {(uint32_t)t->cap_eff, (uint32_t)t->cap_prm, (uint32_t)t->cap_inh},
	    {(uint32_t)(t->cap_eff >> 32), (uint32_t)(t->cap_prm >> 32),
	     (uint32_t)(t->cap_inh >> 32)},
	};
	int r;

	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, &hdr, sizeof(hdr), err)) < 0 ||
	    (r = cd_inject_write_mem(ctx->inj, ctx->data + 64, data, sizeof(data), err)) < 0 ||
	    (r = cd_call_ok(ctx->inj, "capset", SYS_capset, ctx->data, ctx->data + 64, 0, 0, 0, 0,
	                    NULL, err)) < 0)
		return r;
	if ((r = cd_call_ok(ctx->inj, "prctl(PR_SET_KEEPCAPS)", SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0,
	                    0, 0, NULL, err)) < 0)
		return r;
	return set_ambient(ctx, t, err);
}

static int creds_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	int r;

	if (!same_as_task(cd_inject_pid(ctx->inj), t)) {
		if ((r = drop_bounding(ctx, t, err)) < 0 || (r = set_ids(ctx, t, err)) < 0 ||
		    (r = set_caps(ctx, t, err)) < 0)
			return r;
	}
	/* changing ids resets it */
	if ((r = cd_call_ok(ctx->inj, "prctl(PR_SET_DUMPABLE)", SYS_prctl, PR_SET_DUMPABLE,
	                    (uint64_t)t->dumpable, 0, 0, 0, 0, NULL, err)) < 0)
		return r;
	if (t->no_new_privs)
		return cd_call_ok(ctx->inj, "prctl(PR_SET_NO_NEW_PRIVS)", SYS_prctl,
		                  PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0, NULL, err);
	return 0;
}

/* Credentials are per thread in the kernel: each thread sets the task's
 * (the dump refused threads whose credentials differ, threads.c). */
static int creds_restore_thread(struct cd_restore_ctx *ctx, const struct cd_task *t,
                                const struct cd_thread *th, cd_err *err)
{
	(void)th;
	return creds_restore(ctx, t, err);
}

const struct cd_module cd_mod_creds = {.name = "creds",
                                       .dump = creds_dump,
                                       .restore = creds_restore,
                                       .restore_thread = creds_restore_thread};
