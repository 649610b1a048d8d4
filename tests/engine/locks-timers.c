/* A task holding one state the dump must refuse, named by argv[1]: "lease PATH" (a read
 * lease), "mapped-ofd PATH" (an OFD lock whose fd is closed, kept by a shared mapping),
 * "shared-files PATH" (a POSIX lock, and a child sharing the fd table: CLONE_FILES),
 * "cpuclock" (a POSIX timer on its child's CPU clock). Prints READY, then waits. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	printf("FAIL: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void lease(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT, 0600);

	if (fd < 0 || close(fd) < 0 || (fd = open(path, O_RDONLY)) < 0)
		die("open");
	if (fcntl(fd, F_SETLEASE, F_RDLCK) < 0)
		die("F_SETLEASE");
}

static void mapped_ofd(const char *path)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	int fd = open(path, O_RDWR | O_CREAT, 0600);

	if (fd < 0 || ftruncate(fd, 4096) < 0)
		die("open");
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		die("F_OFD_SETLK");
	if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED)
		die("mmap");
	close(fd);
}

static int idle(void *arg)
{
	for (;;)
		pause();
	return 0;
}

static void shared_files(const char *path)
{
	static char stack[64 * 1024] __attribute__((aligned(16)));
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	int fd = open(path, O_RDWR | O_CREAT, 0600);

	if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
		die("F_SETLK");
	if (clone(idle, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL) < 0)
		die("clone");
}

static void cpuclock(void)
{
	struct sigevent sev = {.sigev_notify = SIGEV_NONE};
	struct itimerspec far = {.it_value = {1000, 0}};
	clockid_t clock;
	timer_t id;
	pid_t child = fork();

	if (child < 0)
		die("fork");
	if (child == 0) {
		for (;;)
			pause();
	}
	if (clock_getcpuclockid(child, &clock) || timer_create(clock, &sev, &id) < 0 ||
	    timer_settime(id, 0, &far, NULL) < 0)
		die("timer on the child's CPU clock");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "lease"))
		lease(argv[2]);
	else if (argc == 3 && !strcmp(argv[1], "mapped-ofd"))
		mapped_ofd(argv[2]);
	else if (argc == 3 && !strcmp(argv[1], "shared-files"))
		shared_files(argv[2]);
	else if (argc == 2 && !strcmp(argv[1], "cpuclock"))
		cpuclock();
	else
		return 2;
	printf("READY\n");
	for (;;)
		pause();
}
