/* wl-memfd: memfds held by fds (memfd_create), at fixed fds:
 *   10, 11  memfd "wl-memfd-a" (MFD_ALLOW_SEALING), 3 pages + 100 bytes of known data, sealed
 *           F_SEAL_SHRINK | F_SEAL_GROW, position 1234, O_NONBLOCK; 11 is a dup of 10 (one
 *           open file: a seek through 10 moves 11)
 *   12      memfd "wl-memfd-b" (MFD_CLOEXEC, no sealing: F_SEAL_SEAL alone), 5000 bytes,
 *           mode 0640, position 0
 * After the trigger: the same names (readlink), sizes, contents, seals, positions, flags,
 * FD_CLOEXEC and modes, and 10 and 11 still one open file.
 * With `mapped`, memfd b is also mapped shared (its first page, read-write): after the trigger
 * the mapping is still of fd 12's memfd (its name in /proc/self/maps, the same inode, a write
 * through the mapping read through fd 12 and back). With `twice`, memfd a is opened a second time
 * through /proc/self/fd/10 at fd 13 (read-only, position 99): after the trigger 13 is still another
 * open file (its own position and access mode) of the same memfd as 10 (one inode: a write through
 * 10 is read through 13). With `big`, fd 15 holds memfd "wl-memfd-big" of 20 MiB + 123 bytes of
 * known data (more than the manifest could hold): the same size and contents after the trigger.
 * With `map`, memfd "wl-memfd-m" (2 pages of known data) is mapped shared and its fd closed: after
 * the trigger the mapping still shows that name in /proc/self/maps and holds the data (a memfd
 * only mapped, sealed or mapped private: wl-memfd-nofd). With `huge`, fd 14 holds a memfd of
 * huge pages (MFD_HUGETLB): the engine refuses that dump. With `mapped-sealed`, memfd a is
 * mapped shared read-write (its first page) and then sealed F_SEAL_FUTURE_WRITE too: after the
 * trigger it has all three seals, the mapping is still of fd 10's memfd and still writes to it,
 * while a write through fd 10 and a new shared writable mapping are refused (EPERM). With
 * `private`, memfd a is mapped private read-write (4 pages) and its first page written (a
 * copy-on-write page): after the trigger the mapping is of fd 10's memfd, holds the written page
 * and the memfd's other pages, fd 10's memfd is unchanged, and a write through fd 10 to a page not
 * copied is seen in the mapping. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "wl.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define SIZE_A (3 * WL_PAGE_SIZE + 100)
#define SIZE_B 5000
#define SEED_A 0x6d656d66640aULL
#define SEED_B 0x6d656d66640bULL

static char want_a[SIZE_A + 8], want_b[SIZE_B + 8];
static int seals_a = F_SEAL_SHRINK | F_SEAL_GROW;

static void check_one(int fd, const char *name, const char *want, size_t size, int seals,
                      mode_t mode)
{
	char link[128], path[64], got[SIZE_A + 8];
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		wl_fail("readlink fd %d: %s", fd, strerror(errno));
	link[n] = 0;
	snprintf(path, sizeof(path), "/memfd:%s (deleted)", name);
	if (strcmp(link, path))
		wl_fail("fd %d: %s, want %s", fd, link, path);
	if (fstat(fd, &st) < 0)
		wl_fail("fstat fd %d: %s", fd, strerror(errno));
	if ((size_t)st.st_size != size)
		wl_fail("fd %d: size %lld, want %zu", fd, (long long)st.st_size, size);
	if ((st.st_mode & 07777) != mode)
		wl_fail("fd %d: mode %o, want %o", fd, st.st_mode & 07777, mode);
	if (fcntl(fd, F_GET_SEALS) != seals)
		wl_fail("fd %d: seals %#x, want %#x", fd, fcntl(fd, F_GET_SEALS), seals);
	if (pread(fd, got, size, 0) != (ssize_t)size || memcmp(got, want, size))
		wl_fail("fd %d: contents differ", fd);
}

static void check(void)
{
	check_one(10, "wl-memfd-a", want_a, SIZE_A, seals_a, 0777);
	check_one(12, "wl-memfd-b", want_b, SIZE_B, F_SEAL_SEAL, 0640);
	if (lseek(10, 0, SEEK_CUR) != 1234 || lseek(11, 0, SEEK_CUR) != 1234)
		wl_fail("positions %lld %lld, want 1234", (long long)lseek(10, 0, SEEK_CUR),
		        (long long)lseek(11, 0, SEEK_CUR));
	if (lseek(12, 0, SEEK_CUR) != 0)
		wl_fail("fd 12: position %lld, want 0", (long long)lseek(12, 0, SEEK_CUR));
	if (!(fcntl(10, F_GETFL) & O_NONBLOCK) || (fcntl(12, F_GETFL) & O_NONBLOCK))
		wl_fail("O_NONBLOCK: fd 10 %#o, fd 12 %#o", fcntl(10, F_GETFL), fcntl(12, F_GETFL));
	if ((fcntl(10, F_GETFL) & O_ACCMODE) != O_RDWR)
		wl_fail("fd 10: not read-write");
	if (fcntl(12, F_GETFD) != FD_CLOEXEC || fcntl(10, F_GETFD) != 0)
		wl_fail("FD_CLOEXEC: fd 10 %d, fd 12 %d", fcntl(10, F_GETFD), fcntl(12, F_GETFD));
}

static void make(void)
{
	int a = memfd_create("wl-memfd-a", MFD_ALLOW_SEALING);
	int b = memfd_create("wl-memfd-b", MFD_CLOEXEC);

	if (a < 0 || b < 0)
		wl_fail("memfd_create: %s", strerror(errno));
	wl_place_fd(a, 10);
	if (dup2(10, 11) < 0)
		wl_fail("dup2: %s", strerror(errno));
	if (dup3(b, 12, O_CLOEXEC) < 0)
		wl_fail("dup3: %s", strerror(errno));
	close(b);
	wl_fill(want_a, sizeof(want_a), SEED_A);
	wl_fill(want_b, sizeof(want_b), SEED_B);
	if (write(10, want_a, SIZE_A) != SIZE_A || write(12, want_b, SIZE_B) != SIZE_B)
		wl_fail("write: %s", strerror(errno));
	if (fcntl(10, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		wl_fail("F_ADD_SEALS: %s", strerror(errno));
	if (fchmod(12, 0640) < 0)
		wl_fail("fchmod: %s", strerror(errno));
	if (lseek(10, 1234, SEEK_SET) < 0 || lseek(12, 0, SEEK_SET) < 0)
		wl_fail("lseek: %s", strerror(errno));
	if (fcntl(10, F_SETFL, fcntl(10, F_GETFL) | O_NONBLOCK) < 0)
		wl_fail("F_SETFL: %s", strerror(errno));
}

#define SIZE_M (2 * WL_PAGE_SIZE)
#define SEED_M 0x6d656d66640cULL

static char want_m[SIZE_M];

static char *map_memfd(void)
{
	int fd = memfd_create("wl-memfd-m", MFD_ALLOW_SEALING);
	char *p;

	if (fd < 0 || ftruncate(fd, SIZE_M) < 0)
		wl_fail("memfd m: %s", strerror(errno));
	p = mmap(NULL, SIZE_M, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		wl_fail("mmap m: %s", strerror(errno));
	wl_fill(want_m, SIZE_M, SEED_M);
	memcpy(p, want_m, SIZE_M);
	close(fd);
	return p;
}

static void check_map(const char *p)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		wl_fail("maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx", &start, &end) == 2 && start == (unsigned long)p) {
			found = true;
			if (!strstr(line, " /memfd:wl-memfd-m (deleted)\n") ||
			    end - start != SIZE_M)
				wl_fail("mapping m: %s", line);
		}
	}
	fclose(f);
	if (!found)
		wl_fail("mapping m: not at %p", (const void *)p);
	if (memcmp(p, want_m, SIZE_M))
		wl_fail("mapping m: contents differ");
}

#define SIZE_BIG ((20u << 20) + 123)
#define SEED_BIG 0x6d656d666462ULL

static uint64_t hash_big;

static void make_big(void)
{
	char *buf = malloc(SIZE_BIG);
	int fd = memfd_create("wl-memfd-big", 0);

	if (!buf || fd < 0)
		wl_fail("memfd big: %s", strerror(errno));
	wl_fill(buf, SIZE_BIG, SEED_BIG);
	hash_big = wl_hash(buf, SIZE_BIG);
	if (write(fd, buf, SIZE_BIG) != (ssize_t)SIZE_BIG)
		wl_fail("write big: %s", strerror(errno));
	free(buf);
	wl_place_fd(fd, 15);
}

static void check_big(void)
{
	char *buf = malloc(SIZE_BIG);
	struct stat st;

	if (!buf || fstat(15, &st) < 0)
		wl_fail("fd 15: %s", strerror(errno));
	if ((size_t)st.st_size != SIZE_BIG)
		wl_fail("fd 15: size %lld, want %u", (long long)st.st_size, SIZE_BIG);
	if (pread(15, buf, SIZE_BIG, 0) != (ssize_t)SIZE_BIG || wl_hash(buf, SIZE_BIG) != hash_big)
		wl_fail("fd 15: contents differ");
	free(buf);
}

/* fd 13: another open file of fd 10's memfd. */
static void check_twice(void)
{
	struct stat a, b;

	if (fstat(10, &a) < 0 || fstat(13, &b) < 0)
		wl_fail("fstat 10/13: %s", strerror(errno));
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		wl_fail("fd 13 is not fd 10's memfd (inodes %lu, %lu)", (unsigned long)a.st_ino,
		        (unsigned long)b.st_ino);
	if (lseek(13, 0, SEEK_CUR) != 99)
		wl_fail("fd 13: position %lld, want 99", (long long)lseek(13, 0, SEEK_CUR));
	if ((fcntl(13, F_GETFL) & O_ACCMODE) != O_RDONLY)
		wl_fail("fd 13: not read-only");
}

