/* wl-deleted: regular files deleted while open, at fixed fds:
 *   10, 11  `<trigger>.rw`, read-write, 10000 bytes of known data, position 777, O_APPEND off;
 *           11 is a dup of 10 (one open file: a seek through 10 moves 11)
 *   12      `<trigger>.ro`, read-only, 3000 bytes, mode 0604, position 5, FD_CLOEXEC
 * both unlinked after they were opened. After the trigger: the links read "<path> (deleted)",
 * no link left, the same sizes, modes, contents, positions and flags, 10 and 11 still one open
 * file, and a write through 10 lands in the file. With `mapped`, the .ro file is also mapped
 * shared; with `twice`, the .rw file is opened a second time through /proc/self/fd/10 at fd 13:
 * the engine refuses both dumps (by name), and the run goes on to PASS. */
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
	if (!strcmp(mode, "mapped") &&
	    mmap(NULL, WL_PAGE_SIZE, PROT_READ, MAP_SHARED, 12, 0) == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	if (!strcmp(mode, "twice"))
		wl_place_fd(open("/proc/self/fd/10", O_RDONLY), 13);
	check();
	wl_ready();
	wl_await_trigger();
	check();
	/* still one open file, and a file that takes writes */
	if (lseek(10, 50, SEEK_SET) != 50 || lseek(11, 0, SEEK_CUR) != 50)
		wl_fail("fd 11 is no longer fd 10's open file");
	char b[4] = "abc", g[4] = {0};
	if (pwrite(10, b, 3, SIZE_RW) != 3 || pread(11, g, 3, SIZE_RW) != 3 || memcmp(b, g, 3))
		wl_fail("write through fd 10: %s", strerror(errno));
	wl_pass();
}
