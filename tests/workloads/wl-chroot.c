/* wl-chroot [procfile|procfile-inside]: two children behind a changed root (needs CAP_SYS_CHROOT),
 * the parent outside. A: chdir to the trigger's directory, chroot("<trigger>.root-a") with no chdir
 * after it, so its cwd lies outside its root; fd 10 a file outside the root opened before the
 * chroot, fd 11
 * "/inside" created after it, and mapped (MAP_SHARED). B: chroot("<trigger>.root-b") then
 * chdir("/"); fd 10 a file outside the root opened before. Each records its root and cwd (device,
 * inode). After the trigger the parent closes the "go" pipe; each child checks its fds read their
 * contents, "/" and "." are the same directories, "/inside" opens the file of fd 11 and its
 * mapping reads it (A), the outside file is not reachable by its absolute path (both) but is
 * through the cwd outside the root (A). The parent reaps both and prints the verdict. With
 * "procfile" A also holds /proc/self/status (fd 13) from before its chroot: the engine refuses to
 * dump it (the restored task would reopen it inside its root), and the run goes on to PASS. With
 * "procfile-inside" A opens /proc/self/status after its chroot instead, through a procfs the
 * harness has mounted at "<trigger>.root-a/proc" (the dumper sees it there, not under /proc):
 * refused too. */
#include <fcntl.h>
#include <libgen.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "wl.h"

#define MSG_OUT "outside-file-contents"
#define MSG_IN  "inside-file-contents"

struct child_arg {
	const char *root;
	bool chdir_root;
	int procfile; /* 1: /proc/self/status before the chroot, 2: after it */
	int ready_w, go_r, go_w;
};

static bool same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int make_file(const char *path, const char *msg)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
		return -1;
	return fd;
}

/* wl_place_fd for a child: it explains on stderr, the parent prints the verdict. */
static void child_place(int fd, int at, const char *what)
{
	if (fd < 0 || (fd != at && (dup2(fd, at) < 0 || close(fd) < 0)))
		wl_child_fail("%s at fd %d: %s", what, at, strerror(errno));
}

static void check_contents(int fd, const char *msg)
{
	char buf[64] = {0};

	if (pread(fd, buf, sizeof(buf) - 1, 0) != (ssize_t)strlen(msg) || strcmp(buf, msg))
		wl_child_fail("fd %d reads \"%s\", want \"%s\"", fd, buf, msg);
}

static void check_dir(const char *path, const struct stat *want, const char *what)
{
	struct stat st;

	if (stat(path, &st) < 0)
		wl_child_fail("stat %s: %s", path, strerror(errno));
	if (!same_inode(&st, want))
		wl_child_fail("%s is inode %lu, was %lu", what, (unsigned long)st.st_ino,
		              (unsigned long)want->st_ino);
}

static int child_main(void *p)
{
	struct child_arg *a = p;
	const char *outside = wl_side_path(".outside");
	char *base = basename(wl_side_path(".outside"));
	struct stat root_st, cwd_st, in_st, st;
	char *inside_map = NULL;
	char c;

	close(a->go_w);
	child_place(open(outside, O_RDONLY | O_CLOEXEC), 10, outside);
	if (chdir(dirname(wl_side_path(""))) < 0)
		wl_child_fail("chdir: %s", strerror(errno));
	if (a->procfile == 1)
		child_place(open("/proc/self/status", O_RDONLY | O_CLOEXEC), 13,
		            "/proc/self/status");
	if (mkdir(a->root, 0755) < 0 && errno != EEXIST)
		wl_child_fail("mkdir %s: %s", a->root, strerror(errno));
	if (chroot(a->root) < 0)
		wl_child_fail("chroot %s: %s", a->root, strerror(errno));
	if (a->chdir_root && chdir("/") < 0)
		wl_child_fail("chdir /: %s", strerror(errno));
	/* a procfs mounted inside the root (by the harness, or nothing to open) */
	if (a->procfile == 2)
		child_place(open("/proc/self/status", O_RDONLY | O_CLOEXEC), 13,
		            "/proc/self/status");
	if (!a->chdir_root) {
		child_place(make_file("/inside", MSG_IN), 11, "/inside");
		/* mapped from inside the root: the dumper names it by its full path */
		inside_map = mmap(NULL, WL_PAGE_SIZE, PROT_READ, MAP_SHARED, 11, 0);
		if (inside_map == MAP_FAILED)
			wl_child_fail("mmap /inside: %s", strerror(errno));
	}
	if (stat("/", &root_st) < 0 || stat(".", &cwd_st) < 0 ||
	    (!a->chdir_root && fstat(11, &in_st) < 0))
		wl_child_fail("stat: %s", strerror(errno));
	if (write(a->ready_w, "x", 1) != 1)
		wl_child_fail("write: %s", strerror(errno));
	close(a->ready_w);
	/* blocks until the parent, triggered, closes the other end */
	if (read(a->go_r, &c, 1) != 0)
		wl_child_fail("go pipe: %s", strerror(errno));
	check_contents(10, MSG_OUT);
	check_dir("/", &root_st, "/");
	check_dir(".", &cwd_st, "the working directory");
	if (access(outside, F_OK) == 0 || errno != ENOENT)
		wl_child_fail("%s is reachable by its absolute path: the root is not %s", outside,
		              a->root);
	if (a->chdir_root)
		return 0;
	check_contents(11, MSG_IN);
	if (memcmp(inside_map, MSG_IN, strlen(MSG_IN)))
		wl_child_fail("the mapping of /inside reads \"%.20s\"", inside_map);
	int fd = open("/inside", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		wl_child_fail("open /inside: %s", strerror(errno));
	if (!same_inode(&st, &in_st))
		wl_child_fail("/inside is another file than fd 11");
	close(fd);
	/* the cwd outside the root still leads there */
	fd = open(base, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		wl_child_fail("open %s through the cwd: %s", base, strerror(errno));
	check_contents(fd, MSG_OUT);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	int ready[2], go[2];
	pid_t kids[2];
	char c;

	wl_init("wl-chroot");
	const char *arg = argc > 1 ? argv[1] : "";
	int procfile = !strcmp(arg, "procfile") ? 1 : !strcmp(arg, "procfile-inside") ? 2 : 0;
	int fd = make_file(wl_side_path(".outside"), MSG_OUT);
	if (fd < 0)
		wl_fail("create %s: %s", wl_side_path(".outside"), strerror(errno));
	close(fd);
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		wl_fail("pipe: %s", strerror(errno));
	struct child_arg args[2] = {
	    {wl_side_path(".root-a"), false, procfile, ready[1], go[0], go[1]},
	    {wl_side_path(".root-b"), true, 0, ready[1], go[0], go[1]},
	};
	for (int i = 0; i < 2; i++)
		kids[i] = wl_spawn(child_main, &args[i]);
	close(ready[1]);
	close(go[0]);
	for (int i = 0; i < 2; i++)
		if (read(ready[0], &c, 1) != 1)
			wl_fail("a child died before it was ready");
	close(ready[0]);
	wl_ready();
	wl_await_trigger();
	close(go[1]);
	for (int i = 0; i < 2; i++)
		wl_expect_exit(kids[i], 0);
	wl_pass();
}
