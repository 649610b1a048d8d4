/* SysV message queues (see sysv-ipc.c). Used by the tree: its last msgsnd
 * or msgrcv pid (msg_lspid, msg_lrpid) is a task of the tree, or a thread
 * of the tree waits in msgrcv or msgsnd on it; a queue the tree made and
 * never used is not seen. Taken: key, id, mode, owner,
 * msg_qbytes and every message in order with its type, read without
 * taking it (msgrcv MSG_COPY, which needs CONFIG_CHECKPOINT_RESTORE: a
 * kernel without it refuses the dump by name). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

#define KEY(k) ((unsigned long)(uint32_t)(k))

static int msg_lookup(int32_t key)
{
	return msgget(key, 0);
}

static int msg_stat(int id)
{
	struct msqid_ds ds;

	return msgctl(id, IPC_STAT, &ds);
}

static int msg_rmid(int id)
{
	return msgctl(id, IPC_RMID, NULL);
}

static int msg_make_any(void)
{
	return msgget(IPC_PRIVATE, 0600);
}

const struct cd_sysv_kind cd_sysv_msg_kind = {
    .what = "message queue",
    .table = "/proc/sysvipc/msg",
    .next_id = "/proc/sys/kernel/msg_next_id",
    .lookup = msg_lookup,
    .stat = msg_stat,
    .rmid = msg_rmid,
    .make_any = msg_make_any,
};

/* ---- dump ---- */

struct msgbuf_any {
	long mtype;
	char mtext[];
};

/* Message i of the queue, copied (MSG_COPY leaves it, and the queue's pids
 * and times, as they were). buf holds any message (max bytes of text). */
static int copy_msg(const struct cd_sysv_msq *q, size_t i, struct msgbuf_any *buf, size_t max,
                    struct cd_sysv_msg *m, cd_err *err)
{
	ssize_t n = msgrcv(q->id, buf, max, (long)i, IPC_NOWAIT | MSG_COPY);

	if (n < 0 && errno == ENOSYS)
		return cd_err_set(err, EOPNOTSUPP,
		                  "SysV message queue (key 0x%08lx, id %d) used by the tree: its "
		                  "messages cannot be read without taking them (msgrcv MSG_COPY "
		                  "needs a kernel with CONFIG_CHECKPOINT_RESTORE)",
		                  KEY(q->key), q->id);
	if (n < 0)
		return cd_err_sys(err, errno,
		                  "SysV message queue (key 0x%08lx, id %d): copy message %zu",
		                  KEY(q->key), q->id, i);
	m->mtype = buf->mtype;
	m->len = (size_t)n;
	m->data = malloc(m->len + 1);
	if (!m->data)
		return cd_err_set(err, ENOMEM, "out of memory");
	memcpy(m->data, buf->mtext, m->len);
	return 0;
}

static int copy_msgs(struct cd_sysv_msq *q, size_t qnum, size_t cbytes, cd_err *err)
{
	_cleanup_free_ struct msgbuf_any *buf = malloc(sizeof(*buf) + cbytes + 1);

	q->msgs = calloc(qnum + 1, sizeof(*q->msgs));
	if (!buf || !q->msgs)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < qnum; i++) {
		int r = copy_msg(q, i, buf, cbytes, &q->msgs[i], err);
		if (r < 0)
			return r;
		q->nmsgs++;
	}
	return 0;
}

static int msq_used(const struct cd_image *img, int id, struct cd_sysv_msq *q, bool *ret,
                    cd_err *err)
{
	struct msqid_ds ds;
	bool waited;
	int r;

	*ret = false;
	if (msgctl(id, IPC_STAT, &ds) < 0)
		return errno == EINVAL || errno == EIDRM
		           ? 0 /* gone meanwhile */
		           : cd_err_sys(err, errno, "SysV message queue id %d: IPC_STAT", id);
	if ((r = cd_sysv_waited_on(img, SYS_msgrcv, SYS_msgsnd, id, &waited, err)) < 0)
		return r;
	if (!waited && !cd_sysv_in_tree(img, ds.msg_lspid) && !cd_sysv_in_tree(img, ds.msg_lrpid))
		return 0;
	if (ds.__msg_cbytes > CD_SYSV_MSG_MAX || ds.msg_qnum > CD_SYSV_MSGS)
		return cd_err_set(err, EOPNOTSUPP,
		                  "SysV message queue (key 0x%08lx, id %d) used by the tree: %lu "
		                  "messages of %lu bytes, more than an image holds (%u, %u bytes)",
		                  KEY(ds.msg_perm.__key), id, (unsigned long)ds.msg_qnum,
		                  (unsigned long)ds.__msg_cbytes, CD_SYSV_MSGS, CD_SYSV_MSG_MAX);
	*q = (struct cd_sysv_msq){
	    .key = ds.msg_perm.__key,
	    .id = id,
	    .mode = ds.msg_perm.mode & 0777,
	    .uid = ds.msg_perm.uid,
	    .gid = ds.msg_perm.gid,
	    .qbytes = ds.msg_qbytes,
	};
	*ret = true;
	return copy_msgs(q, ds.msg_qnum, ds.__msg_cbytes, err);
}

