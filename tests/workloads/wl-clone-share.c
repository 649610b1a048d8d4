/* wl-clone-share fs|files|vm: a child made by clone() sharing, with us, our cwd and root
 * (CLONE_FS), our fd table (CLONE_FILES) or our memory (CLONE_VM), not a thread. After the
 * trigger the sharing must hold: we chdir to "<trigger>.dir" and the child must find itself
 * there (fs), we open a file and the child must see its fd (files), the child sees a flag we set
 * and we see its answer (vm). The engine refuses to dump any of them, naming the sharing, and the
 * run goes on to PASS. */
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "wl.h"

#define STACK_SIZE (256 * 1024)

static int mode; /* CLONE_FS, CLONE_FILES or CLONE_VM */
static int go_pipe[2], answer_pipe[2];
static volatile int vm_go, vm_answer;

/* fs and files: the child waits for "go", checks and answers with one byte. */
static int fd_child(void *arg)
{
	const char *dir = arg;
	struct stat want, now;
	char c = 'n';

	if (read(go_pipe[0], &c, 1) != 1)
		_exit(2);
	if (mode == CLONE_FS)
		c = stat(dir, &want) == 0 && stat(".", &now) == 0 && want.st_ino == now.st_ino &&
		            want.st_dev == now.st_dev
		        ? 'y'
		        : 'n';
	else
		c = fcntl(100, F_GETFD) >= 0 ? 'y' : 'n';
	if (write(answer_pipe[1], &c, 1) != 1)
		_exit(2);
	_exit(0);
}

/* vm: raw syscalls only, as the child shares our thread-local errno */
static int vm_child(void *arg)
{
	struct timespec ts = {0, 10 * 1000 * 1000};

	(void)arg;
	while (!vm_go)
		syscall(SYS_nanosleep, &ts, NULL);
	vm_answer = 1;
	syscall(SYS_exit, 0);
	return 0;
}

static void check_shared(pid_t child, const char *dir)
{
	char c = 'x';

	if (mode == CLONE_VM) {
		vm_go = 1;
		for (unsigned long polls = wl_max_polls(); !vm_answer && polls; polls--)
			wl_nap_ms(WL_POLL_MS);
		if (!vm_answer)
			wl_fail("the child did not see our memory (CLONE_VM)");
		wl_expect_exit(child, 0);
		return;
	}
	if (mode == CLONE_FS && chdir(dir) < 0)
		wl_fail("chdir %s: %s", dir, strerror(errno));
	if (mode == CLONE_FILES)
		wl_place_fd(open("/dev/null", O_RDONLY | O_CLOEXEC), 100);
	if (write(go_pipe[1], "g", 1) != 1 || read(answer_pipe[0], &c, 1) != 1)
		wl_fail("go/answer pipe: %s", strerror(errno));
	if (c != 'y')
		wl_fail("the child does not share our %s", mode == CLONE_FS ? "cwd" : "fd table");
	wl_expect_exit(child, 0);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	char *stack = malloc(STACK_SIZE), *dir;
	pid_t child;

	wl_init("wl-clone-share");
	mode = !strcmp(what, "fs")      ? CLONE_FS
	       : !strcmp(what, "files") ? CLONE_FILES
	       : !strcmp(what, "vm")    ? CLONE_VM
	                                : 0;
	if (!mode)
		wl_fail("usage: wl-clone-share fs|files|vm");
	dir = wl_side_path(".dir");
	if (!stack || mkdir(dir, 0755) < 0 || pipe(go_pipe) < 0 || pipe(answer_pipe) < 0)
		wl_fail("set-up: %s", strerror(errno));
	fflush(NULL);
	child =
	    clone(mode == CLONE_VM ? vm_child : fd_child, stack + STACK_SIZE, mode | SIGCHLD, dir);
	if (child < 0)
		wl_fail("clone: %s", strerror(errno));
	wl_children[wl_nr_children++] = child;
	wl_ready();
	wl_await_trigger();
	check_shared(child, dir);
	wl_pass();
}
