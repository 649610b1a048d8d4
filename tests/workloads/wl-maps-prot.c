/* wl-maps-prot: mappings split by mprotect into ranges of different protections come back
 * with the same ranges, protections, data and rights to change them (zdtm maps_file_prot,
 * mprotect00).
 *
 * Before READY:
 * - P: `<trigger>.prot` (8 pages, seeded) mapped private read-write; pages 2-4 rewritten (our
 *   own copies), then pages 0-1 made read-only, 4-5 PROT_NONE, 6-7 read+exec;
 * - S: `<trigger>.shared` (4 pages) mapped shared read-only from a read-write fd, page 1 made
 *   writable by mprotect and written;
 * - R: `<trigger>.shared-ro` (2 pages) mapped shared read-only from a read-only fd;
 * - A: 6 anonymous pages (seeded), pages 0-1 made read-only, 2-3 PROT_NONE;
 * - M: 4 pages of shared anonymous memory (seeded), pages 0-1 made read-only, 2-3 PROT_NONE.
 * Every fd is closed again. After the trigger: /proc/self/maps shows each range with the same
 * bounds, protection and offset; the data is what was written (PROT_NONE pages are read after
 * an mprotect); page 1 of S is still writable and S's page 0 can be made writable (its file was
 * open for writing), while R still cannot (EACCES); a write through S reaches the file. */
#include <fcntl.h>
#include <sys/mman.h>

#include "wl.h"

#define PG        WL_PAGE_SIZE
#define SEED_FILE 0x70726f7446ULL
#define SEED_OWN  0x70726f744fULL
#define SEED_ANON 0x70726f7441ULL
#define SEED_SH   0x70726f7453ULL
#define SEED_SHM  0x70726f744dULL

struct range {
	const char *what;
	char *addr;
	char line[128];
};

static struct range ranges[] = {
    {"P pages 0-1 (r--p)", NULL, ""}, {"P pages 2-3 (rw-p)", NULL, ""},
    {"P pages 4-5 (---p)", NULL, ""}, {"P pages 6-7 (r-xp)", NULL, ""},
    {"S page 0 (r--s)", NULL, ""},    {"S page 1 (rw-s)", NULL, ""},
    {"S pages 2-3 (r--s)", NULL, ""}, {"R (r--s)", NULL, ""},
    {"A pages 0-1 (r--p)", NULL, ""}, {"A pages 2-3 (---p)", NULL, ""},
    {"A pages 4-5 (rw-p)", NULL, ""}, {"M pages 0-1 (r--s)", NULL, ""},
    {"M pages 2-3 (---s)", NULL, ""},
};

static int make_file(const char *suffix, size_t pages, uint64_t seed)
{
	char *path = wl_side_path(suffix);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char *buf = malloc(pages * PG);

	if (fd < 0 || !buf)
		wl_fail("create %s: %s", path, strerror(errno));
	wl_fill(buf, pages * PG, seed);
	if (write(fd, buf, pages * PG) != (ssize_t)(pages * PG))
		wl_fail("write %s: %s", path, strerror(errno));
	free(buf);
	free(path);
	return fd;
}

