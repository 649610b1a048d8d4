/* wl-memory [MiB]: memory of every kind the engine must carry over, with a child sharing some:
 *  - random: MiB (default 256) of seeded pseudo-random data; the child's copy differs in page 0
 *  - zero: never touched, only read (zero page), and written then cleared
 *  - text: hashes of our own code and of one page of libc's
 *  - a private file mapping of <trigger>.mem-file with its even pages written (COW copies)
 *  - shared anonymous memory filled by the child before READY; after the trigger each side
 *    checks it, then the child overwrites it and the parent must see the new contents
 *  - a MAP_GROWSDOWN region that must still grow, and a PROT_NONE guard page that must fault */
#include <fcntl.h>
#include <setjmp.h>
#include <sys/mman.h>

#include "wl.h"

#define SEED_RANDOM       0x5eed0001ULL
#define SEED_CHILD_PAGE   0x5eed0002ULL
#define SEED_SHARED_A     0x5eed0003ULL
#define SEED_SHARED_B     0x5eed0004ULL
#define SEED_GROWSDOWN    0x5eed0005ULL
#define SEED_GUARD        0x5eed0006ULL
#define SEED_FILE         0x5eed1000ULL
#define SEED_FILE_WRITTEN 0x5eed2000ULL
#define ZERO_BYTES        (8UL << 20)
#define SHARED_BYTES      (8UL << 20)
#define FILE_PAGES        64
#define GROWSDOWN_BYTES   (64UL << 10)
#define GROWSDOWN_HOLE    (4UL << 20)

extern const char __executable_start[], etext[];

struct shared_hdr {
	int parent_checked; /* set by the parent once it has seen pattern A after the trigger */
};

static struct {
	size_t random_bytes;
	unsigned char *random, *zero_untouched, *zero_read, *zero_written;
	unsigned char *file_map, *shared, *growsdown, *guard;
	struct shared_hdr *hdr;
	uint64_t text_hash, libc_hash;
} m;

static sigjmp_buf fault_jmp;

static void *map_anon(size_t len, int prot, int flags)
{
	void *p = mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_fail("mmap %zu bytes: %s", len, strerror(errno));
	return p;
}

static void fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = wl_rand(&seed);
}

/* Offset of the first word that differs from the seeded stream, or -1. */
static long mismatch(const void *buf, size_t len, uint64_t seed)
{
	const uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != wl_rand(&seed))
			return (long)(i * 8);
	return -1;
}

static long nonzero(const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return (long)i;
	return -1;
}

/* How a check reports a mismatch: parent_fail() (wl_fail) or child_fail() (wl_child_fail). */
typedef void (*fail_fn)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void check_seeded(fail_fn fail, const char *what, const void *buf, size_t len, uint64_t seed)
{
	long off = mismatch(buf, len, seed);

	if (off >= 0)
		fail("%s differs at offset %ld", what, off);
}

static void check_zero(fail_fn fail, const char *what, const unsigned char *buf, size_t len)
{
	long off = nonzero(buf, len);

	if (off >= 0)
		fail("%s page not zero at offset %ld", what, off);
}

