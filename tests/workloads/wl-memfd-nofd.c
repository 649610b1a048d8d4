/* wl-memfd-nofd: memfds the program only maps (memfd_create, write, mmap, close: no fd holds
 * them), in two tasks (a child forked after the mmaps inherits them and stays paused).
 * `private`: memfd "wl-nofd-p" (MFD_ALLOW_SEALING), 4 pages + 100 bytes of known data, mode 0640,
 * sealed F_SEAL_SHRINK | F_SEAL_GROW, mapped private twice: P1 read-write at offset 1 page
 * (3 pages; its first page written: a copy-on-write page), P2 read-only at offset 0 (1 page).
 * The child writes its own copy of P1's third page. After the trigger: both mappings at their
 * addresses, offsets and perms, named "/memfd:wl-nofd-p (deleted)", of one inode in both
 * tasks; P1 holds its copied page and the file's other pages, P2 the file's; the file itself
 * (read through /proc/self/map_files) is unchanged by the copies, of its size, mode and seals;
 * a write to the file (map_files opened read-write) shows in P1's page not copied, in the
 * parent and in the child, not in the copied ones.
 * `shared`: memfd "wl-nofd-s" (MFD_ALLOW_SEALING), 3 pages + 100 bytes, mode 0604, mapped
 * shared read-write at offset 1 page (S1, 2 pages, written through) and read-only at offset 0
 * (S2, 1 page), then sealed F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL.
 * After the trigger: the mappings at their addresses, offsets and perms, named
 * "/memfd:wl-nofd-s (deleted)", one inode in both tasks; the file of its size (not the
 * mappings' extent), mode and the four seals, holding the data written; a write through S1 is
 * read through the file and in the child's S1; a write through the file, a new shared writable
 * mapping, a truncation and a new seal are refused (EPERM).
 * Both: no fd of either task holds a memfd. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "wl.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define PG     WL_PAGE_SIZE
#define SIZE_P (4 * PG + 100)
#define SIZE_S (3 * PG + 100)

static char want_file[SIZE_P + 8]; /* the file's contents (wl_fill writes whole words) */
static char want_p1[3 * PG];       /* the parent's P1 (or S1) */
static char want_c1[3 * PG];       /* the child's */
static const char *name;
static size_t size;
static int seals;
static mode_t mode;
static bool shared;

struct map {
	char *p;
	size_t len;
	off_t off;
	const char *perms;
};
static struct map m1, m2;

/* A child that lives until it is killed (with its parent, if not before). */
static pid_t fork_paused_child(void)
{
	pid_t parent = getpid(), child = fork();

	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(1);
		/* the child's own copy of P1's third page */
		if (!shared)
			memset(m1.p + 2 * PG, 0x5c, PG);
		for (;;)
			pause();
	}
	wl_children[wl_nr_children++] = child;
	return child;
}

static char *map(struct map *m, size_t len, off_t off, int prot, int fd)
{
	m->len = len;
	m->off = off;
	m->perms = prot & PROT_WRITE ? (shared ? "rw-s" : "rw-p") : (shared ? "r--s" : "r--p");
	m->p = mmap(NULL, len, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd, off);
	if (m->p == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	return m->p;
}

static void make(void)
{
	int fd = memfd_create(name, MFD_ALLOW_SEALING);

	wl_fill(want_file, size, shared ? 0x6e6f66640aULL : 0x6e6f66640bULL);
	if (fd < 0 || write(fd, want_file, size) != (ssize_t)size || fchmod(fd, mode) < 0)
		wl_fail("memfd %s: %s", name, strerror(errno));
	if (shared) {
		map(&m1, 2 * PG, PG, PROT_READ | PROT_WRITE, fd);
		map(&m2, PG, 0, PROT_READ, fd);
		for (size_t i = 0; i < 2 * PG; i += 97)
			want_file[PG + i] = m1.p[i] = (char)~m1.p[i];
		memcpy(want_p1, want_file + PG, 2 * PG);
	} else {
		map(&m1, 3 * PG, PG, PROT_READ | PROT_WRITE, fd);
		map(&m2, PG, 0, PROT_READ, fd);
		memcpy(want_p1, want_file + PG, 3 * PG);
		for (size_t i = 0; i < PG; i += 64)
			want_p1[i] = m1.p[i] = (char)~m1.p[i];
		memcpy(want_c1, want_p1, sizeof(want_c1));
		memset(want_c1 + 2 * PG, 0x5c, PG);
	}
	if (fcntl(fd, F_ADD_SEALS, seals & ~F_SEAL_SEAL) < 0 ||
	    ((seals & F_SEAL_SEAL) && fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) < 0))
		wl_fail("F_ADD_SEALS %#x: %s", seals, strerror(errno));
	close(fd);
}

/* pid's mapping at m: its line of maps (start, perms, offset, name), its inode. */
static unsigned long check_maps(pid_t pid, const struct map *m)
{
	char path[64], line[512], perms[8], want[128];
	unsigned long start, end, off, ino;
	int at;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	if (!(f = fopen(path, "re")))
		wl_fail("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %7s %lx %*s %lu %n", &start, &end, perms, &off, &ino,
		           &at) == 5 &&
		    start == (unsigned long)m->p) {
			fclose(f);
			line[strcspn(line, "\n")] = 0;
			if (end - start != m->len || strcmp(perms, m->perms) ||
			    off != (unsigned long)m->off || strcmp(line + at, want))
				wl_fail("pid %d: mapping %s, want %zu bytes %s at offset %lx of %s",
				        (int)pid, line, m->len, m->perms, (unsigned long)m->off,
				        want);
			return ino;
		}
	fclose(f);
	wl_fail("pid %d: no mapping at %p", (int)pid, (void *)m->p);
}

