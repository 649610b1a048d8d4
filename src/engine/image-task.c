/* Codec of one task's metadata in the manifest. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image-fields.h"
#include "shared/cleanup.h"

#define F(m) CD_FIELD(struct cd_task, m)
static const struct cd_field task_fields[] = {
    F(pid),           F(ppid),         F(pgid),        F(sid),        F(pages_size),  F(pages_csum),
    F(umask),         F(blocked),      F(ss_sp),       F(ss_size),    F(ss_flags),    F(rseq_addr),
    F(rseq_sig),      F(rseq_len),     F(robust_head), F(robust_len), F(clear_tid),   F(cap_inh),
    F(cap_prm),       F(cap_eff),      F(cap_bnd),     F(cap_amb),    F(personality), F(nice),
    F(oom_score_adj), F(no_new_privs), F(dumpable),
};
#undef F

#define R(m) CD_FIELD(struct user_regs_struct, m)
static const struct cd_field reg_fields[] = {
    R(r15),    R(r14), R(r13), R(r12),     R(rbp),     R(rbx), R(r11),      R(r10), R(r9),
    R(r8),     R(rax), R(rcx), R(rdx),     R(rsi),     R(rdi), R(orig_rax), R(rip), R(cs),
    R(eflags), R(rsp), R(ss),  R(fs_base), R(gs_base), R(ds),  R(es),       R(fs),  R(gs),
};
#undef R

#define M(m) CD_FIELD(struct cd_mm, m)
static const struct cd_field mm_fields[] = {
    M(start_code),  M(end_code),  M(start_data), M(end_data),  M(start_brk), M(brk),
    M(start_stack), M(arg_start), M(arg_end),    M(env_start), M(env_end),
};
#undef M

#define V(m) CD_FIELD(struct cd_vma, m)
static const struct cd_field vma_fields[] = {
    V(start), V(end), V(pgoff), V(prot),  V(shared), V(growsdown),
    V(kind),  V(dev), V(ino),   V(shmid), V(fsize),  V(mtime_ns),
};
#undef V

#define D(m) CD_FIELD(struct cd_fd, m)
static const struct cd_field fd_fields[] = {
    D(fd), D(kind), D(flags), D(pos), D(obj), D(writer),
};
#undef D

void cd_task_free(struct cd_task *t)
{
	for (size_t i = 0; i < t->nvmas; i++) {
		free(t->vmas[i].path);
		free(t->vmas[i].runs);
	}
	free(t->vmas);
	for (size_t i = 0; i < t->nfds; i++)
		free(t->fds[i].path);
	free(t->fds);
	free(t->xstate);
	free(t->mm.exe);
	free(t->cwd);
	free(t->root);
	free(t->pending);
	free(t->pending_shared);
	free(t->groups);
	memset(t, 0, sizeof(*t));
}

static json_t *u64_array(const uint64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)v[i]));
	return a;
}

static int u64_array_decode(json_t *a, uint64_t *v, size_t max, size_t *ret_n, const char *what,
                            cd_err *err)
{
	size_t i;
	json_t *x;

	if (!json_is_array(a) || json_array_size(a) > max)
		return cd_err_set(err, EINVAL, "bad array \"%s\"", what);
	json_array_foreach(a, i, x) v[i] = (uint64_t)json_integer_value(x);
	if (ret_n)
		*ret_n = json_array_size(a);
	return 0;
}

static json_t *vma_to_json(const struct cd_vma *v)
{
	json_t *o = json_object(), *runs = json_array();

	cd_fields_encode(o, vma_fields, ARRAY_SIZE(vma_fields), v);
	if (v->path)
		json_object_set_new(o, "path", json_string(v->path));
	for (size_t i = 0; i < v->nruns; i++)
		json_array_append_new(runs, json_pack("[I,I,i]", (json_int_t)v->runs[i].page,
		                                      (json_int_t)v->runs[i].npages,
		                                      (int)v->runs[i].src));
	json_object_set_new(o, "runs", runs);
	return o;
}

static json_t *fd_to_json(const struct cd_fd *d)
{
	json_t *o = json_object();

	cd_fields_encode(o, fd_fields, ARRAY_SIZE(fd_fields), d);
	if (d->path)
		json_object_set_new(o, "path", json_string(d->path));
	return o;
}

static json_t *sigacts_to_json(const struct cd_task *t)
{
	json_t *a = json_array();

	for (int i = 0; i < CD_NSIG; i++)
		json_array_append_new(a, u64_array(&t->act[i].handler, 4));
	return a;
}

static json_t *siginfos_to_json(uint8_t (*si)[128], size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		cd_json_hex_encode(o, "siginfo", si[i], 128);
		json_array_append_new(a, o);
	}
	return a;
}

json_t *cd_task_to_json(const struct cd_task *t)
{
	json_t *o = json_object(), *regs = json_object(), *mm = json_object(), *a;

	if (!o || !regs || !mm)
		return NULL;
	cd_fields_encode(o, task_fields, ARRAY_SIZE(task_fields), t);
	json_object_set_new(o, "comm", json_string(t->comm));
	json_object_set_new(o, "pages_file", json_string(t->pages_file));
	cd_fields_encode(regs, reg_fields, ARRAY_SIZE(reg_fields), &t->regs);
	json_object_set_new(o, "regs", regs);
	cd_json_hex_encode(o, "xstate", t->xstate, t->xstate_len);
	cd_fields_encode(mm, mm_fields, ARRAY_SIZE(mm_fields), &t->mm);
	json_object_set_new(mm, "auxv", u64_array(t->mm.auxv, t->mm.auxv_len));
	json_object_set_new(mm, "exe", json_string(t->mm.exe ? t->mm.exe : ""));
	json_object_set_new(o, "mm", mm);
	a = json_array();
	for (size_t i = 0; i < t->nvmas; i++)
		json_array_append_new(a, vma_to_json(&t->vmas[i]));
	json_object_set_new(o, "vmas", a);
	a = json_array();
	for (size_t i = 0; i < t->nfds; i++)
		json_array_append_new(a, fd_to_json(&t->fds[i]));
	json_object_set_new(o, "fds", a);
	json_object_set_new(o, "cwd", json_string(t->cwd ? t->cwd : "/"));
	json_object_set_new(o, "root", json_string(t->root ? t->root : "/"));
	json_object_set_new(o, "sigactions", sigacts_to_json(t));
	json_object_set_new(o, "pending", siginfos_to_json(t->pending, t->npending));
	json_object_set_new(o, "pending_shared",
	                    siginfos_to_json(t->pending_shared, t->npending_shared));
	json_object_set_new(o, "itimers", u64_array((const uint64_t *)t->itimer, 12));
	json_object_set_new(o, "rlimits", u64_array(&t->rlim[0][0], 2 * CD_NRLIMIT));
	a = json_array();
	for (int i = 0; i < 4; i++)
		json_array_append_new(a, json_integer(t->uid[i]));
	json_object_set_new(o, "uids", a);
	a = json_array();
	for (int i = 0; i < 4; i++)
		json_array_append_new(a, json_integer(t->gid[i]));
	json_object_set_new(o, "gids", a);
	a = json_array();
	for (size_t i = 0; i < t->ngroups; i++)
		json_array_append_new(a, json_integer(t->groups[i]));
	json_object_set_new(o, "groups", a);
	json_object_set_new(o, "affinity", u64_array(t->affinity, ARRAY_SIZE(t->affinity)));
	return o;
}

static int run_from_json(json_t *r, struct cd_vma *v, struct cd_run *run, cd_err *err)
{
	json_int_t page, npages;
	int src;

	if (json_unpack(r, "[I,I,i]", &page, &npages, &src) < 0 || page < 0 || npages <= 0 ||
	    src < CD_RUN_DATA || src > CD_RUN_PARENT)
		return cd_err_set(err, EINVAL, "bad page run");
	run->page = (uint64_t)page;
	run->npages = (uint64_t)npages;
	run->src = (uint8_t)src;
	if (run->page + run->npages > (v->end - v->start) / CD_PAGE_SIZE)
		return cd_err_set(err, EINVAL, "page run outside its mapping");
	return 0;
}

static int vma_from_json(json_t *o, struct cd_vma *v, uint64_t *data_pages, cd_err *err)
{
	json_t *runs = json_object_get(o, "runs"), *r;
	const char *path = json_string_value(json_object_get(o, "path"));
	size_t i;
	int ret = cd_fields_decode(o, vma_fields, ARRAY_SIZE(vma_fields), v, err);

	if (ret < 0)
		return ret;
	if (v->start >= v->end || v->start % CD_PAGE_SIZE || v->end % CD_PAGE_SIZE ||
	    (unsigned)v->kind >= CD_VMA_KIND_MAX)
		return cd_err_set(err, EINVAL, "bad mapping %" PRIx64 "-%" PRIx64, v->start,
		                  v->end);
	if (path && !(v->path = strdup(path)))
		return cd_err_set(err, ENOMEM, "out of memory");
	if ((v->kind == CD_VMA_FILE || v->kind == CD_VMA_FILE_SHARED) && !v->path)
		return cd_err_set(err, EINVAL, "file mapping %" PRIx64 " without a path", v->start);
	if (!json_is_array(runs))
		return cd_err_set(err, EINVAL, "mapping %" PRIx64 ": no runs", v->start);
	v->runs = calloc(json_array_size(runs) + 1, sizeof(*v->runs));
	if (!v->runs)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(runs, i, r)
	{
		ret = run_from_json(r, v, &v->runs[v->nruns], err);
		if (ret < 0)
			return cd_err_wrap(err, "mapping %" PRIx64, v->start);
		if (v->runs[v->nruns].src == CD_RUN_DATA)
			*data_pages += v->runs[v->nruns].npages;
		v->nruns++;
	}
	return 0;
}

static int vmas_from_json(json_t *a, struct cd_task *t, cd_err *err)
{
	uint64_t data_pages = 0;
	size_t i;
	json_t *o;

	if (!json_is_array(a))
		return cd_err_set(err, EINVAL, "missing array \"vmas\"");
	t->vmas = calloc(json_array_size(a) + 1, sizeof(*t->vmas));
	if (!t->vmas)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, o)
	{
		int r = vma_from_json(o, &t->vmas[t->nvmas], &data_pages, err);
		t->nvmas++;
		if (r < 0)
			return r;
	}
	if (data_pages * CD_PAGE_SIZE != t->pages_size)
		return cd_err_set(err, EINVAL,
		                  "page runs hold %" PRIu64 " pages, page file %" PRIu64 " bytes",
		                  data_pages, t->pages_size);
	return 0;
}

static int fds_from_json(json_t *a, struct cd_task *t, cd_err *err)
{
	size_t i;
	json_t *o;

	if (!json_is_array(a))
		return cd_err_set(err, EINVAL, "missing array \"fds\"");
	t->fds = calloc(json_array_size(a) + 1, sizeof(*t->fds));
	if (!t->fds)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, o)
	{
		struct cd_fd *d = &t->fds[t->nfds++];
		const char *path = json_string_value(json_object_get(o, "path"));
		int r = cd_fields_decode(o, fd_fields, ARRAY_SIZE(fd_fields), d, err);
		if (r < 0)
			return cd_err_wrap(err, "fd %zu", i);
		if (d->fd < 0 || (unsigned)d->kind >= CD_FD_KIND_MAX)
			return cd_err_set(err, EINVAL, "bad fd entry %zu", i);
		if (path && !(d->path = strdup(path)))
			return cd_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int siginfos_from_json(json_t *a, uint8_t (**ret)[128], size_t *ret_n, cd_err *err)
{
	size_t i;
	json_t *o;

	if (!json_is_array(a))
		return cd_err_set(err, EINVAL, "missing pending signal array");
	*ret = calloc(json_array_size(a) + 1, 128);
	if (!*ret)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, o)
	{
		_cleanup_free_ uint8_t *buf = NULL;
		size_t len;
		int r = cd_json_hex_decode(o, "siginfo", &buf, &len, err);
		if (r < 0)
			return r;
		if (len != 128)
			return cd_err_set(err, EINVAL, "bad siginfo size");
		memcpy((*ret)[i], buf, 128);
		(*ret_n)++;
	}
	return 0;
}

static int strdup_field(json_t *o, const char *key, char **ret, cd_err *err)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (!s)
		return cd_err_set(err, EINVAL, "missing string field \"%s\"", key);
	*ret = strdup(s);
	return *ret ? 0 : cd_err_set(err, ENOMEM, "out of memory");
}

static int attrs_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *a, *x;
	uint64_t ids[4] = {0};
	size_t i, n = 0;
	int r;

	if ((r = u64_array_decode(json_object_get(o, "itimers"), (uint64_t *)t->itimer, 12, NULL,
	                          "itimers", err)) < 0 ||
	    (r = u64_array_decode(json_object_get(o, "rlimits"), &t->rlim[0][0], 2 * CD_NRLIMIT,
	                          NULL, "rlimits", err)) < 0 ||
	    (r = u64_array_decode(json_object_get(o, "affinity"), t->affinity,
	                          ARRAY_SIZE(t->affinity), NULL, "affinity", err)) < 0)
		return r;
	/* all four ids (real, effective, saved, fs): a shorter array would leave
	 * the rest to whatever ids held */
	if ((r = u64_array_decode(json_object_get(o, "uids"), ids, 4, &n, "uids", err)) < 0)
		return r;
	if (n != 4)
		return cd_err_set(err, EINVAL, "bad array \"uids\"");
	for (i = 0; i < 4; i++)
		t->uid[i] = (uint32_t)ids[i];
	if ((r = u64_array_decode(json_object_get(o, "gids"), ids, 4, &n, "gids", err)) < 0)
		return r;
	if (n != 4)
		return cd_err_set(err, EINVAL, "bad array \"gids\"");
	for (i = 0; i < 4; i++)
		t->gid[i] = (uint32_t)ids[i];
	a = json_object_get(o, "groups");
	if (!json_is_array(a))
		return cd_err_set(err, EINVAL, "missing array \"groups\"");
	t->groups = calloc(json_array_size(a) + 1, sizeof(*t->groups));
	if (!t->groups)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, x) t->groups[t->ngroups++] = (uint32_t)json_integer_value(x);
	a = json_object_get(o, "sigactions");
	if (!json_is_array(a) || json_array_size(a) != CD_NSIG)
		return cd_err_set(err, EINVAL, "bad array \"sigactions\"");
	json_array_foreach(a, i, x)
	{
		if ((r = u64_array_decode(x, &t->act[i].handler, 4, NULL, "sigaction", err)) < 0)
			return r;
	}
	return 0;
}

