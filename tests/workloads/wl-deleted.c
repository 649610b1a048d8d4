/* wl-deleted: regular files deleted while open, at fixed fds:
 *   10, 11  `<trigger>.rw`, read-write, 10000 bytes of known data, position 777, O_APPEND off;
 *           11 is a dup of 10 (one open file: a seek through 10 moves 11)
 *   12      `<trigger>.ro`, read-only, 3000 bytes, mode 0604, position 5, FD_CLOEXEC
 * both unlinked after they were opened. After the trigger: the links read "<path> (deleted)",
 * no link left, the same sizes, modes, contents, positions and flags, 10 and 11 still one open
 * file, and a write through 10 lands in the file. With `mapped`, the .ro file is also mapped
 * shared (read-only): after the trigger the mapping is of fd 12's file (same inode, its name
 * "PATH (deleted)", its contents). With `ghost`, `<trigger>.gh` (3 pages + 100 bytes) is mapped
 * shared read-write, written through the mapping, its fd closed and the file unlinked, and a
 * child inherits the mapping: after the trigger both tasks map one file (same inode in both
 * maps) named "PATH (deleted)", with the contents. With `twice`, the
 * .rw file is opened a second time through /proc/self/fd/10 at fd 13 (read-only, position 3),
 * and `<trigger>.tw` (2000 bytes) is opened twice before its unlink, read-write at 14 (position
 * 10) and read-only at 15 (position 20): after the trigger each pair is two open files (own
 * positions and access modes) of one file (a write through 10 or 14 is read through 13 or 15).
 * With `big`, fd 16 holds `<trigger>.big`, 20 MiB + 5 bytes of known data, deleted: the same size
 * and contents after the trigger. With `private`, the .ro file is also mapped private read-write
 * and its first byte written (a copy-on-write page), and `<trigger>.pg` (3 pages + 100 bytes) is
 * mapped private read-write, its first page written, its fd closed and the file unlinked: after
 * the trigger both mappings are of their deleted files (the first of fd 12's inode) and hold the
 * written pages and the files' own, and fd 12's file is unchanged. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "wl.h"

#define SIZE_RW 10000
#define SIZE_RO 3000

static char want_rw[SIZE_RW + 8], want_ro[SIZE_RO + 8];
static char *path_rw, *path_ro;

static void check_one(int fd, const char *path, const char *want, size_t size, mode_t mode)
{
	char link[4200], expect[4200], got[SIZE_RW + 8];
	struct stat st;
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, link, sizeof(link) - 1);
	if (n < 0)
		wl_fail("readlink fd %d: %s", fd, strerror(errno));
	link[n] = 0;
	snprintf(expect, sizeof(expect), "%s (deleted)", path);
	if (strcmp(link, expect))
		wl_fail("fd %d: %s, want %s", fd, link, expect);
	if (fstat(fd, &st) < 0)
		wl_fail("fstat fd %d: %s", fd, strerror(errno));
	if (st.st_nlink != 0)
		wl_fail("fd %d: %lu links, want 0", fd, (unsigned long)st.st_nlink);
	if ((size_t)st.st_size != size)
		wl_fail("fd %d: size %lld, want %zu", fd, (long long)st.st_size, size);
	if ((st.st_mode & 07777) != mode)
		wl_fail("fd %d: mode %o, want %o", fd, st.st_mode & 07777, mode);
	if (pread(fd, got, size, 0) != (ssize_t)size || memcmp(got, want, size))
		wl_fail("fd %d: contents differ", fd);
}

static void check(void)
{
	check_one(10, path_rw, want_rw, SIZE_RW, 0600);
	check_one(12, path_ro, want_ro, SIZE_RO, 0604);
	if (lseek(10, 0, SEEK_CUR) != 777 || lseek(11, 0, SEEK_CUR) != 777)
		wl_fail("positions %lld %lld, want 777", (long long)lseek(10, 0, SEEK_CUR),
		        (long long)lseek(11, 0, SEEK_CUR));
	if (lseek(12, 0, SEEK_CUR) != 5)
		wl_fail("fd 12: position %lld, want 5", (long long)lseek(12, 0, SEEK_CUR));
	if ((fcntl(10, F_GETFL) & O_ACCMODE) != O_RDWR ||
	    (fcntl(12, F_GETFL) & O_ACCMODE) != O_RDONLY)
		wl_fail("access modes %#o %#o", fcntl(10, F_GETFL), fcntl(12, F_GETFL));
	if (fcntl(12, F_GETFD) != FD_CLOEXEC || fcntl(10, F_GETFD) != 0)
		wl_fail("FD_CLOEXEC: fd 10 %d, fd 12 %d", fcntl(10, F_GETFD), fcntl(12, F_GETFD));
}

static int open_deleted(const char *path, int flags, const char *data, size_t size, mode_t mode)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size || fchmod(fd, mode) < 0)
		wl_fail("%s: %s", path, strerror(errno));
	if ((flags & O_ACCMODE) != O_RDWR) {
		close(fd);
		fd = open(path, flags);
		if (fd < 0)
			wl_fail("%s: %s", path, strerror(errno));
	}
	if (unlink(path) < 0)
		wl_fail("unlink %s: %s", path, strerror(errno));
	return fd;
}

#define SIZE_TW  2000
#define SIZE_BIG ((20u << 20) + 5)

static uint64_t hash_big;

/* The .tw file opened twice before its unlink: 14 read-write, 15 read-only. */
static void make_tw(void)
{
	char *path = wl_side_path(".tw"), buf[SIZE_TW];
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);

	wl_fill(buf, SIZE_TW, 0x64656c0c);
	if (fd < 0 || write(fd, buf, SIZE_TW) != SIZE_TW)
		wl_fail("%s: %s", path, strerror(errno));
	wl_place_fd(fd, 14);
	wl_place_fd(open(path, O_RDONLY), 15);
	if (unlink(path) < 0 || lseek(14, 10, SEEK_SET) != 10 || lseek(15, 20, SEEK_SET) != 20)
		wl_fail("%s: %s", path, strerror(errno));
	wl_place_fd(open("/proc/self/fd/10", O_RDONLY), 13);
	if (lseek(13, 3, SEEK_SET) != 3)
		wl_fail("lseek 13: %s", strerror(errno));
}

