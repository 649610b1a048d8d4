/* The kinds of fd and the order in which the dump asks them whether they
 * take an fd: the one place to register a new kind (its file holds a
 * struct cd_fd_ops with a dump half and a restore half; see internal.h). */
#include "engine/internal.h"
#include "shared/cleanup.h"

/* /proc files of the tree before the rest (they are regular files or
 * directories too), memfds and deleted files before regular files (they
 * are regular files too, of no path), and O_PATH before any kind of object: it opens none. */
const struct cd_fd_ops *const cd_fd_kinds[] = {
    &cd_fd_ops_proc,    &cd_fd_ops_path,  &cd_fd_ops_memfd,   &cd_fd_ops_deleted,
    &cd_fd_ops_reg,     &cd_fd_ops_dir,   &cd_fd_ops_chr,     &cd_fd_ops_fifo,
    &cd_fd_ops_pipe,    &cd_fd_ops_stdio, &cd_fd_ops_eventfd, &cd_fd_ops_signalfd,
    &cd_fd_ops_timerfd, &cd_fd_ops_epoll, &cd_fd_ops_inotify, &cd_fd_ops_unix,
    &cd_fd_ops_netlink, &cd_fd_ops_inet,  &cd_fd_ops_pidfd,
};
const size_t cd_fd_kinds_n = ARRAY_SIZE(cd_fd_kinds);

const struct cd_fd_ops *cd_fd_ops_of(enum cd_fd_kind kind)
{
	for (size_t i = 0; i < cd_fd_kinds_n; i++)
		if (cd_fd_kinds[i]->kind == kind)
			return cd_fd_kinds[i];
	return NULL;
}
