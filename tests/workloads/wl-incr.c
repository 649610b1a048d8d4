/* wl-incr [MiB [solo]]: memory that changes between two checkpoints, for incremental dumps.
 *  - MiB (default 64) of seeded random pages;
 *  - each SIGUSR1 starts a new generation g (1, 2, …): it rewrites every page i with
 *    i % 20 == g % 20 (5% of them) with data seeded by (g, i), drops page 20 * g + 7 with
 *    MADV_DONTNEED (it reads zero from then on), maps a new 1 MiB region of its own, and in
 *    generation 1 (unless "solo") forks a child that keeps the memory it shares copy-on-write and
 * writes 1 MiB of its own; then it prints "CHANGED g";
 *  - after the trigger every page must hold what the generations wrote, nothing else, the
 *    process must hold no anonymous-inode fd (a userfaultfd left behind by the tracking would
 *    be one; it opens none itself) and no signal other than the generations' SIGUSR1 may have
 *    arrived. Other fds it did not have at READY are listed on stderr. */
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>

#include "wl.h"

#define SEED_BASE  0x1ec0000000ULL
#define SEED_GEN   0x1ec1000000ULL
#define SEED_NEW   0x1ec2000000ULL
#define SEED_CHILD 0x1ec3000000ULL
#define PAGE       4096UL
#define NEW_BYTES  (1UL << 20)
#define MAX_GEN    8

static unsigned char *mem;
static size_t npages;
static unsigned char *fresh[MAX_GEN + 1];
static volatile sig_atomic_t requested, stray;
static unsigned gen;
static pid_t child;
static bool solo;

static void on_usr1(int sig)
{
	(void)sig;
	requested++;
}

static void on_stray(int sig)
{
	stray = sig;
}

static uint64_t page_seed(size_t i, unsigned g)
{
	return g ? SEED_GEN + g * 0x100000ULL + i : SEED_BASE + i;
}

/* The last generation up to upto that wrote page i (0: none). */
static unsigned writer(size_t i, unsigned upto)
{
	for (unsigned g = upto; g >= 1; g--)
		if (i % 20 == g % 20)
			return g;
	return 0;
}

/* Dropped by generation g (<= upto), and not written again after. */
static bool dropped(size_t i, unsigned upto)
{
	for (unsigned g = 1; g <= upto; g++)
		if (i == 20 * g + 7 && writer(i, upto) < g)
			return true;
	return false;
}

static long check_page(size_t i, unsigned upto)
{
	const uint64_t *w = (const uint64_t *)(mem + i * PAGE);
	uint64_t seed = page_seed(i, writer(i, upto));
	bool zero = dropped(i, upto);

	for (size_t k = 0; k < PAGE / 8; k++)
		if (w[k] != (zero ? 0 : wl_rand(&seed)))
			return (long)(k * 8);
	return -1;
}

static const char *check_mem(unsigned upto, char *buf, size_t len)
{
	for (size_t i = 0; i < npages; i++) {
		long off = check_page(i, upto);
		if (off >= 0) {
			snprintf(buf, len, "page %zu differs at %ld (generation %u)", i, off, upto);
			return buf;
		}
	}
	for (unsigned g = 1; g <= upto; g++) {
		uint64_t seed = SEED_NEW + g;
		const uint64_t *w = (const uint64_t *)fresh[g];
		for (size_t k = 0; k < NEW_BYTES / 8; k++)
			if (w[k] != wl_rand(&seed)) {
				snprintf(buf, len, "region of generation %u differs at %zu", g,
				         k * 8);
				return buf;
			}
	}
	return NULL;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		wl_fail("opendir /proc/self/fd: %s", strerror(errno));
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* "fd -> target" of every open fd, for a failure message. */
static const char *list_fds(char *buf, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t at = 0;

	buf[0] = '\0';
	while (d && (e = readdir(d)) && at < len) {
		char path[300], target[128] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		at += (size_t)snprintf(buf + at, len - at, "%s->%s ", e->d_name, target);
	}
	if (d)
		closedir(d);
	return buf;
}

static void child_main(void)
{
	char buf[128];
	unsigned char *own =
	    mmap(NULL, NEW_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const char *why;

	if (own == MAP_FAILED)
		wl_child_fail("mmap: %s", strerror(errno));
	wl_fill(own, NEW_BYTES, SEED_CHILD);
	wl_child_await_trigger();
	if ((why = check_mem(1, buf, sizeof(buf))))
		wl_child_fail("child: %s", why);
	uint64_t seed = SEED_CHILD;
	for (size_t k = 0; k < NEW_BYTES / 8; k++)
		if (((uint64_t *)own)[k] != wl_rand(&seed))
			wl_child_fail("child: own region differs at %zu", k * 8);
	_exit(0);
}

static void next_generation(void)
{
	if (gen == MAX_GEN)
		wl_fail("more than %d generations", MAX_GEN);
	gen++;
	for (size_t i = gen % 20; i < npages; i += 20)
		wl_fill(mem + i * PAGE, PAGE, page_seed(i, gen));
	if (20 * gen + 7 < npages && madvise(mem + (20 * gen + 7) * PAGE, PAGE, MADV_DONTNEED) < 0)
		wl_fail("madvise: %s", strerror(errno));
	fresh[gen] =
	    mmap(NULL, NEW_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fresh[gen] == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	wl_fill(fresh[gen], NEW_BYTES, SEED_NEW + gen);
	if (gen == 1 && !solo) {
		fflush(NULL);
		child = fork();
		if (child < 0)
			wl_fail("fork: %s", strerror(errno));
		if (child == 0)
			child_main();
	}
	printf("CHANGED %u\n", gen);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	int sigs[] = {SIGSEGV, SIGBUS, SIGUSR2, SIGCHLD};
	char buf[1024];
	const char *why;

	wl_init("wl-incr");
	solo = argc > 2 && !strcmp(argv[2], "solo");
	npages = mib * (1UL << 20) / PAGE;
	if (npages < 20 * (MAX_GEN + 1))
		wl_fail("at least 1 MiB");
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	for (size_t i = 0; i < npages; i++)
		wl_fill(mem + i * PAGE, PAGE, page_seed(i, 0));
	signal(SIGUSR1, on_usr1);
	for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
		if (sigs[k] != SIGCHLD)
			signal(sigs[k], on_stray);
	int fds = count_fds();
	fprintf(stderr, "wl-incr: memory at %p\n", (void *)mem);
	wl_ready();
	for (unsigned long polls = wl_max_polls(); !wl_triggered(); polls--) {
		if (!polls)
			wl_fail("no trigger");
		while ((unsigned)requested > gen)
			next_generation();
		wl_nap_ms(WL_POLL_MS);
	}
	if (stray)
		wl_fail("signal %d arrived", (int)stray);
	if (strstr(list_fds(buf, sizeof(buf)), "anon_inode:"))
		wl_fail("an anonymous-inode fd is open: %s", buf);
	if (count_fds() != fds)
		fprintf(stderr, "wl-incr: %d fds open, %d at READY: %s\n", count_fds(), fds, buf);
	if ((why = check_mem(gen, buf, sizeof(buf))))
		wl_fail("%s", why);
	if (child)
		wl_expect_exit(child, 0);
	wl_pass();
}
