/* bench-mem: the process bench/run dumps and restores.
 *
 *   bench-mem MiB CONTENTS MODE RESUMED-FILE
 *
 * CONTENTS: random (incompressible), mix (30% zero pages, 30% text, 40%
 * repeated 64-byte records) or sparse (random, one page in ten touched).
 * MODE: single, threads64 (63 more threads, asleep) or cow8 (7 forked
 * children sharing the memory copy-on-write, 8 processes in all).
 *
 * Fills the memory, remembers its checksum, prints READY and then reads
 * CLOCK_REALTIME about every millisecond. A gap of more than 100 ms means it
 * was stopped (dumped, then restored): it writes "resumed NS" (the first
 * clock reading after the gap, the moment it ran its own code again) to
 * RESUMED-FILE (children of cow8: RESUMED-FILE.K), checksums its memory again
 * and appends "verified ok" or "verified bad". Only the first gap after the
 * file was removed or emptied is written: a later stall (a lazy restore's
 * fault waiting on the disk, a busy machine) would otherwise rewrite the
 * file while bench/run reads it, with a later "resumed" and no verdict yet.
 * bench/run times the restore from that line and refuses a round whose
 * memory came back wrong. Exits
 * after BENCH_MEM_TIMEOUT seconds (default 900) of its own running time. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE        4096u
#define WORDS       (PAGE / 8)
#define GAP_NS      100000000ull /* 100 ms: far above a loaded machine's hiccups */
#define POLL_NS     1000000l     /* 1 ms */
#define COW_TASKS   8
#define THREADS     64
#define RECORD_SIZE 64

enum contents { RANDOM, MIX, SPARSE };

struct region {
	uint8_t *base;
	size_t pages;
	enum contents contents;
	uint64_t sum; /* checksum of the whole region, taken while filling it */
};

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Four independent multiply chains, so hashing runs near memory speed. */
static uint64_t page_hash(const uint8_t *page)
{
	uint64_t a = 1, b = 2, c = 3, d = 4, w[4];

	for (size_t i = 0; i < WORDS; i += 4) {
		memcpy(w, page + i * 8, sizeof(w));
		a = (a ^ w[0]) * 0x100000001b3ull;
		b = (b ^ w[1]) * 0x100000001b3ull;
		c = (c ^ w[2]) * 0x100000001b3ull;
		d = (d ^ w[3]) * 0x100000001b3ull;
	}
	return splitmix(a ^ splitmix(b ^ splitmix(c ^ splitmix(d))));
}

static uint64_t combine(uint64_t sum, uint64_t h)
{
	return splitmix(sum ^ h);
}

static void fill_random(uint8_t *page, uint64_t seed)
{
	uint64_t s = splitmix(seed) | 1;

	for (size_t i = 0; i < WORDS; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		memcpy(page + i * 8, &s, 8);
	}
}

/* Words from a small vocabulary, like logs or JSON a program keeps around. */
static void fill_text(uint8_t *page, uint64_t seed)
{
	static const char *const words[] = {
	    "the",     "request", "user",  "id",      "status", "ok",     "error",  "timeout",
	    "GET",     "/api/v1", "model", "weights", "epoch",  "loss",   "0.0321", "batch",
	    "session", "token",   "cache", "miss",    "hit",    "worker", "queue",  "latency",
	    "ms",      "bytes",   "INFO",  "DEBUG",   "WARN",   "node",   "shard",  "replica"};
	uint64_t s = splitmix(seed);
	size_t n = 0;

	while (n < PAGE) {
		const char *w = words[s % 32];
		size_t len = strlen(w);

		s = splitmix(s);
		for (size_t i = 0; i < len && n < PAGE; i++)
			page[n++] = (uint8_t)w[i];
		if (n < PAGE)
			page[n++] = (s & 15) == 0 ? '\n' : ' ';
	}
}

/* Records of one layout, most fields the same from one to the next. */
static void fill_records(uint8_t *page, uint64_t seed)
{
	struct {
		uint64_t id;
		uint32_t kind, flags;
		char name[24];
		uint64_t created, value;
		uint64_t pad;
	} r;
	_Static_assert(sizeof(r) == RECORD_SIZE, "one record is 64 bytes");

	for (size_t i = 0; i < PAGE / RECORD_SIZE; i++) {
		memset(&r, 0, sizeof(r));
		r.id = seed * (PAGE / RECORD_SIZE) + i;
		r.kind = (uint32_t)(r.id % 4);
		r.flags = 0x11;
		snprintf(r.name, sizeof(r.name), "item-%" PRIu64, r.id % 1000);
		r.created = 1700000000ull + r.id;
		r.value = splitmix(r.id) % 100;
		memcpy(page + i * RECORD_SIZE, &r, sizeof(r));
	}
}

/* Which kind a page of the mix is: 30% zero, 30% text, 40% records. */
static void fill_mix(uint8_t *page, uint64_t index)
{
	uint64_t kind = splitmix(index ^ 0xabcdefull) % 10;

	if (kind < 3)
		memset(page, 0, PAGE); /* written, so resident: a zero page to detect */
	else if (kind < 6)
		fill_text(page, index);
	else
		fill_records(page, index);
}