int cd_sysv_msg_dump(struct cd_image *img, cd_err *err)
{
	_cleanup_free_ int *ids = NULL;
	size_t n;
	int r = cd_sysv_list_ids(&cd_sysv_msg_kind, &ids, &n, err);

	if (r < 0)
		return r;
	img->sysv_msq = calloc(n + 1, sizeof(*img->sysv_msq));
	if (!img->sysv_msq)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		bool used;
		r = msq_used(img, ids[i], &img->sysv_msq[img->nsysv_msq], &used, err);
		if (used)
			img->nsysv_msq++; /* counted even when refused: freed with the image */
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- restore ---- */

static int make(const void *arg)
{
	const struct cd_sysv_msq *q = arg;

	return msgget(q->key, IPC_CREAT | IPC_EXCL | (int)q->mode);
}

static int set_attrs(const struct cd_sysv_msq *q, uint64_t qbytes, cd_err *err)
{
	struct msqid_ds ds = {0};

	ds.msg_perm.uid = q->uid;
	ds.msg_perm.gid = q->gid;
	ds.msg_perm.mode = (unsigned short)q->mode;
	ds.msg_qbytes = qbytes;
	if (msgctl(q->id, IPC_SET, &ds) < 0)
		return cd_err_sys(err, errno, "IPC_SET");
	return 0;
}

/* An empty message sent and received, so that the queue records its maker
 * (the root's pid, sysv-ipc.c) as its last sender and receiver even when
 * it holds no message. */
static int touch(const struct cd_sysv_msq *q, cd_err *err)
{
	struct msgbuf_any m = {.mtype = 1};

	if (msgsnd(q->id, &m, 0, IPC_NOWAIT) < 0 || msgrcv(q->id, &m, 0, 0, IPC_NOWAIT) < 0)
		return cd_err_sys(err, errno, "msgsnd/msgrcv of an empty message");
	return 0;
}

/* The messages are sent again in order; the queue holds them all while
 * they are (its msg_qbytes, which bounds both the bytes and the number of
 * messages, may have been lowered below what it held), then gets its own
 * msg_qbytes. */
static int send_msgs(const struct cd_sysv_msq *q, cd_err *err)
{
	size_t total = 0, max = 0;
	int r;

	for (size_t i = 0; i < q->nmsgs; i++) {
		total += q->msgs[i].len;
		max = q->msgs[i].len > max ? q->msgs[i].len : max;
	}
	_cleanup_free_ struct msgbuf_any *buf = malloc(sizeof(*buf) + max + 1);
	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	uint64_t need = total > q->nmsgs ? total : q->nmsgs;
	if ((r = set_attrs(q, need > q->qbytes ? need : q->qbytes, err)) < 0)
		return r;
	for (size_t i = 0; i < q->nmsgs; i++) {
		buf->mtype = q->msgs[i].mtype;
		memcpy(buf->mtext, q->msgs[i].data, q->msgs[i].len);
		if (msgsnd(q->id, buf, q->msgs[i].len, IPC_NOWAIT) < 0)
			return cd_err_sys(err, errno, "msgsnd message %zu (%zu bytes)", i,
			                  q->msgs[i].len);
	}
	return 0;
}

int cd_sysv_msg_restore(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->nsysv_msq; i++) {
		const struct cd_sysv_msq *q = &img->sysv_msq[i];
		int r = cd_sysv_create(&cd_sysv_msg_kind, q->id, make, q, err);
		if (r >= 0)
			r = touch(q, err);
		if (r >= 0)
			r = send_msgs(q, err);
		if (r >= 0)
			r = set_attrs(q, q->qbytes, err);
		if (r < 0)
			return cd_err_wrap(err, "SysV message queue (key 0x%08lx, id %d)",
			                   KEY(q->key), q->id);
	}
	return 0;
}
