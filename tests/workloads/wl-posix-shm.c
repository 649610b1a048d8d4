/* wl-posix-shm: POSIX shared memory under /dev/shm (shm_open, three pages, MAP_SHARED),
 * mapped by us and by a child (inherited) and held by an fd; a pattern written through the
 * mapping before READY. After the trigger: the pattern reads back through the mapping and
 * through the fd (pread: one object), fstat shows the size and the path still names the same
 * inode; the object is still shared: a word we set is seen by the child, which answers in
 * another page, and a pwrite through the fd shows in our mapping. The object is removed at the
 * end. With "unlinked" it is shm_unlink'd before READY (mapped, and held by no fd): after the
 * trigger the mapping is still of a file named "/dev/shm/NAME (deleted)" in /proc/self/maps
 * (the restore's ghost file), with the pattern. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "wl.h"

#define PAGES 3
#define LEN   (PAGES * WL_PAGE_SIZE)
#define FLAG  (WL_PAGE_SIZE / 8)     /* word of page 1: set by us */
#define ACK   (2 * WL_PAGE_SIZE / 8) /* word of page 2: the child's answer */

static uint64_t pattern(size_t i)
{
	return 0x9e3779b97f4a7c15ULL * (i + 1);
}

static void child_loop(volatile uint64_t *m)
{
	for (unsigned long i = 0; i < 100 * wl_max_polls(); i++) {
		if (m[FLAG] == 2) {
			m[ACK] = 3;
			_exit(0);
		}
		wl_nap_ms(WL_POLL_MS);
	}
	wl_child_fail("the flag never came");
}

/* The mapping at m: "/dev/shm/NAME (deleted)", the pattern in it. */
static void check_unlinked(volatile uint64_t *m, const char *name)
{
	char line[512], want[128];
	unsigned long start;
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		wl_fail("maps: %s", strerror(errno));
	snprintf(want, sizeof(want), " /dev/shm%s (deleted)\n", name);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-", &start) == 1 && start == (unsigned long)m) {
			found = strstr(line, want) != NULL;
			break;
		}
	fclose(f);
	if (!found)
		wl_fail("the mapping at %p is not of /dev/shm%s (deleted): %s", (void *)m, name,
		        line);
	for (size_t i = 0; i < WL_PAGE_SIZE / 8; i++)
		if (m[i] != pattern(i))
			wl_fail("word %zu of the unlinked mapping: %#llx", i,
			        (unsigned long long)m[i]);
}

int main(int argc, char **argv)
{
	bool unlinked = argc > 1 && !strcmp(argv[1], "unlinked");
	char name[64];
	struct stat st0, st;
	int fd;

	wl_init("wl-posix-shm");
	snprintf(name, sizeof(name), "/wl-posix-shm-%d", (int)getpid());
	fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0)
		wl_fail("shm_open %s: %s", name, strerror(errno));
	if (ftruncate(fd, LEN) < 0 || fstat(fd, &st0) < 0)
		wl_fail("ftruncate: %s", strerror(errno));
	volatile uint64_t *m = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	for (size_t i = 0; i < WL_PAGE_SIZE / 8; i++)
		m[i] = pattern(i);
	if (unlinked) {
		close(fd);
		shm_unlink(name);
		wl_ready();
		wl_await_trigger();
		check_unlinked(m, name);
		wl_pass();
	}
	pid_t pid = fork();
	if (pid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (pid == 0)
		child_loop(m);
	wl_children[wl_nr_children++] = pid;
	wl_ready();
	wl_await_trigger();

	for (size_t i = 0; i < WL_PAGE_SIZE / 8; i++)
		if (m[i] != pattern(i))
			wl_fail("word %zu of the mapping: %#llx, want %#llx", i,
			        (unsigned long long)m[i], (unsigned long long)pattern(i));
	uint64_t w;
	if (pread(fd, &w, sizeof(w), 8 * 5) != sizeof(w) || w != pattern(5))
		wl_fail("word 5 through the fd: %#llx, want %#llx", (unsigned long long)w,
		        (unsigned long long)pattern(5));
	if (fstat(fd, &st) < 0 || st.st_size != LEN)
		wl_fail("fstat: size %lld, want %lu", (long long)st.st_size, (unsigned long)LEN);
	char path[96];
	struct stat pst;
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	if (stat(path, &pst) < 0 || pst.st_ino != st.st_ino || pst.st_dev != st.st_dev)
		wl_fail("%s is not the object the fd holds", path);
	w = 0x5151;
	if (pwrite(fd, &w, sizeof(w), 8 * 7) != sizeof(w) || m[7] != 0x5151)
		wl_fail("a pwrite through the fd does not show in the mapping");
	m[FLAG] = 2;
	for (unsigned long i = 0; m[ACK] != 3; i++) {
		if (i > wl_max_polls())
			wl_fail("the child never answered through the shared memory");
		wl_nap_ms(WL_POLL_MS);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		wl_fail("child: status %#x", status);
	wl_children[0] = 0;
	shm_unlink(name);
	wl_pass();
}