static void setup_file_map(void)
{
	char *path = wl_side_path(".mem-file");
	unsigned char page[WL_PAGE_SIZE];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		wl_fail("open %s: %s", path, strerror(errno));
	for (unsigned i = 0; i < FILE_PAGES; i++) {
		fill(page, sizeof(page), SEED_FILE + i);
		if (write(fd, page, sizeof(page)) != (ssize_t)sizeof(page))
			wl_fail("write %s: %s", path, strerror(errno));
	}
	m.file_map =
	    mmap(NULL, FILE_PAGES * WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (m.file_map == MAP_FAILED)
		wl_fail("mmap %s: %s", path, strerror(errno));
	close(fd);
	free(path);
	for (unsigned i = 0; i < FILE_PAGES; i += 2)
		fill(m.file_map + i * WL_PAGE_SIZE, WL_PAGE_SIZE, SEED_FILE_WRITTEN + i);
}

/* Even pages hold what we wrote, odd pages still what the file holds. */
static void check_file_map(fail_fn fail)
{
	for (unsigned i = 0; i < FILE_PAGES; i++) {
		uint64_t seed = (i % 2 ? SEED_FILE : SEED_FILE_WRITTEN) + i;

		if (mismatch(m.file_map + i * WL_PAGE_SIZE, WL_PAGE_SIZE, seed) >= 0)
			fail("private file mapping page %u (%s) differs", i,
			     i % 2 ? "from the file" : "written");
	}
}

static void check_common(fail_fn fail)
{
	check_zero(fail, "untouched", m.zero_untouched, ZERO_BYTES);
	check_zero(fail, "read-only-touched", m.zero_read, ZERO_BYTES);
	check_zero(fail, "written-then-cleared", m.zero_written, ZERO_BYTES);
	check_file_map(fail);
	if (wl_hash(__executable_start, (size_t)(etext - __executable_start)) != m.text_hash)
		fail("our text differs");
	if (wl_hash((void *)((uintptr_t)&getpid & ~(WL_PAGE_SIZE - 1)), WL_PAGE_SIZE) !=
	    m.libc_hash)
		fail("libc text differs");
}

__attribute__((format(printf, 1, 2))) static void child_fail(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	wl_child_fail("child: %s", buf);
}

__attribute__((format(printf, 1, 2))) static void parent_fail(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	wl_fail("%s", buf);
}

static int child_main(void *arg)
{
	int *p = arg, ready_fd = p[1];
	unsigned long polls = wl_max_polls();

	close(p[0]);
	fill(m.random, WL_PAGE_SIZE, SEED_CHILD_PAGE);
	fill(m.shared, SHARED_BYTES, SEED_SHARED_A);
	if (write(ready_fd, "x", 1) != 1)
		wl_child_fail("write ready pipe: %s", strerror(errno));
	close(ready_fd);

	wl_child_await_trigger();
	check_seeded(child_fail, "random page 0 (the child's copy)", m.random, WL_PAGE_SIZE,
	             SEED_CHILD_PAGE);
	check_seeded(child_fail, "random memory", m.random + WL_PAGE_SIZE,
	             m.random_bytes - WL_PAGE_SIZE, wl_rand_skip(SEED_RANDOM, WL_PAGE_SIZE / 8));
	check_common(child_fail);
	check_seeded(child_fail, "shared memory", m.shared, SHARED_BYTES, SEED_SHARED_A);
	/* Overwrite only after the parent has checked pattern A; it then must see B. */
	while (!__atomic_load_n(&m.hdr->parent_checked, __ATOMIC_ACQUIRE)) {
		if (!polls--)
			wl_child_fail("child: the parent never checked the shared memory");
		wl_nap_ms(WL_POLL_MS);
	}
	fill(m.shared, SHARED_BYTES, SEED_SHARED_B);
	return 0;
}

static pid_t setup_child(void)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		wl_fail("pipe: %s", strerror(errno));
	pid = wl_spawn(child_main, p);
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		wl_fail("the child did not get ready");
	close(p[0]);
	check_seeded(parent_fail, "shared memory written by the child", m.shared, SHARED_BYTES,
	             SEED_SHARED_A);
	return pid;
}

static unsigned long maps_start_of(const void *inside)
{
	FILE *f = fopen("/proc/self/maps", "re");
	unsigned long lo, hi, addr = (unsigned long)inside, start = 0;
	char line[512];

	if (!f)
		wl_fail("open /proc/self/maps: %s", strerror(errno));
	while (!start && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= addr && addr < hi)
			start = lo;
	fclose(f);
	return start;
}

/* A grow-down region with a free hole under it (and an inaccessible reservation below the
 * hole, so nothing accessible is within the stack guard gap). Grown by one page before READY. */