static void check_pair(int rw, int ro, off_t pos_rw, off_t pos_ro)
{
	struct stat a, b;

	if (fstat(rw, &a) < 0 || fstat(ro, &b) < 0)
		wl_fail("fstat %d/%d: %s", rw, ro, strerror(errno));
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev || a.st_nlink || b.st_nlink)
		wl_fail("fds %d and %d: not one deleted file", rw, ro);
	if (lseek(rw, 0, SEEK_CUR) != pos_rw || lseek(ro, 0, SEEK_CUR) != pos_ro)
		wl_fail("fds %d, %d: positions %lld, %lld, want %lld, %lld", rw, ro,
		        (long long)lseek(rw, 0, SEEK_CUR), (long long)lseek(ro, 0, SEEK_CUR),
		        (long long)pos_rw, (long long)pos_ro);
	if ((fcntl(rw, F_GETFL) & O_ACCMODE) != O_RDWR ||
	    (fcntl(ro, F_GETFL) & O_ACCMODE) != O_RDONLY)
		wl_fail("fds %d, %d: access modes", rw, ro);
}

static void check_pair_write(int rw, int ro)
{
	char c = 'Q', got = 0;

	if (pwrite(rw, &c, 1, 1) != 1 || pread(ro, &got, 1, 1) != 1 || got != c)
		wl_fail("a write through fd %d is not read through fd %d", rw, ro);
}

static void make_big(void)
{
	char *path = wl_side_path(".big"), *buf = malloc(SIZE_BIG);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);

	if (!buf || fd < 0)
		wl_fail("%s: %s", path, strerror(errno));
	wl_fill(buf, SIZE_BIG, 0x64656c0d);
	hash_big = wl_hash(buf, SIZE_BIG);
	if (write(fd, buf, SIZE_BIG) != (ssize_t)SIZE_BIG || unlink(path) < 0)
		wl_fail("%s: %s", path, strerror(errno));
	free(buf);
	wl_place_fd(fd, 16);
}

