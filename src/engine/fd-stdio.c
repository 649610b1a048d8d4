/* The root's stdio as the restore caller's (kind CD_FD_STDIO), and the std
 * slots of every fd. Dump: the root's fd N is slot N, another fd sharing
 * the open file of root fds 0-2 takes the lowest of them; a slot the dump
 * caller marks external (or one sharing its open file with one marked) is
 * not the image's: ids 0..2, nothing else recorded. Restore: the caller
 * gives an fd for each external slot, and may replace a slot recorded as an
 * object (cd_stdio_plan_make decides which). */
#include <errno.h>
#include <stdbool.h>

#include "engine/internal.h"

/* Whether the root's fd s is external stdio: the caller said so, or it
 * shares its open file with one the caller said so of (one terminal on
 * fds 0-2 is all external or none). */
int cd_fd_external_slot(const struct cd_image *img, unsigned mask, int s, bool *ret, cd_err *err)
{
	int r;

	*ret = false;
	for (int o = 0; o < 3 && !*ret; o++) {
		if (!(mask & (1u << o)))
			continue;
		*ret = o == s;
		if (!*ret && (r = cd_fd_same_file(img->root, o, img->root, s, ret, err)) < 0)
			return r;
	}
	return 0;
}

/* The std slot of pid's fd: even when fds 0-2 are one open file (a
 * terminal, a log opened once and dup'ed), the root's fd N is slot N, so a
 * replacement of stdout never lands on stdin. */
int cd_fd_std_slot(const struct cd_image *img, const struct cd_task *t, int fd, int *ret,
                   cd_err *err)
{
	bool same;
	int r;

	*ret = -1;
	if (t->pid == img->root && fd < 3) {
		*ret = fd;
		return 0;
	}
	for (int s = 0; s < 3; s++) {
		if ((r = cd_fd_same_file(img->root, s, t->pid, fd, &same, err)) < 0)
			return r;
		if (same) {
			*ret = s;
			return 0;
		}
	}
	return 0;
}

/* Slot s of the root, recorded as a terminal: under --shell-job that is the
 * shell's terminal, which the restore replaces with the caller's. */
static bool slot_is_terminal(const struct cd_image *img, int s)
{
	const struct cd_task *root = cd_image_task((struct cd_image *)img, img->root);

	for (size_t j = 0; root && j < root->nfds; j++)
		if (root->fds[j].fd == s)
			return cd_fd_is_terminal(&root->fds[j]);
	return false;
}

/* The one place that decides which std slot is replaced and by what. */
void cd_stdio_plan_make(const struct cd_image *img, const struct cd_restore_opts *opts,
                        struct cd_stdio_plan *ret)
{
	for (int s = 0; s < 3; s++) {
		int given = opts->stdio_fd[s], own = given >= 0 ? given : s;
		/* before version 4 every slot was the caller's */
		if (opts->version < 4) {
			ret->obj[s] = ret->ext[s] = own;
			continue;
		}
		ret->ext[s] = own;
		if (img->shell_job && slot_is_terminal(img, s))
			ret->obj[s] = own;
		else
			ret->obj[s] = (opts->stdio_external_only & (1u << s)) ? -1 : given;
	}
}

int cd_stdio_replacement(const struct cd_stdio_plan *plan, const struct cd_fd *d)
{
	if (d->std < 0)
		return -1;
	return d->kind == CD_FD_STDIO ? plan->ext[d->std] : plan->obj[d->std];
}

/* An external slot is its own object: obj is the slot. */
static int stdio_check(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                       cd_err *err)
{
	if (d->std != d->obj)
		return cd_err_set(
		    err, EINVAL, "pid %d: fd %d: field \"std\": %d is not obj %d of external stdio",
		    t->pid, d->fd, d->std, d->obj);
	return 0;
}

/* Chosen by its slot before any kind is asked (files.c); the restore
 * installs the caller's fd (plan.ext). */
const struct cd_fd_ops cd_fd_ops_stdio = {
    .kind = CD_FD_STDIO, .name = "stdio", .external = true, .check = stdio_check};