static void check_twice_write(void)
{
	char c = (char)~want_a[7], got = 0;

	if (pwrite(10, &c, 1, 7) != 1 || pread(13, &got, 1, 7) != 1 || got != c)
		wl_fail("a write through fd 10 is not read through fd 13");
}

/* The mapping of memfd b at p: the same memfd as fd 12. */
static void check_mapped(char *p)
{
	char line[512], want[128];
	unsigned long start, ino = 0;
	struct stat st;
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f || fstat(12, &st) < 0)
		wl_fail("maps, fstat 12: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%*x %*s %*s %*s %lu", &start, &ino) == 2 &&
		    start == (unsigned long)p) {
			found = true;
			break;
		}
	fclose(f);
	snprintf(want, sizeof(want), " /memfd:wl-memfd-b (deleted)\n");
	if (!found || !strstr(line, want) || ino != st.st_ino)
		wl_fail("mapping of memfd b: %s (fd 12 inode %lu)", found ? line : "gone",
		        (unsigned long)st.st_ino);
	if (memcmp(p, want_b, WL_PAGE_SIZE))
		wl_fail("mapping of memfd b: contents differ");
}

static void check_mapped_write(char *p)
{
	char got = 0;

	p[9] = (char)~want_b[9];
	if (pread(12, &got, 1, 9) != 1 || got != p[9])
		wl_fail("a write through the mapping is not read through fd 12");
	got = want_b[9];
	if (pwrite(12, &got, 1, 9) != 1 || p[9] != want_b[9])
		wl_fail("a write through fd 12 is not seen in the mapping");
}

