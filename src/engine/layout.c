/* The address-space layout of a restored task: the vDSO family (checked
 * against this kernel, moved to the recorded addresses), everything the new
 * task inherited unmapped, and shared anonymous memory objects. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#define PAGE CD_PAGE_SIZE

bool cd_vdso_kind(const char *path, enum cd_vma_kind *kind)
{
	if (!strcmp(path, "[vdso]"))
		*kind = CD_VMA_VDSO;
	else if (!strcmp(path, "[vvar]"))
		*kind = CD_VMA_VVAR;
	else if (!strcmp(path, "[vvar_vclock]"))
		*kind = CD_VMA_VVAR_VCLOCK;
	else
		return false;
	return true;
}

struct kept {
	uint64_t start, end;
};

static int cmp_kept(const void *a, const void *b)
{
	const struct kept *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Moves the new task's vDSO family to the addresses the image records, in
 * two steps through a free area so no move lands on another's old place. */
int cd_layout_move_vdso(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	_cleanup_free_ struct cd_proc_map *maps = NULL;
	uint64_t cur[CD_VMA_KIND_MAX] = {0}, size[CD_VMA_KIND_MAX] = {0};
	size_t n;
	int r = cd_proc_maps(cd_inject_pid(ctx->inj), &maps, &n, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		enum cd_vma_kind k;
		if (cd_vdso_kind(maps[i].path, &k)) {
			cur[k] = maps[i].start;
			size[k] = maps[i].end - maps[i].start;
		}
	}
	uint64_t tmp = ctx->vtmp;
	for (int k = CD_VMA_VDSO; k < CD_VMA_VDSO_END; k++) {
		if (!cur[k])
			continue;
		r = cd_call_ok(ctx->inj, "mremap vdso to scratch", SYS_mremap, cur[k], size[k],
		               size[k], MREMAP_MAYMOVE | MREMAP_FIXED, tmp, 0, NULL, err);
		if (r < 0)
			return r;
		cur[k] = tmp;
		tmp += size[k] + PAGE;
	}
	for (size_t i = 0; i < t->nvmas; i++) {
		const struct cd_vma *v = &t->vmas[i];
		if (!cd_vma_is_vdso(v->kind))
			continue;
		if (!cur[v->kind] || size[v->kind] != v->end - v->start)
			return cd_err_set(err, EINVAL, "vDSO layout differs from the image's");
		r = cd_call_ok(ctx->inj, "mremap vdso", SYS_mremap, cur[v->kind], size[v->kind],
		               size[v->kind], MREMAP_MAYMOVE | MREMAP_FIXED, v->start, 0, NULL,
		               err);
		if (r < 0)
			return r;
		cur[v->kind] = 0;
	}
	for (int k = CD_VMA_VDSO; k < CD_VMA_VDSO_END; k++)
		if (cur[k])
			return cd_err_set(err, EINVAL, "vDSO layout differs from the image's");
	return 0;
}

/* Unmaps everything the new task inherited, keeping the trampoline, the
 * premapped area (the task's own slots, moved into place next) and the
 * vDSO family. */
int cd_layout_unmap_rest(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	struct kept k[8];
	size_t nk = 0;
	uint64_t at = 0;
	const uint64_t top = 0x7ffffffff000ULL;

	k[nk++] = (struct kept){ctx->tramp, ctx->tramp + ctx->tramp_len};
	if (ctx->premap_len)
		k[nk++] = (struct kept){ctx->premap_base, ctx->premap_base + ctx->premap_len};
	for (size_t i = 0; i < t->nvmas && nk < ARRAY_SIZE(k); i++)
		if (cd_vma_is_vdso(t->vmas[i].kind))
			k[nk++] = (struct kept){t->vmas[i].start, t->vmas[i].end};
	qsort(k, nk, sizeof(k[0]), cmp_kept);
	for (size_t i = 0; i <= nk; i++) {
		uint64_t end = i < nk ? k[i].start : top;
		if (end > at) {
			int r = cd_call_ok(ctx->inj, "munmap", SYS_munmap, at, end - at, 0, 0, 0, 0,
			                   NULL, err);
			if (r < 0)
				return r;
		}
		if (i < nk)
			at = k[i].end;
	}
	return 0;
}

/* The name of the memfd a shared memory object is made as: a memfd's own
 * ("/memfd:NAME (deleted)", checked by the decoder), else cedana-shm. */
char *cd_shm_name(const char *path)
{
	size_t n;

	if (!path)
		return strdup("cedana-shm");
	n = strlen(path) - strlen("/memfd:") - strlen(" (deleted)");
	return strndup(path + strlen("/memfd:"), n);
}

/* Shared memory object s: the memfd of the image it is (memfd.c: one
 * object, its contents and size restored; an fd's, or made now for the
 * mappings of a memfd no fd holds), else a new memfd of the mappings'
 * extent. */