static void check_big(void)
{
	char *buf = malloc(SIZE_BIG);
	struct stat st;

	if (!buf || fstat(16, &st) < 0)
		wl_fail("fd 16: %s", strerror(errno));
	if ((size_t)st.st_size != SIZE_BIG || st.st_nlink)
		wl_fail("fd 16: size %lld, %lu links", (long long)st.st_size,
		        (unsigned long)st.st_nlink);
	if (pread(16, buf, SIZE_BIG, 0) != (ssize_t)SIZE_BIG || wl_hash(buf, SIZE_BIG) != hash_big)
		wl_fail("fd 16: contents differ");
	free(buf);
}

/* The line of pid's maps at address p: its inode and name (after it). */
static bool maps_at(pid_t pid, const void *p, unsigned long *ino, char *name, size_t len)
{
	char path[64], line[4400];
	unsigned long start;
	int off = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (!(f = fopen(path, "re")))
		wl_fail("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%*x %*s %*s %*s %lu %n", &start, ino, &off) == 2 &&
		    start == (unsigned long)p) {
			line[strcspn(line, "\n")] = 0;
			snprintf(name, len, "%s", line + off);
			fclose(f);
			return true;
		}
	fclose(f);
	return false;
}

/* The mapping at p is of the deleted file path, inode ino (0: any), and
 * holds want; returns its inode. */
static unsigned long check_mapping(pid_t pid, const void *p, const char *path, unsigned long ino,
                                   const char *want, size_t size)
{
	char name[4300], expect[4300];
	unsigned long got;

	snprintf(expect, sizeof(expect), "%s (deleted)", path);
	if (!maps_at(pid, p, &got, name, sizeof(name)))
		wl_fail("pid %d: no mapping at %p (want %s)", (int)pid, p, expect);
	if (strcmp(name, expect))
		wl_fail("pid %d: mapping at %p: of \"%s\", not of %s", (int)pid, p, name, expect);
	if (ino && got != ino)
		wl_fail("pid %d: mapping at %p: inode %lu, want %lu", (int)pid, p, got, ino);
	if (want && memcmp(p, want, size))
		wl_fail("mapping at %p: contents differ", p);
	return got;
}

/* A child that lives until it is killed: an idle child of wl.h exits at the
 * trigger, and its mapping is checked after the trigger. */
static pid_t fork_paused_child(void)
{
	pid_t child = fork();

	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0)
		for (;;)
			pause();
	wl_children[wl_nr_children++] = child;
	return child;
}

#define SIZE_GH (3 * WL_PAGE_SIZE + 100)

static char want_gh[SIZE_GH];

static char *make_ghost(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0640);
	char *p;

	if (fd < 0 || ftruncate(fd, SIZE_GH) < 0)
		wl_fail("%s: %s", path, strerror(errno));
	p = mmap(NULL, 4 * WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		wl_fail("mmap %s: %s", path, strerror(errno));
	wl_fill(want_gh, SIZE_GH, 0x64656c0e);
	memcpy(p, want_gh, SIZE_GH);
	close(fd);
	if (unlink(path) < 0)
		wl_fail("unlink %s: %s", path, strerror(errno));
	return p;
}

static char want_pg[SIZE_GH], want_pv[SIZE_RO];

/* `<trigger>.pg` mapped private, its first page written, no fd, deleted. */
static char *make_private_ghost(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0640);
	char *p;

	wl_fill(want_pg, SIZE_GH, 0x64656c0f);
	if (fd < 0 || write(fd, want_pg, SIZE_GH) != SIZE_GH)
		wl_fail("%s: %s", path, strerror(errno));
	p = mmap(NULL, 4 * WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		wl_fail("mmap %s: %s", path, strerror(errno));
	for (size_t i = 0; i < WL_PAGE_SIZE; i += 64)
		want_pg[i] = p[i] = (char)~p[i];
	close(fd);
	if (unlink(path) < 0)
		wl_fail("unlink %s: %s", path, strerror(errno));
	return p;
}

/* fd 12's file mapped private, its first byte written. */
static char *map_private_ro(void)
{
	char *p = mmap(NULL, WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, 12, 0);

	if (p == MAP_FAILED)
		wl_fail("mmap private fd 12: %s", strerror(errno));
	memcpy(want_pv, want_ro, SIZE_RO);
	want_pv[0] = p[0] = (char)~p[0];
	return p;
}

