/* wl-shm: SysV shared memory segments held by a tree of two processes:
 *   a  private, 3 pages + 100 bytes, mode 0640: pages 0 and 2 filled, page 1
 *      zero; attached read-write by the parent (page 1 then mprotect'ed
 *      read-only, so the attachment is three mappings) and by a child,
 *      which counts in it and echoes a token the parent writes;
 *   b  with a key, mode 0604, filled, attached SHM_RDONLY;
 *   c  with a key, filled, created and never attached;
 *   d  private, filled, attached and then IPC_RMID'ed (marked removed).
 * Each id goes to "<trigger>.ipc" ("m ID" lines) for the harness.
 * After the trigger: ids, keys, modes, sizes and the removed mark as
 * before, contents the same, the attachments at their addresses with their
 * protections, the child still counting in a and answering through it;
 * then every segment is removed. */
#include <inttypes.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "wl.h"

#define PAGE   4096
#define A_SIZE (3 * PAGE + 100)
#define B_SIZE (2 * PAGE)
#define C_SIZE (PAGE + 8)
#define D_SIZE PAGE

/* a's page 0: the child's counter, the token, its echo, the stop flag; then data */
struct ctl {
	volatile uint64_t count, token, echo, stop;
};
#define A_DATA 64

struct seg {
	const char *name;
	key_t key;
	int id;
	size_t size;
	int mode;
	uint64_t seed, hash;
	char *at;
};

static uint64_t seg_hash(const struct seg *s, const char *p)
{
	/* a's first bytes change (the child's counter) */
	size_t skip = s->name[0] == 'a' ? A_DATA : 0;

	return wl_hash(p + skip, s->size - skip);
}

static void make(struct seg *s, FILE *ipc)
{
	s->id = shmget(s->key, s->size, IPC_CREAT | IPC_EXCL | s->mode);
	if (s->id < 0)
		wl_fail("shmget %s: %s", s->name, strerror(errno));
	fprintf(ipc, "m %d\n", s->id);
	fflush(ipc);
	char *p = shmat(s->id, NULL, 0);
	if (p == (void *)-1)
		wl_fail("shmat %s: %s", s->name, strerror(errno));
	wl_fill(p, s->size & ~(size_t)7, s->seed);
	for (size_t i = s->size & ~(size_t)7; i < s->size; i++)
		p[i] = (char)(i * 31 + s->seed);
	if (s->name[0] == 'a') {
		memset(p, 0, A_DATA);
		memset(p + PAGE, 0, PAGE); /* page 1 stays zero */
	}
	s->hash = seg_hash(s, p);
	if (shmdt(p) < 0)
		wl_fail("shmdt %s: %s", s->name, strerror(errno));
}

static void attach(struct seg *s, int flags)
{
	s->at = shmat(s->id, NULL, flags);
	if (s->at == (void *)-1)
		wl_fail("shmat %s: %s", s->name, strerror(errno));
}

static int child(void *arg)
{
	struct ctl *c = arg;

	while (!c->stop) {
		c->count++;
		c->echo = c->token;
		wl_nap_ms(5);
	}
	return 0;
}

static void check_stat(const struct seg *s, bool removed)
{
	struct shmid_ds ds;

	if (shmctl(s->id, IPC_STAT, &ds) < 0)
		wl_fail("%s: IPC_STAT id %d: %s", s->name, s->id, strerror(errno));
	if ((int)(ds.shm_perm.mode & 0777) != s->mode || ds.shm_segsz != s->size)
		wl_fail("%s: mode %o size %zu, want %o %zu", s->name, ds.shm_perm.mode & 0777,
		        (size_t)ds.shm_segsz, s->mode, s->size);
	if (!!(ds.shm_perm.mode & SHM_DEST) != removed)
		wl_fail("%s: removed mark %d, want %d", s->name, !removed, removed);
	if (!removed && ds.shm_perm.__key != s->key)
		wl_fail("%s: key %#x, want %#x", s->name, ds.shm_perm.__key, s->key);
	if (s->key != IPC_PRIVATE && shmget(s->key, 0, 0) != s->id)
		wl_fail("%s: key %#x finds id %d, want %d", s->name, s->key, shmget(s->key, 0, 0),
		        s->id);
}