static void setup_growsdown(void)
{
	unsigned char *base = map_anon(2 * GROWSDOWN_HOLE, PROT_NONE, MAP_PRIVATE | MAP_NORESERVE);
	unsigned char *top = base + 2 * GROWSDOWN_HOLE;

	if (munmap(base + GROWSDOWN_HOLE, GROWSDOWN_HOLE) < 0)
		wl_fail("munmap: %s", strerror(errno));
	m.growsdown = mmap(top - GROWSDOWN_BYTES, GROWSDOWN_BYTES, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
	if (m.growsdown == MAP_FAILED)
		wl_fail("mmap MAP_GROWSDOWN: %s", strerror(errno));
	fill(m.growsdown, GROWSDOWN_BYTES, SEED_GROWSDOWN);
	*(volatile unsigned char *)(m.growsdown - 1) = 1;
	if (maps_start_of(m.growsdown) != (unsigned long)(m.growsdown - WL_PAGE_SIZE))
		wl_fail("the MAP_GROWSDOWN region did not grow before READY");
}

static void on_fault(int sig)
{
	siglongjmp(fault_jmp, 1);
}

static bool faults(volatile unsigned char *p)
{
	struct sigaction sa = {.sa_handler = on_fault}, old;
	bool faulted = false;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(fault_jmp, 1) == 0)
		(void)*p;
	else
		faulted = true;
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

static void check_growsdown(void)
{
	unsigned char *grown = m.growsdown - WL_PAGE_SIZE;

	check_seeded(parent_fail, "MAP_GROWSDOWN region", m.growsdown, GROWSDOWN_BYTES,
	             SEED_GROWSDOWN);
	if (grown[WL_PAGE_SIZE - 1] != 1)
		wl_fail("the page the MAP_GROWSDOWN region grew into lost its byte");
	if (faults(grown - 1))
		wl_fail("the MAP_GROWSDOWN region no longer grows");
	if (maps_start_of(grown) != (unsigned long)(grown - WL_PAGE_SIZE))
		wl_fail("the MAP_GROWSDOWN region did not grow by a page");
}

static void setup_guard(void)
{
	m.guard = map_anon(3 * WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(m.guard, 3 * WL_PAGE_SIZE, SEED_GUARD);
	if (mprotect(m.guard + WL_PAGE_SIZE, WL_PAGE_SIZE, PROT_NONE) < 0)
		wl_fail("mprotect: %s", strerror(errno));
}

static void check_guard(void)
{
	check_seeded(parent_fail, "the page below the guard page", m.guard, WL_PAGE_SIZE,
	             SEED_GUARD);
	check_seeded(parent_fail, "the page above the guard page", m.guard + 2 * WL_PAGE_SIZE,
	             WL_PAGE_SIZE, wl_rand_skip(SEED_GUARD, 2 * WL_PAGE_SIZE / 8));
	if (!faults(m.guard + WL_PAGE_SIZE))
		wl_fail("the PROT_NONE guard page is accessible");
}

static size_t parse_mib(int argc, char **argv)
{
	char *end;
	unsigned long mib = argc > 1 ? strtoul(argv[1], &end, 10) : 256;

	if (argc > 1 && (*end || mib == 0 || mib > (1UL << 20)))
		wl_fail("usage: wl-memory [MiB]");
	return mib << 20;
}

int main(int argc, char **argv)
{
	pid_t child;

	wl_init("wl-memory");
	m.random_bytes = parse_mib(argc, argv);
	m.random = map_anon(m.random_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(m.random, m.random_bytes, SEED_RANDOM);
	m.zero_untouched = map_anon(ZERO_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	m.zero_read = map_anon(ZERO_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	check_zero(parent_fail, "read-only-touched", m.zero_read, ZERO_BYTES);
	m.zero_written = map_anon(ZERO_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	memset(m.zero_written, 0xa5, ZERO_BYTES);
	memset(m.zero_written, 0, ZERO_BYTES);
	setup_file_map();
	m.shared = map_anon(SHARED_BYTES + WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED);
	m.hdr = (struct shared_hdr *)(m.shared + SHARED_BYTES);
	m.text_hash = wl_hash(__executable_start, (size_t)(etext - __executable_start));
	m.libc_hash = wl_hash((void *)((uintptr_t)&getpid & ~(WL_PAGE_SIZE - 1)), WL_PAGE_SIZE);
	child = setup_child();
	setup_guard();
	setup_growsdown();
	/* Lets a negative test corrupt memory from outside through /proc/PID/mem. */
	fprintf(stderr, "wl-memory: shared at %p, random at %p\n", (void *)m.shared,
	        (void *)m.random);
	wl_ready();

	wl_await_trigger();
	check_growsdown(); /* first: nothing must be mapped into its hole before */
	check_guard();
	check_seeded(parent_fail, "random memory", m.random, m.random_bytes, SEED_RANDOM);
	check_common(parent_fail);
	check_seeded(parent_fail, "shared memory", m.shared, SHARED_BYTES, SEED_SHARED_A);
	__atomic_store_n(&m.hdr->parent_checked, 1, __ATOMIC_RELEASE);
	wl_expect_exit(child, 0);
	check_seeded(parent_fail, "shared memory rewritten by the child after the trigger",
	             m.shared, SHARED_BYTES, SEED_SHARED_B);
	wl_pass();
}