static void check_private(char *pv, char *pg, const char *path_pg)
{
	struct stat st;
	char c = 0;

	if (fstat(12, &st) < 0)
		wl_fail("fstat 12: %s", strerror(errno));
	check_mapping(getpid(), pv, path_ro, st.st_ino, want_pv, SIZE_RO);
	if (pread(12, &c, 1, 0) != 1 || c != want_ro[0])
		wl_fail("fd 12's file took the private mapping's write");
	check_mapping(getpid(), pg, path_pg, 0, want_pg, SIZE_GH);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	wl_init("wl-deleted");
	path_rw = wl_side_path(".rw");
	path_ro = wl_side_path(".ro");
	wl_fill(want_rw, sizeof(want_rw), 0x64656c0a);
	wl_fill(want_ro, sizeof(want_ro), 0x64656c0b);
	wl_place_fd(open_deleted(path_rw, O_RDWR, want_rw, SIZE_RW, 0600), 10);
	if (dup2(10, 11) < 0)
		wl_fail("dup2: %s", strerror(errno));
	int ro = open_deleted(path_ro, O_RDONLY, want_ro, SIZE_RO, 0604);
	if (dup3(ro, 12, O_CLOEXEC) < 0)
		wl_fail("dup3: %s", strerror(errno));
	close(ro);
	if (lseek(10, 777, SEEK_SET) < 0 || lseek(12, 5, SEEK_SET) < 0)
		wl_fail("lseek: %s", strerror(errno));
	char *mapped = NULL, *ghost = NULL, *path_gh = wl_side_path(".gh");
	pid_t child = 0;
	if (!strcmp(mode, "mapped")) {
		mapped = mmap(NULL, WL_PAGE_SIZE, PROT_READ, MAP_SHARED, 12, 0);
		if (mapped == MAP_FAILED)
			wl_fail("mmap: %s", strerror(errno));
	}
	if (!strcmp(mode, "ghost")) {
		ghost = make_ghost(path_gh);
		child = fork_paused_child();
	}
	bool twice = !strcmp(mode, "twice"), big = !strcmp(mode, "big");
	char *pv = NULL, *pg = NULL, *path_pg = wl_side_path(".pg");
	if (!strcmp(mode, "private")) {
		pv = map_private_ro();
		pg = make_private_ghost(path_pg);
	}
	if (twice)
		make_tw();
	if (big)
		make_big();
	check();
	if (twice) {
		check_pair(10, 13, 777, 3);
		check_pair(14, 15, 10, 20);
	}
	if (big)
		check_big();
	struct stat st12;
	if (mapped && fstat(12, &st12) == 0)
		check_mapping(getpid(), mapped, path_ro, st12.st_ino, want_ro, SIZE_RO);
	if (ghost)
		check_mapping(child, ghost, path_gh,
		              check_mapping(getpid(), ghost, path_gh, 0, want_gh, SIZE_GH), NULL,
		              0);
	if (pv)
		check_private(pv, pg, path_pg);
	wl_ready();
	wl_await_trigger();
	check();
	if (twice) {
		check_pair(10, 13, 777, 3);
		check_pair(14, 15, 10, 20);
		check_pair_write(10, 13);
		check_pair_write(14, 15);
	}
	if (big)
		check_big();
	if (mapped && fstat(12, &st12) == 0)
		check_mapping(getpid(), mapped, path_ro, st12.st_ino, want_ro, SIZE_RO);
	if (ghost)
		check_mapping(child, ghost, path_gh,
		              check_mapping(getpid(), ghost, path_gh, 0, want_gh, SIZE_GH), NULL,
		              0);
	if (pv)
		check_private(pv, pg, path_pg);
	if (child)
		wl_end_paused_child(child);
	/* still one open file, and a file that takes writes */
	if (lseek(10, 50, SEEK_SET) != 50 || lseek(11, 0, SEEK_CUR) != 50)
		wl_fail("fd 11 is no longer fd 10's open file");
	char b[4] = "abc", g[4] = {0};
	if (pwrite(10, b, 3, SIZE_RW) != 3 || pread(11, g, 3, SIZE_RW) != 3 || memcmp(b, g, 3))
		wl_fail("write through fd 10: %s", strerror(errno));
	wl_pass();
}