static int shm_make(const struct cd_image *img, const struct cd_file_objs *objs, int dirfd,
                    struct cd_shm *s, cd_err *err)
{
	_cleanup_free_ char *name = cd_shm_name(s->path);

	if (!name)
		return cd_err_set(err, ENOMEM, "out of memory");
	s->fd = cd_memfd_shm_fd(img, objs, dirfd, s->id, err);
	if (s->fd != -ENOENT)
		return s->fd < 0 ? s->fd : 0;
	s->fd = memfd_create(name, MFD_CLOEXEC);
	if (s->fd < 0 || ftruncate(s->fd, (off_t)s->size) < 0)
		return cd_err_sys(err, errno, "shared memory object");
	return 0;
}

/* Whether shared object s is mapping v's: a deleted file's by its path
 * (id 0), any other by its shmid. */
static bool shm_is(const struct cd_shm *s, const struct cd_vma *v, bool ghost)
{
	return ghost ? s->id == 0 && !strcmp(s->path, v->path) : s->id && s->id == v->shmid;
}

int cd_mem_shm_prepare(const struct cd_image *img, const struct cd_file_objs *objs, int dirfd,
                       struct cd_shm **ret, size_t *ret_n, cd_err *err)
{
	struct cd_shm *shm = NULL;
	size_t n = 0;

	for (size_t i = 0; i < img->ntasks; i++) {
		for (size_t j = 0; j < img->tasks[i].nvmas; j++) {
			const struct cd_vma *v = &img->tasks[i].vmas[j];
			/* a deleted file mapped shared is one object too (fd-deleted.c),
			 * and a memfd no fd holds mapped private (memfd.c) */
			bool ghost = cd_vma_deleted(v);
			size_t k;
			if (v->kind != CD_VMA_ANON_SHARED && !ghost &&
			    !(cd_vma_memfd(v) && cd_memfd_unheld(img, v->shmid)))
				continue;
			for (k = 0; k < n && !shm_is(&shm[k], v, ghost); k++)
				;
			if (k == n) {
				struct cd_shm *ns = realloc(shm, (n + 1) * sizeof(*ns));
				if (!ns) {
					cd_mem_shm_free(shm, n);
					return cd_err_set(err, ENOMEM, "out of memory");
				}
				shm = ns;
				shm[n++] = (struct cd_shm){
				    .id = ghost ? 0 : v->shmid, .fd = -1, .path = v->path};
			}
			if (v->pgoff + (v->end - v->start) > shm[k].size)
				shm[k].size = v->pgoff + (v->end - v->start);
		}
	}
	for (size_t k = 0; k < n; k++) {
		int r = shm[k].id
		            ? shm_make(img, objs, dirfd, &shm[k], err)
		            : (shm[k].fd = cd_deleted_map_fd(img, objs, dirfd, shm[k].path, err));
		if (r < 0) {
			cd_mem_shm_free(shm, n);
			return r;
		}
	}
	*ret = shm;
	*ret_n = n;
	return 0;
}

void cd_mem_shm_free(struct cd_shm *shm, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (shm[i].fd >= 0)
			close(shm[i].fd);
	free(shm);
}

int cd_mem_self_vdso(uint64_t size[CD_VMA_KIND_MAX], cd_err *err)
{
	_cleanup_free_ struct cd_proc_map *maps = NULL;
	size_t n;
	int r = cd_proc_maps(getpid(), &maps, &n, err);

	if (r < 0)
		return r;
	memset(size, 0, CD_VMA_KIND_MAX * sizeof(size[0]));
	for (size_t i = 0; i < n; i++) {
		enum cd_vma_kind k;
		if (cd_vdso_kind(maps[i].path, &k))
			size[k] = maps[i].end - maps[i].start;
	}
	return 0;
}

int cd_mem_vdso_check(const struct cd_image *img, cd_err *err)
{
	static const char *const names[CD_VMA_KIND_MAX] = {[CD_VMA_VDSO] = "[vdso]",
	                                                   [CD_VMA_VVAR] = "[vvar]",
	                                                   [CD_VMA_VVAR_VCLOCK] = "[vvar_vclock]"};
	uint64_t self[CD_VMA_KIND_MAX];
	int r = cd_mem_self_vdso(self, err);

	if (r < 0)
		return r;
	for (int k = CD_VMA_VDSO; k < CD_VMA_VDSO_END; k++)
		if (self[k] != img->vdso_size[k])
			return cd_err_set(err, EINVAL,
			                  "incompatible kernel: %s is %" PRIu64
			                  " bytes here, %" PRIu64 " in the image (kernel %s)",
			                  names[k], self[k], img->vdso_size[k], img->kernel);
	return 0;
}
