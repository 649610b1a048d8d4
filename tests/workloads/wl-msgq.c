/* wl-msgq: SysV message queues held by a tree of two processes:
 *   a  private, mode 0620: messages of types 1, 2, 7, 3 (one empty, one of
 *      binary bytes, one of 2000 bytes), then msg_qbytes lowered below what
 *      it holds (3000);
 *   b  with a key: the child waits in msgrcv for type 9 on it and answers
 *      with type 10;
 *   c  private, used (a message sent and received), empty.
 * Each id goes to "<trigger>.ipc" ("q ID" lines) for the harness.
 * After the trigger: ids, keys, modes, msg_qbytes as before; a holds its
 * messages in order with their types (type 7 first when asked for it), c
 * none; a message of type 9 on b gets the child's answer; then the queues
 * are removed. */
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>

#include "wl.h"

#define BIG 2000

struct msg {
	long mtype;
	char text[BIG];
};

struct q {
	const char *name;
	key_t key;
	int id, mode;
};

static const struct {
	long type;
	size_t len;
} a_msgs[] = {{1, 5}, {2, 0}, {7, 16}, {3, BIG}};

static void fill(struct msg *m, size_t i)
{
	m->mtype = a_msgs[i].type;
	for (size_t k = 0; k < a_msgs[i].len; k++)
		m->text[k] = (char)(k * 7 + i * 13 + (k % 3 ? 0 : 0x80));
}

static void make(struct q *q, FILE *ipc)
{
	q->id = msgget(q->key, IPC_CREAT | IPC_EXCL | q->mode);
	if (q->id < 0)
		wl_fail("msgget %s: %s", q->name, strerror(errno));
	fprintf(ipc, "q %d\n", q->id);
	fflush(ipc);
}

static void send(const struct q *q, const struct msg *m, size_t len)
{
	if (msgsnd(q->id, m, len, IPC_NOWAIT) < 0)
		wl_fail("msgsnd %s: %s", q->name, strerror(errno));
}

static int child(void *arg)
{
	const struct q *b = arg;
	struct msg m;

	/* waits across the checkpoint */
	while (msgrcv(b->id, &m, sizeof(m.text), 9, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "child: msgrcv: %s\n", strerror(errno));
			return 1;
		}
	m.mtype = 10;
	return msgsnd(b->id, &m, 4, 0) < 0;
}

static void check_stat(const struct q *q, unsigned long qnum, unsigned long qbytes)
{
	struct msqid_ds ds;

	if (msgctl(q->id, IPC_STAT, &ds) < 0)
		wl_fail("%s: IPC_STAT id %d: %s", q->name, q->id, strerror(errno));
	if ((int)(ds.msg_perm.mode & 0777) != q->mode || ds.msg_perm.__key != q->key)
		wl_fail("%s: mode %o key %#x, want %o %#x", q->name, ds.msg_perm.mode & 0777,
		        ds.msg_perm.__key, q->mode, q->key);
	if (ds.msg_qnum != qnum || (qbytes && ds.msg_qbytes != qbytes))
		wl_fail("%s: %lu messages, qbytes %lu, want %lu, %lu", q->name,
		        (unsigned long)ds.msg_qnum, (unsigned long)ds.msg_qbytes, qnum, qbytes);
	if (q->key != IPC_PRIVATE && msgget(q->key, 0) != q->id)
		wl_fail("%s: key %#x finds id %d, want %d", q->name, q->key, msgget(q->key, 0),
		        q->id);
}

static void expect(const struct q *q, long type, size_t i)
{
	struct msg got, want;
	ssize_t n = msgrcv(q->id, &got, sizeof(got.text), type, IPC_NOWAIT);

	fill(&want, i);
	if (n < 0)
		wl_fail("%s: msgrcv type %ld: %s", q->name, type, strerror(errno));
	if (got.mtype != want.mtype || (size_t)n != a_msgs[i].len ||
	    memcmp(got.text, want.text, a_msgs[i].len))
		wl_fail(
		    "%s: message of type %ld, %zd bytes, want message %zu (type %ld, %zu bytes)",
		    q->name, got.mtype, n, i, want.mtype, a_msgs[i].len);
}

int main(void)
{
	key_t key = (key_t)(0x6d000000 | (getpid() & 0xffffff) << 2);
	struct q a = {"a", IPC_PRIVATE, -1, 0620}, b = {"b", key, -1, 0600},
	         c = {"c", IPC_PRIVATE, -1, 0600};
	struct msg m;
	struct msqid_ds ds;

	wl_init("wl-msgq");
	FILE *ipc = fopen(wl_side_path(".ipc"), "we");
	if (!ipc)
		wl_fail("open side file: %s", strerror(errno));
	make(&a, ipc);
	make(&b, ipc);
	make(&c, ipc);
	fclose(ipc);
	for (size_t i = 0; i < 4; i++) {
		fill(&m, i);
		send(&a, &m, a_msgs[i].len);
	}
	if (msgctl(a.id, IPC_STAT, &ds) < 0)
		wl_fail("IPC_STAT a: %s", strerror(errno));
	ds.msg_qbytes = 3000;
	if (msgctl(a.id, IPC_SET, &ds) < 0)
		wl_fail("IPC_SET a: %s", strerror(errno));
	m.mtype = 5;
	send(&c, &m, 1);
	if (msgrcv(c.id, &m, sizeof(m.text), 0, IPC_NOWAIT) != 1)
		wl_fail("msgrcv c: %s", strerror(errno));
	pid_t kid = wl_spawn(child, &b);
	if (!wl_wait_blocked(kid, SYS_msgrcv, -1))
		wl_fail("the child did not block in msgrcv");
	wl_ready();
	wl_await_trigger();

	check_stat(&a, 4, 3000);
	check_stat(&b, 0, 0);
	check_stat(&c, 0, 0);
	expect(&a, 7, 2);
	expect(&a, 0, 0);
	expect(&a, 0, 1);
	expect(&a, 0, 3);
	m.mtype = 9;
	memcpy(m.text, "ping", 4);
	send(&b, &m, 4);
	wl_expect_exit(kid, 0);
	if (msgrcv(b.id, &m, sizeof(m.text), 10, IPC_NOWAIT) != 4 || memcmp(m.text, "ping", 4))
		wl_fail("b: no answer of type 10 from the child");
	msgctl(a.id, IPC_RMID, NULL);
	msgctl(b.id, IPC_RMID, NULL);
	msgctl(c.id, IPC_RMID, NULL);
	wl_pass();
}