/* memfd a mapped shared read-write, then sealed against new writes. */
static char *map_sealed(void)
{
	char *p = mmap(NULL, WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 10, 0);

	if (p == MAP_FAILED)
		wl_fail("mmap a: %s", strerror(errno));
	if (fcntl(10, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0)
		wl_fail("F_ADD_SEALS a: %s", strerror(errno));
	seals_a |= F_SEAL_FUTURE_WRITE;
	return p;
}

/* The mapping at p is memfd a's and may still write it; nothing new may. */
static void check_sealed(char *p)
{
	struct stat a, m;
	char got = 0, c = (char)~want_a[5], path[96];
	char *q;

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
	         (unsigned long)p + WL_PAGE_SIZE);
	if (fstat(10, &a) < 0 || stat(path, &m) < 0 || a.st_ino != m.st_ino)
		wl_fail("the mapping at %p is not fd 10's memfd", (void *)p);
	if (memcmp(p, want_a, WL_PAGE_SIZE))
		wl_fail("mapping of memfd a: contents differ");
	p[5] = c;
	if (pread(10, &got, 1, 5) != 1 || got != c)
		wl_fail("a write through the sealed memfd's mapping is not read through fd 10");
	p[5] = want_a[5];
	if (pwrite(10, &c, 1, 5) != -1 || errno != EPERM)
		wl_fail("a write through fd 10 was not refused (F_SEAL_FUTURE_WRITE)");
	q = mmap(NULL, WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 10, 0);
	if (q != MAP_FAILED || errno != EPERM)
		wl_fail("a new shared writable mapping of memfd a was not refused");
}

