/* wl-sem: SysV semaphore sets held by a tree of two processes:
 *   a  private, mode 0640, three semaphores at 0, 5 and 32767 (SEMVMX),
 *      semop'ed (sem_otime set);
 *   b  with a key, one semaphore the child keeps counting up (semop);
 *   c  private, two semaphores set with SETALL only (sem_otime 0).
 * Each id goes to "<trigger>.ipc" ("s ID" lines) for the harness.
 * After the trigger: ids, keys, modes, sizes and values as before, a's
 * sem_otime set and c's not, the child still counting on b; then the sets
 * are removed. */
#include <sys/ipc.h>
#include <sys/sem.h>

#include "wl.h"

struct set {
	const char *name;
	key_t key;
	int id, mode, nsems;
};

static void make(struct set *s, FILE *ipc)
{
	s->id = semget(s->key, s->nsems, IPC_CREAT | IPC_EXCL | s->mode);
	if (s->id < 0)
		wl_fail("semget %s: %s", s->name, strerror(errno));
	fprintf(ipc, "s %d\n", s->id);
	fflush(ipc);
}

static void op(const struct set *s, unsigned short num, short delta)
{
	struct sembuf b = {num, delta, IPC_NOWAIT};

	if (semop(s->id, &b, 1) < 0)
		wl_fail("semop %s: %s", s->name, strerror(errno));
}

static int child(void *arg)
{
	const struct set *b = arg;
	struct sembuf up = {0, 1, 0};

	for (;;) {
		if (semop(b->id, &up, 1) < 0)
			return errno == EIDRM || errno == EINVAL ? 0 : 1;
		wl_nap_ms(5);
	}
}

static void check(const struct set *s, const unsigned short *want, bool operated)
{
	struct semid_ds ds;
	unsigned short vals[3];

	if (semctl(s->id, 0, IPC_STAT, &ds) < 0)
		wl_fail("%s: IPC_STAT id %d: %s", s->name, s->id, strerror(errno));
	if ((int)(ds.sem_perm.mode & 0777) != s->mode || ds.sem_perm.__key != s->key ||
	    (int)ds.sem_nsems != s->nsems)
		wl_fail("%s: mode %o key %#x nsems %lu, want %o %#x %d", s->name,
		        ds.sem_perm.mode & 0777, ds.sem_perm.__key, (unsigned long)ds.sem_nsems,
		        s->mode, s->key, s->nsems);
	if ((ds.sem_otime != 0) != operated)
		wl_fail("%s: sem_otime %ld, want %s", s->name, (long)ds.sem_otime,
		        operated ? "set" : "0");
	if (s->key != IPC_PRIVATE && semget(s->key, 0, 0) != s->id)
		wl_fail("%s: key %#x finds id %d, want %d", s->name, s->key, semget(s->key, 0, 0),
		        s->id);
	if (!want)
		return;
	if (semctl(s->id, 0, GETALL, vals) < 0)
		wl_fail("%s: GETALL: %s", s->name, strerror(errno));
	for (int i = 0; i < s->nsems; i++)
		if (vals[i] != want[i])
			wl_fail("%s: semaphore %d is %u, want %u", s->name, i, vals[i], want[i]);
}

int main(void)
{
	key_t key = (key_t)(0x73000000 | (getpid() & 0xffffff) << 2);
	struct set a = {"a", IPC_PRIVATE, -1, 0640, 3}, b = {"b", key, -1, 0600, 1},
	           c = {"c", IPC_PRIVATE, -1, 0600, 2};
	unsigned short a_vals[3] = {0, 5, 32767}, c_vals[2] = {3, 4};

	wl_init("wl-sem");
	FILE *ipc = fopen(wl_side_path(".ipc"), "we");
	if (!ipc)
		wl_fail("open side file: %s", strerror(errno));
	make(&a, ipc);
	make(&b, ipc);
	make(&c, ipc);
	fclose(ipc);
	op(&a, 1, 5);
	op(&a, 2, 32767);
	if (semctl(c.id, 0, SETALL, c_vals) < 0)
		wl_fail("SETALL c: %s", strerror(errno));
	pid_t kid = wl_spawn(child, &b);
	while (semctl(b.id, 0, GETVAL) < 3)
		wl_nap_ms(5);
	wl_ready();
	wl_await_trigger();

	check(&a, a_vals, true);
	check(&b, NULL, true);
	check(&c, c_vals, false);
	int n = semctl(b.id, 0, GETVAL);
	for (int i = 0; i < 400 && semctl(b.id, 0, GETVAL) < n + 3; i++)
		wl_nap_ms(5);
	if (semctl(b.id, 0, GETVAL) < n + 3)
		wl_fail("b: the child no longer counts (%d, was %d)", semctl(b.id, 0, GETVAL), n);
	semctl(b.id, 0, IPC_RMID);
	wl_expect_exit(kid, 0);
	semctl(a.id, 0, IPC_RMID);
	semctl(c.id, 0, IPC_RMID);
	wl_pass();
}