static void check_prot(const char *name, const void *at, const char *want)
{
	char line[128], flags[16];

	if (!wl_mapping(at, "", line, sizeof(line), flags, sizeof(flags)))
		wl_fail("%s: no mapping at %p", name, at);
	if (!strstr(line, want))
		wl_fail("%s: mapping %s, want %s", name, line, want);
}

static void check_content(const struct seg *s)
{
	char *p = s->at;
	int r = 0;

	if (!p) {
		attach((struct seg *)s, SHM_RDONLY);
		p = s->at;
		r = 1;
	}
	if (seg_hash(s, p) != s->hash)
		wl_fail("%s: contents changed", s->name);
	if (r) {
		shmdt(p);
		((struct seg *)s)->at = NULL;
	}
}

int main(void)
{
	key_t base = (key_t)(0x5e000000 | (getpid() & 0xffffff) << 2);
	struct seg a = {"a", IPC_PRIVATE, -1, A_SIZE, 0640, 1, 0, NULL};
	struct seg b = {"b", base + 1, -1, B_SIZE, 0604, 2, 0, NULL};
	struct seg c = {"c", base + 2, -1, C_SIZE, 0600, 3, 0, NULL};
	struct seg d = {"d", IPC_PRIVATE, -1, D_SIZE, 0600, 4, 0, NULL};
	struct seg *all[] = {&a, &b, &c, &d};

	wl_init("wl-shm");
	FILE *ipc = fopen(wl_side_path(".ipc"), "we");
	if (!ipc)
		wl_fail("open side file: %s", strerror(errno));
	for (size_t i = 0; i < 4; i++)
		make(all[i], ipc);
	fclose(ipc);
	attach(&a, 0);
	attach(&b, SHM_RDONLY);
	attach(&d, 0);
	if (shmctl(d.id, IPC_RMID, NULL) < 0)
		wl_fail("IPC_RMID d: %s", strerror(errno));
	if (mprotect(a.at + PAGE, PAGE, PROT_READ) < 0)
		wl_fail("mprotect a: %s", strerror(errno));
	struct ctl *ctl = (struct ctl *)a.at;
	pid_t kid = wl_spawn(child, ctl);
	while (ctl->count < 3)
		wl_nap_ms(5);
	wl_ready();
	wl_await_trigger();

	check_stat(&a, false);
	check_stat(&b, false);
	check_stat(&c, false);
	check_stat(&d, true);
	for (size_t i = 0; i < 4; i++)
		check_content(all[i]);
	check_prot("a page 0", a.at, "rw-s 0");
	check_prot("a page 1", a.at + PAGE, "r--s 1000");
	check_prot("a page 2", a.at + 2 * PAGE, "rw-s 2000");
	check_prot("b", b.at, "r--s");
	/* the child still counts in a, and sees what the parent writes there */
	uint64_t n = ctl->count;
	ctl->token = 0x5ca1ab1e;
	for (int i = 0; i < 400 && (ctl->echo != 0x5ca1ab1e || ctl->count < n + 3); i++)
		wl_nap_ms(5);
	if (ctl->echo != 0x5ca1ab1e || ctl->count < n + 3)
		wl_fail("child: count %" PRIu64 " (was %" PRIu64 "), echo %#" PRIx64
		        ": not sharing a",
		        ctl->count, n, ctl->echo);
	ctl->stop = 1;
	wl_expect_exit(kid, 0);
	for (size_t i = 0; i < 3; i++)
		shmctl(all[i]->id, IPC_RMID, NULL);
	wl_pass();
}