static char want_pa[SIZE_A];

/* memfd a mapped private, its first page written. */
static char *map_private(void)
{
	char *p = mmap(NULL, 4 * WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, 10, 0);

	if (p == MAP_FAILED)
		wl_fail("mmap private a: %s", strerror(errno));
	memcpy(want_pa, want_a, SIZE_A);
	for (size_t i = 0; i < WL_PAGE_SIZE; i += 64)
		want_pa[i] = p[i] = (char)~p[i];
	return p;
}

static void check_private(const char *p)
{
	struct stat a, m;
	char path[96], c = 0;

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
	         (unsigned long)p + 4 * WL_PAGE_SIZE);
	if (fstat(10, &a) < 0 || stat(path, &m) < 0 || a.st_ino != m.st_ino)
		wl_fail("the private mapping at %p is not fd 10's memfd", (const void *)p);
	if (memcmp(p, want_pa, SIZE_A))
		wl_fail("private mapping of memfd a: contents differ");
	if (pread(10, &c, 1, 0) != 1 || c != want_a[0])
		wl_fail("memfd a took the private mapping's write");
}

/* A page not copied is still the memfd's: a write through fd 10 shows. */
static void check_private_write(const char *p)
{
	char c = (char)~want_a[2 * WL_PAGE_SIZE + 3];

	if (pwrite(10, &c, 1, 2 * WL_PAGE_SIZE + 3) != 1 || p[2 * WL_PAGE_SIZE + 3] != c)
		wl_fail("a write through fd 10 is not seen in the private mapping's page");
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	char path[64], *m = NULL;

	wl_init("wl-memfd");
	make();
	char *mapped = NULL, *sealed = NULL;
	if (!strcmp(mode, "mapped-sealed"))
		sealed = map_sealed();
	char *priv = !strcmp(mode, "private") ? map_private() : NULL;
	if (!strcmp(mode, "mapped")) {
		mapped = mmap(NULL, WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 12, 0);
		if (mapped == MAP_FAILED)
			wl_fail("mmap: %s", strerror(errno));
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", 10);
	bool twice = !strcmp(mode, "twice"), big = !strcmp(mode, "big");
	if (twice) {
		wl_place_fd(open(path, O_RDONLY), 13);
		if (lseek(13, 99, SEEK_SET) != 99)
			wl_fail("lseek 13: %s", strerror(errno));
	}
	if (big)
		make_big();
	if (!strcmp(mode, "huge"))
		wl_place_fd(memfd_create("wl-memfd-h", MFD_HUGETLB), 14);
	if (!strcmp(mode, "map"))
		m = map_memfd();
	check();
	if (m)
		check_map(m);
	if (twice)
		check_twice();
	if (big)
		check_big();
	if (mapped)
		check_mapped(mapped);
	if (sealed)
		check_sealed(sealed);
	if (priv)
		check_private(priv);
	wl_ready();
	wl_await_trigger();
	check();
	if (m)
		check_map(m);
	if (twice) {
		check_twice();
		check_twice_write();
	}
	if (big)
		check_big();
	if (mapped) {
		check_mapped(mapped);
		check_mapped_write(mapped);
	}
	if (sealed)
		check_sealed(sealed);
	if (priv) {
		check_private(priv);
		check_private_write(priv);
	}
	/* still one open file */
	if (lseek(10, 50, SEEK_SET) != 50 || lseek(11, 0, SEEK_CUR) != 50)
		wl_fail("fd 11 is no longer fd 10's open file");
	wl_pass();
}