/* The file behind mapping m (its map_files link: the file, not the mapping's copies). */
static int open_file(const struct map *m, int flags)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m->p,
	         (unsigned long)m->p + m->len);
	if ((fd = open(path, flags | O_CLOEXEC)) < 0)
		wl_fail("open %s: %s", path, strerror(errno));
	return fd;
}

static void check_file(void)
{
	static char got[SIZE_P];
	int fd = open_file(&m1, O_RDONLY);
	struct stat st;

	if (fstat(fd, &st) < 0)
		wl_fail("fstat: %s", strerror(errno));
	if ((size_t)st.st_size != size || (st.st_mode & 07777) != mode)
		wl_fail("file: size %lld mode %o, want %zu %o", (long long)st.st_size,
		        st.st_mode & 07777, size, mode);
	if (fcntl(fd, F_GET_SEALS) != seals)
		wl_fail("file: seals %#x, want %#x", fcntl(fd, F_GET_SEALS), seals);
	if (pread(fd, got, size, 0) != (ssize_t)size || memcmp(got, want_file, size))
		wl_fail("file: contents differ (the private copies are not the file's)");
	close(fd);
}

/* Neither task holds a memfd by an fd. */
static void check_no_fd(pid_t pid)
{
	char path[64], link[256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (!(d = opendir(path)))
		wl_fail("%s: %s", path, strerror(errno));
	while ((de = readdir(d))) {
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n > 0 && (link[n] = 0, !strncmp(link, "/memfd:", 7)))
			wl_fail("pid %d: fd %s holds %s", (int)pid, de->d_name, link);
	}
	closedir(d);
}

static void read_child(pid_t pid, const char *at, char *buf, size_t len)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    pread(fd, buf, len, (off_t)(uintptr_t)at) != (ssize_t)len)
		wl_fail("read %s: %s", path, strerror(errno));
	close(fd);
}

static void check(pid_t child)
{
	static char got[3 * PG];
	unsigned long ino = check_maps(getpid(), &m1);

	if (check_maps(getpid(), &m2) != ino || check_maps(child, &m1) != ino ||
	    check_maps(child, &m2) != ino)
		wl_fail("the mappings are not of one memfd in both tasks");
	if (memcmp(m1.p, want_p1, m1.len))
		wl_fail("mapping 1: contents differ");
	if (memcmp(m2.p, want_file, PG))
		wl_fail("mapping 2: contents differ");
	read_child(child, m1.p, got, m1.len);
	if (memcmp(got, shared ? want_p1 : want_c1, m1.len))
		wl_fail("the child's mapping 1: contents differ");
	check_file();
	check_no_fd(getpid());
	check_no_fd(child);
}

/* A write to the file shows in the pages not copied, of both tasks. */
static void check_private_write(pid_t child)
{
	int fd = open_file(&m2, O_RDWR);
	char c = (char)~want_file[2 * PG + 5], got = 0;

	if (pwrite(fd, &c, 1, 2 * PG + 5) != 1)
		wl_fail("write to the file: %s", strerror(errno));
	close(fd);
	want_file[2 * PG + 5] = want_p1[PG + 5] = want_c1[PG + 5] = c;
	read_child(child, m1.p + PG + 5, &got, 1);
	if (m1.p[PG + 5] != c || got != c)
		wl_fail("a write to the file is not seen in the pages not copied (%d %d)",
		        m1.p[PG + 5] == c, got == c);
	if (memcmp(m1.p, want_p1, PG))
		wl_fail("the copied page changed");
}

/* S1 writes the file, seen by the child; nothing new may write. */
static void check_shared_write(pid_t child)
{
	int fd = open_file(&m2, O_RDWR);
	char c = (char)~m1.p[7], got = 0;

	m1.p[7] = c;
	want_file[PG + 7] = c;
	read_child(child, m1.p + 7, &got, 1);
	if (got != c || pread(fd, &got, 1, PG + 7) != 1 || got != c)
		wl_fail("a write through mapping 1 is not read through the file and the child");
	if (pwrite(fd, &c, 1, 0) != -1 || errno != EPERM)
		wl_fail("a write to the file was not refused (F_SEAL_FUTURE_WRITE)");
	if (mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) != MAP_FAILED ||
	    errno != EPERM)
		wl_fail("a new shared writable mapping was not refused");
	if (ftruncate(fd, (off_t)size + 1) != -1 || errno != EPERM)
		wl_fail("a truncation was not refused (F_SEAL_GROW)");
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) != -1 || errno != EPERM)
		wl_fail("a new seal was not refused (F_SEAL_SEAL)");
	close(fd);
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "";

	wl_init("wl-memfd-nofd");
	shared = !strcmp(how, "shared");
	if (!shared && strcmp(how, "private"))
		wl_fail("usage: wl-memfd-nofd private|shared");
	name = shared ? "wl-nofd-s" : "wl-nofd-p";
	size = shared ? SIZE_S : SIZE_P;
	mode = shared ? 0604 : 0640;
	seals = shared ? F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL
	               : F_SEAL_SHRINK | F_SEAL_GROW;
	make();
	pid_t child = fork_paused_child();
	/* the child's copy is made before the checks read it */
	for (int i = 0; !shared && i < 500; i++) {
		char got = 0;
		read_child(child, m1.p + 2 * PG, &got, 1);
		if (got == 0x5c)
			break;
		wl_nap_ms(WL_POLL_MS);
	}
	check(child);
	wl_ready();
	wl_await_trigger();
	check(child);
	if (shared)
		check_shared_write(child);
	else
		check_private_write(child);
	check_file();
	wl_end_paused_child(child);
	wl_pass();
}
