/* Handing an open file of the controller to a task of the restore (an
 * object one task made that later tasks hold too): the task makes a
 * datagram pair, the controller sends the file over the task's end it took
 * (pidfd_getfd), the task receives it (recvmsg, SCM_RIGHTS). The unix socket
 * kind hands the ends of its pairs so (fd-unix.c), and every socket kind
 * reads a task's socket through cd_fd_copy_from's copy. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

int cd_fd_copy_from(pid_t pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), copy, e;

	if (pidfd < 0)
		return -errno;
	copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	e = errno;
	close(pidfd);
	return copy < 0 ? -e : copy;
}

/* What the task's recvmsg reads into, in its scratch area. */
struct pass_area {
	struct msghdr mh;
	struct iovec iov;
	char byte;
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl; /* last: struct cmsghdr ends with a flexible array */
};

static int send_fd(int chan, int fd, cd_err *err)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl = {0};
	char byte = 0;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr out = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = ctl.b,
	                     .msg_controllen = sizeof(ctl.b)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&out);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(chan, &out, MSG_DONTWAIT) != 1)
		return cd_err_sys(err, errno, "send the file to the task");
	return 0;
}

/* The task receives what was sent on its end ch; *ret its new fd. */
static int receive_in_task(struct cd_restore_ctx *ctx, int ch, int *ret, cd_err *err)
{
	uint64_t at = ctx->data + 64;
	struct pass_area m = {0};
	struct cmsghdr *c;
	int r;

	m.iov = (struct iovec){
	    .iov_base = (void *)(uintptr_t)(at + offsetof(struct pass_area, byte)), .iov_len = 1};
	m.mh = (struct msghdr){.msg_iov = (void *)(uintptr_t)(at + offsetof(struct pass_area, iov)),
	                       .msg_iovlen = 1,
	                       .msg_control =
	                           (void *)(uintptr_t)(at + offsetof(struct pass_area, ctl)),
	                       .msg_controllen = sizeof(m.ctl.b)};
	if ((r = cd_inject_write_mem(ctx->inj, at, &m, sizeof(m), err)) < 0 ||
	    (r = cd_call_ok(ctx->inj, "recvmsg", SYS_recvmsg, (uint64_t)ch, at,
	                    MSG_DONTWAIT | MSG_CMSG_CLOEXEC, 0, 0, 0, NULL, err)) < 0 ||
	    (r = cd_inject_read_mem(ctx->inj, at, &m, sizeof(m), err)) < 0)
		return r;
	/* the control data as the task got it, read at our copy's address */
	m.mh.msg_control = m.ctl.b;
	c = CMSG_FIRSTHDR(&m.mh);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return cd_err_set(err, EIO, "the task received no file");
	memcpy(ret, CMSG_DATA(c), sizeof(int));
	return 0;
}

int cd_fd_send_to_task(struct cd_restore_ctx *ctx, int fd, int *ret, cd_err *err)
{
	int ch[2], r;
	long ignored;

	if (64 + sizeof(struct pass_area) > ctx->data_len)
		return cd_err_set(err, E2BIG, "no room to receive a file");
	if ((r = cd_call_ok(ctx->inj, "socketpair", SYS_socketpair, AF_UNIX,
	                    SOCK_DGRAM | SOCK_CLOEXEC, 0, ctx->data, 0, 0, NULL, err)) < 0 ||
	    (r = cd_inject_read_mem(ctx->inj, ctx->data, ch, sizeof(ch), err)) < 0)
		return r;
	{
		_cleanup_close_ int chan = cd_fd_copy_from(cd_inject_pid(ctx->inj), ch[0]);
		r = chan < 0 ? cd_err_sys(err, -chan, "pidfd_getfd of the task's channel")
		             : send_fd(chan, fd, err);
	}
	if (r == 0)
		r = receive_in_task(ctx, ch[1], ret, err);
	cd_call(ctx->inj, SYS_close, (uint64_t)ch[0], 0, 0, 0, 0, 0, &ignored, err);
	cd_call(ctx->inj, SYS_close, (uint64_t)ch[1], 0, 0, 0, 0, 0, &ignored, err);
	return r;
}
