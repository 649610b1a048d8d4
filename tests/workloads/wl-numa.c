/* wl-numa [shared]: NUMA memory policies, all on node 0 (every NUMA machine has it).
 * Private anonymous pages get policies of their own with mbind: local, preferred, bind with
 * static nodes, interleave with relative nodes, preferred-many, weighted interleave (where
 * the kernel has it) and bind, the same as the task's (still the page's own); one page between
 * them keeps none. The main thread sets bind (set_mempolicy), a second thread preferred.
 * After the trigger get_mempolicy must give each page's policy (MPOL_F_ADDR: its own, default
 * for the page without), each thread's policy, and the pages must hold their data. With
 * "shared", a page of MAP_SHARED anonymous memory gets a policy too (refused at dump). */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "wl.h"

#define MPOL_DEFAULT             0
#define MPOL_PREFERRED           1
#define MPOL_BIND                2
#define MPOL_INTERLEAVE          3
#define MPOL_LOCAL               4
#define MPOL_PREFERRED_MANY      5
#define MPOL_WEIGHTED_INTERLEAVE 6
#define MPOL_F_STATIC_NODES      (1 << 15)
#define MPOL_F_RELATIVE_NODES    (1 << 14)
#define MPOL_F_ADDR              (1 << 1)

#define PG      4096
#define MAXNODE 1025 /* one more than the mask's 1024 bits */

struct pol {
	int mode; /* with its flags, as get_mempolicy gives it */
	unsigned long nodes[16];
};

/* The pages' policies, in page order; page 1 keeps none. */
static const int page_modes[] = {
    MPOL_LOCAL,
    MPOL_DEFAULT,
    MPOL_PREFERRED,
    MPOL_BIND | MPOL_F_STATIC_NODES,
    MPOL_INTERLEAVE | MPOL_F_RELATIVE_NODES,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
    MPOL_BIND,
};
#define NPAGES (sizeof(page_modes) / sizeof(page_modes[0]))

static char *pages;
static struct pol want[NPAGES];
static int thread_want = MPOL_PREFERRED;
static pthread_barrier_t start, check;
static char thread_fail[256];

static long get_policy(struct pol *p, void *addr, unsigned long flags)
{
	memset(p, 0, sizeof(*p));
	return syscall(SYS_get_mempolicy, &p->mode, p->nodes, MAXNODE, addr, flags);
}

static bool node0_only(const struct pol *p)
{
	for (size_t i = 1; i < 16; i++)
		if (p->nodes[i])
			return false;
	return p->nodes[0] == 1;
}

/* What get_mempolicy shows for mode set on node 0: no nodes for local and default. */
static struct pol expect(int mode)
{
	struct pol p = {.mode = mode};
	int base = mode & ~(MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES);

	if (base != MPOL_LOCAL && base != MPOL_DEFAULT)
		p.nodes[0] = 1;
	return p;
}

static bool same(const struct pol *a, const struct pol *b)
{
	return a->mode == b->mode && !memcmp(a->nodes, b->nodes, sizeof(a->nodes));
}

static void *thread_main(void *arg)
{
	unsigned long node0 = 1;
	struct pol got, w = expect(thread_want);

	(void)arg;
	if (syscall(SYS_set_mempolicy, thread_want, &node0, 2) < 0)
		snprintf(thread_fail, sizeof(thread_fail), "thread set_mempolicy: %s",
		         strerror(errno));
	pthread_barrier_wait(&start);
	pthread_barrier_wait(&check);
	if (!thread_fail[0] && get_policy(&got, NULL, 0) < 0)
		snprintf(thread_fail, sizeof(thread_fail), "thread get_mempolicy: %s",
		         strerror(errno));
	else if (!thread_fail[0] && !same(&got, &w))
		snprintf(thread_fail, sizeof(thread_fail),
		         "thread policy mode %#x nodes %#lx, want %#x on node 0", got.mode,
		         got.nodes[0], w.mode);
	return NULL;
}

static void set_page_policies(void)
{
	unsigned long node0 = 1;

	pages = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	for (size_t i = 0; i < NPAGES; i++) {
		char *page = pages + i * PG;
		int base = page_modes[i] & ~(MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES);
		want[i] = expect(page_modes[i]);
		if (page_modes[i] != MPOL_DEFAULT &&
		    syscall(SYS_mbind, page, PG, page_modes[i], base == MPOL_LOCAL ? NULL : &node0,
		            base == MPOL_LOCAL ? 0 : 2, 0) < 0) {
			/* weighted interleave came with Linux 6.9 */
			if (errno == EINVAL && base == MPOL_WEIGHTED_INTERLEAVE) {
				want[i] = expect(MPOL_DEFAULT);
				continue;
			}
			wl_fail("mbind page %zu mode %#x: %s", i, page_modes[i], strerror(errno));
		}
		memset(page, 'a' + (int)i, PG);
	}
}

static void check_pages(void)
{
	struct pol got;

	for (size_t i = 0; i < NPAGES; i++) {
		char *page = pages + i * PG;
		if (get_policy(&got, page, MPOL_F_ADDR) < 0)
			wl_fail("get_mempolicy page %zu: %s", i, strerror(errno));
		if (!same(&got, &want[i]))
			wl_fail("page %zu: policy mode %#x nodes %#lx, want mode %#x nodes %#lx", i,
			        got.mode, got.nodes[0], want[i].mode, want[i].nodes[0]);
		for (size_t k = 0; k < PG; k++)
			if (page[k] != 'a' + (int)i)
				wl_fail("page %zu: byte %zu changed", i, k);
	}
}

/* A policy on shared memory belongs to the shmem object (refused at dump). */
static void shared_policy(void)
{
	unsigned long node0 = 1;
	char *shm = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (shm == MAP_FAILED)
		wl_fail("mmap shared: %s", strerror(errno));
	if (syscall(SYS_mbind, shm, PG, MPOL_BIND, &node0, 2, 0) < 0)
		wl_fail("mbind shared: %s", strerror(errno));
	shm[0] = 1;
}

int main(int argc, char **argv)
{
	unsigned long node0 = 1;
	struct pol got, task_want = expect(MPOL_BIND);
	pthread_t th;

	wl_init("wl-numa");
	set_page_policies();
	if (argc > 1 && !strcmp(argv[1], "shared"))
		shared_policy();
	else if (argc > 1)
		wl_fail("unknown mode %s", argv[1]);
	if (pthread_barrier_init(&start, NULL, 2) || pthread_barrier_init(&check, NULL, 2) ||
	    pthread_create(&th, NULL, thread_main, NULL))
		wl_fail("pthread setup failed");
	pthread_barrier_wait(&start);
	if (syscall(SYS_set_mempolicy, MPOL_BIND, &node0, 2) < 0)
		wl_fail("set_mempolicy: %s", strerror(errno));
	wl_ready();
	wl_await_trigger();
	if (get_policy(&got, NULL, 0) < 0)
		wl_fail("get_mempolicy: %s", strerror(errno));
	if (!same(&got, &task_want) || !node0_only(&got))
		wl_fail("task policy mode %#x nodes %#lx, want bind on node 0", got.mode,
		        got.nodes[0]);
	check_pages();
	pthread_barrier_wait(&check);
	pthread_join(th, NULL);
	if (thread_fail[0])
		wl_fail("%s", thread_fail);
	wl_pass();
}