static int region_fill(struct region *r, size_t mib, enum contents contents)
{
	static const uint8_t zero[PAGE];
	uint64_t zero_hash = page_hash(zero);

	r->pages = mib * (1024 * 1024 / PAGE);
	r->contents = contents;
	r->base =
	    mmap(NULL, r->pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->base == MAP_FAILED) {
		perror("bench-mem: mmap");
		return -1;
	}
	r->sum = 0;
	for (size_t i = 0; i < r->pages; i++) {
		uint8_t *page = r->base + i * PAGE;

		if (contents == SPARSE && i % 10 != 0) {
			/* untouched: never read here either, so no page table
			 * entry exists for it at the dump */
			r->sum = combine(r->sum, zero_hash);
			continue;
		}
		if (contents == MIX)
			fill_mix(page, i);
		else
			fill_random(page, i);
		r->sum = combine(r->sum, page_hash(page));
	}
	return 0;
}

static bool region_verify(const struct region *r)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < r->pages; i++)
		sum = combine(sum, page_hash(r->base + i * PAGE));
	return sum == r->sum;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Writes the resume time first, so a slow checksum does not delay it;
 * nothing where the file holds a report already. */
static void report(const char *path, uint64_t resumed, const struct region *r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	struct stat st;
	FILE *f;
	bool ok;

	if (fd < 0 || fstat(fd, &st) < 0 || !(f = fdopen(fd, "w"))) {
		perror("bench-mem: open resumed file");
		if (fd >= 0)
			close(fd);
		return;
	}
	if (st.st_size > 0) {
		fclose(f);
		return;
	}
	fprintf(f, "resumed %" PRIu64 "\n", resumed);
	fflush(f);
	ok = region_verify(r);
	fprintf(f, "verified %s\n", ok ? "ok" : "bad");
	fclose(f);
}

static unsigned long max_polls(void)
{
	const char *t = getenv("BENCH_MEM_TIMEOUT");
	unsigned long s = t ? strtoul(t, NULL, 10) : 0;

	return (s ? s : 900) * (1000000000ul / (unsigned long)POLL_NS);
}

/* Polls the clock until the timeout; reports every gap (bench/run deletes the
 * file before the restore, so only the gap after it counts). */
static int watch(const char *path, const struct region *r)
{
	unsigned long polls = max_polls();
	uint64_t last = now_ns();

	for (unsigned long i = 0; i < polls; i++) {
		struct timespec nap = {0, POLL_NS};
		uint64_t t;

		nanosleep(&nap, NULL);
		t = now_ns();
		if (t - last > GAP_NS) {
			report(path, t, r);
			t = now_ns(); /* the checksum's own time is no gap */
		}
		last = t;
	}
	return 0;
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec nap = {0, 50 * POLL_NS};
		nanosleep(&nap, NULL);
	}
	return NULL;
}

static int start_threads(void)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (int i = 1; i < THREADS; i++) {
		pthread_t t;
		int e = pthread_create(&t, &attr, sleeper, NULL);

		if (e) {
			fprintf(stderr, "bench-mem: pthread_create: %s\n", strerror(e));
			return -1;
		}
	}
	pthread_attr_destroy(&attr);
	return 0;
}

/* Forks the other members of cow8; returns in each child with its own
 * resumed file name, in the root with the name unchanged. */
static int start_children(const char **path)
{
	static char child_path[4096];

	fflush(stdout);
	for (int k = 1; k < COW_TASKS; k++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("bench-mem: fork");
			return -1;
		}
		if (pid == 0) {
			snprintf(child_path, sizeof(child_path), "%s.%d", *path, k);
			*path = child_path;
			return 0;
		}
	}
	return 0;
}

static int parse_contents(const char *s, enum contents *ret)
{
	if (!strcmp(s, "random"))
		*ret = RANDOM;
	else if (!strcmp(s, "mix"))
		*ret = MIX;
	else if (!strcmp(s, "sparse"))
		*ret = SPARSE;
	else
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct region r;
	enum contents contents;
	const char *path;
	pid_t root = getpid();
	long mib;

	if (argc != 5 || (mib = strtol(argv[1], NULL, 10)) <= 0 ||
	    parse_contents(argv[2], &contents) < 0 ||
	    (strcmp(argv[3], "single") && strcmp(argv[3], "threads64") &&
	     strcmp(argv[3], "cow8"))) {
		fprintf(stderr, "usage: bench-mem MiB random|mix|sparse single|threads64|cow8 "
		                "RESUMED-FILE\n");
		return 2;
	}
	path = argv[4];
	if (region_fill(&r, (size_t)mib, contents) < 0)
		return 1;
	if (!strcmp(argv[3], "threads64") && start_threads() < 0)
		return 1;
	if (!strcmp(argv[3], "cow8") && start_children(&path) < 0)
		return 1;
	if (getpid() == root) {
		printf("READY\n");
		fflush(stdout);
	}
	return watch(path, &r);
}