int cd_task_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *regs = json_object_get(o, "regs"), *mm = json_object_get(o, "mm");
	const char *comm = json_string_value(json_object_get(o, "comm"));
	const char *pf = json_string_value(json_object_get(o, "pages_file"));
	int r;

	if (!json_is_object(o) || !regs || !mm || !comm || !pf)
		return cd_err_set(err, EINVAL, "incomplete task entry");
	if ((r = cd_fields_decode(o, task_fields, ARRAY_SIZE(task_fields), t, err)) < 0 ||
	    (r = cd_fields_decode(regs, reg_fields, ARRAY_SIZE(reg_fields), &t->regs, err)) < 0 ||
	    (r = cd_fields_decode(mm, mm_fields, ARRAY_SIZE(mm_fields), &t->mm, err)) < 0)
		return r;
	snprintf(t->comm, sizeof(t->comm), "%s", comm);
	if (strchr(pf, '/') || !*pf || strlen(pf) >= sizeof(t->pages_file))
		return cd_err_set(err, EINVAL, "bad page file name");
	strcpy(t->pages_file, pf);
	if (t->pid <= 0)
		return cd_err_set(err, EINVAL, "bad pid %d", t->pid);
	if ((r = cd_json_hex_decode(o, "xstate", &t->xstate, &t->xstate_len, err)) < 0 ||
	    (r = u64_array_decode(json_object_get(mm, "auxv"), t->mm.auxv, ARRAY_SIZE(t->mm.auxv),
	                          &t->mm.auxv_len, "auxv", err)) < 0 ||
	    (r = strdup_field(mm, "exe", &t->mm.exe, err)) < 0 ||
	    (r = strdup_field(o, "cwd", &t->cwd, err)) < 0 ||
	    (r = strdup_field(o, "root", &t->root, err)) < 0 ||
	    (r = vmas_from_json(json_object_get(o, "vmas"), t, err)) < 0 ||
	    (r = fds_from_json(json_object_get(o, "fds"), t, err)) < 0 ||
	    (r = siginfos_from_json(json_object_get(o, "pending"), &t->pending, &t->npending,
	                            err)) < 0 ||
	    (r = siginfos_from_json(json_object_get(o, "pending_shared"), &t->pending_shared,
	                            &t->npending_shared, err)) < 0 ||
	    (r = attrs_from_json(o, t, err)) < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	return 0;
}
