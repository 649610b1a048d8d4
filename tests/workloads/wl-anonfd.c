/* wl-anonfd MODE [probe]: holds at fd 30 an anonymous-inode object no kind of the engine
 * restores, which the dump must refuse by name while the workload runs on:
 *   fanotify    fanotify_init (notification class)
 *   userfaultfd userfaultfd (UFFD_USER_MODE_ONLY where needed)
 *   io_uring    io_uring_setup with 4 entries, rings not mapped
 *   perf_event  perf_event_open of a software counter (task clock) of itself
 *   bpf-map     bpf(BPF_MAP_CREATE) of a one-entry array
 * After the trigger the object is still at fd 30 (its link unchanged): PASS. With "probe" it
 * only says whether this kernel and these privileges let it make the object: exit 0, or
 * "SKIP: reason" and exit 77. */
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <sys/fanotify.h>
#include <sys/syscall.h>

#include "wl.h"

#define AT 30

static int make_fanotify(void)
{
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC, O_RDONLY);

	/* unprivileged fanotify (Linux 5.13) takes FID reporting only */
	if (fd < 0 && errno == EPERM)
		fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC, O_RDONLY);
	return fd;
}

static int make_userfaultfd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	return fd;
}

static int make_io_uring(void)
{
	struct io_uring_params p = {0};

	return (int)syscall(SYS_io_uring_setup, 4, &p);
}

static int make_perf_event(void)
{
	struct perf_event_attr a = {.type = PERF_TYPE_SOFTWARE,
	                            .size = sizeof(a),
	                            .config = PERF_COUNT_SW_TASK_CLOCK,
	                            .exclude_kernel = 1,
	                            .exclude_hv = 1};

	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static int make_bpf_map(void)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 8;
	a.max_entries = 1;
	return (int)syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
}

static const struct {
	const char *mode;
	int (*make)(void);
} modes[] = {
    {"fanotify", make_fanotify},     {"userfaultfd", make_userfaultfd}, {"io_uring", make_io_uring},
    {"perf_event", make_perf_event}, {"bpf-map", make_bpf_map},
};

static void link_of(char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", AT);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		wl_fail("%s: %s", path, strerror(errno));
	buf[n] = 0;
}

int main(int argc, char **argv)
{
	char before[256], after[256];
	int fd = -1;
	bool known = false;

	if (argc < 2)
		wl_fail("usage: wl-anonfd MODE [probe]");
	for (size_t i = 0; i < WL_ARRAY_SIZE(modes); i++)
		if (!strcmp(argv[1], modes[i].mode)) {
			known = true;
			fd = modes[i].make();
		}
	if (!known)
		wl_fail("unknown mode %s", argv[1]);
	if (argc > 2) {
		if (fd >= 0)
			return 0;
		printf("SKIP: %s: %s\n", argv[1], strerror(errno));
		return 77;
	}
	wl_init("wl-anonfd");
	if (fd < 0)
		wl_fail("%s: %s", argv[1], strerror(errno));
	if (dup3(fd, AT, O_CLOEXEC) != AT)
		wl_fail("dup3: %s", strerror(errno));
	close(fd);
	link_of(before, sizeof(before));
	wl_ready();
	wl_await_trigger();
	link_of(after, sizeof(after));
	if (strcmp(before, after))
		wl_fail("fd %d is now %s, was %s", AT, after, before);
	wl_pass();
}