static char *map(size_t len, int prot, int flags, int fd)
{
	char *p = mmap(NULL, len, prot, flags, fd, 0);

	if (p == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return p;
}

static void protect(char *p, size_t len, int prot)
{
	if (mprotect(p, len, prot) < 0)
		wl_fail("mprotect %p: %s", (void *)p, strerror(errno));
}

/* Page i of the stream of seed, to compare with. */
static bool page_is(const char *p, uint64_t seed, size_t i)
{
	static char want[PG];

	wl_fill(want, PG, wl_rand_skip(seed, i * PG / 8));
	return !memcmp(p, want, PG);
}

static void record(void)
{
	char flags[8];

	for (size_t i = 0; i < WL_ARRAY_SIZE(ranges); i++)
		if (!wl_mapping(ranges[i].addr, "", ranges[i].line, sizeof(ranges[i].line), flags,
		                sizeof(flags)))
			wl_fail("%s: not mapped", ranges[i].what);
}

static void check_ranges(void)
{
	char line[128], flags[8];

	for (size_t i = 0; i < WL_ARRAY_SIZE(ranges); i++) {
		if (!wl_mapping(ranges[i].addr, "", line, sizeof(line), flags, sizeof(flags)))
			wl_fail("%s: not mapped", ranges[i].what);
		if (strcmp(line, ranges[i].line))
			wl_fail("%s: mapping \"%s\", was \"%s\"", ranges[i].what, line,
			        ranges[i].line);
	}
}

static void check_data(char *p, char *s, char *a, char *m)
{
	static const uint64_t p_seed[8] = {SEED_FILE, SEED_FILE, SEED_OWN,  SEED_OWN,
	                                   SEED_OWN,  SEED_FILE, SEED_FILE, SEED_FILE};

	protect(p + 4 * PG, 2 * PG, PROT_READ);
	protect(a + 2 * PG, 2 * PG, PROT_READ);
	protect(m + 2 * PG, 2 * PG, PROT_READ);
	for (size_t i = 0; i < 4; i++)
		if (!page_is(m + i * PG, SEED_SHM, i))
			wl_fail("M page %zu differs", i);
	for (size_t i = 0; i < 8; i++)
		if (!page_is(p + i * PG, p_seed[i], i))
			wl_fail("P page %zu differs", i);
	for (size_t i = 0; i < 6; i++)
		if (!page_is(a + i * PG, SEED_ANON, i))
			wl_fail("A page %zu differs", i);
	for (size_t i = 0; i < 4; i++)
		if (!page_is(s + i * PG, i == 1 ? SEED_OWN : SEED_SH, i))
			wl_fail("S page %zu differs", i);
}

/* S may become writable (its file was open read-write), R may not; a write through S
 * reaches the file. */
static void check_rights(char *s, char *r)
{
	char *path = wl_side_path(".shared"), byte = 0;
	int fd;

	s[PG] ^= 1; /* still writable */
	s[PG] ^= 1;
	if (mprotect(s, PG, PROT_READ | PROT_WRITE) < 0)
		wl_fail("S page 0: mprotect(PROT_WRITE): %s (file no longer open for writing)",
		        strerror(errno));
	s[10] = (char)(s[10] + 1);
	if (mprotect(r, 2 * PG, PROT_READ | PROT_WRITE) == 0)
		wl_fail("R: mprotect(PROT_WRITE) works, its file was opened read-only");
	if (errno != EACCES)
		wl_fail("R: mprotect(PROT_WRITE): %s, want EACCES", strerror(errno));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, &byte, 1, 10) != 1)
		wl_fail("read %s: %s", path, strerror(errno));
	if (byte != s[10])
		wl_fail("a write through S did not reach %s", path);
	close(fd);
	free(path);
}

int main(void)
{
	char *p, *s, *r, *a, *m;
	int fd;

	wl_init("wl-maps-prot");
	p = map(8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, make_file(".prot", 8, SEED_FILE));
	for (size_t i = 2; i < 5; i++)
		wl_fill(p + i * PG, PG, wl_rand_skip(SEED_OWN, i * PG / 8));
	protect(p, 2 * PG, PROT_READ);
	protect(p + 4 * PG, 2 * PG, PROT_NONE);
	protect(p + 6 * PG, 2 * PG, PROT_READ | PROT_EXEC);

	s = map(4 * PG, PROT_READ, MAP_SHARED, make_file(".shared", 4, SEED_SH));
	protect(s + PG, PG, PROT_READ | PROT_WRITE);
	wl_fill(s + PG, PG, wl_rand_skip(SEED_OWN, PG / 8));

	close(make_file(".shared-ro", 2, SEED_SH));
	char *ro = wl_side_path(".shared-ro");
	fd = open(ro, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		wl_fail("open %s: %s", ro, strerror(errno));
	free(ro);
	r = map(2 * PG, PROT_READ, MAP_SHARED, fd);

	a = map(6 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	wl_fill(a, 6 * PG, SEED_ANON);
	protect(a, 2 * PG, PROT_READ);
	protect(a + 2 * PG, 2 * PG, PROT_NONE);

	m = map(4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	wl_fill(m, 4 * PG, SEED_SHM);
	protect(m, 2 * PG, PROT_READ);
	protect(m + 2 * PG, 2 * PG, PROT_NONE);

	char *at[] = {p, p + 2 * PG, p + 4 * PG, p + 6 * PG, s, s + PG,    s + 2 * PG,
	              r, a,          a + 2 * PG, a + 4 * PG, m, m + 2 * PG};
	for (size_t i = 0; i < WL_ARRAY_SIZE(ranges); i++)
		ranges[i].addr = at[i];
	record();
	wl_ready();
	wl_await_trigger();
	check_ranges();
	check_data(p, s, a, m);
	check_rights(s, r);
	wl_pass();
}
