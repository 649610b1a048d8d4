/* wl-inotify: an inotify instance (IN_NONBLOCK) with three watches, made in this order:
 *   wd 1  <trigger>.dir, IN_CREATE | IN_DELETE
 *   wd 2  <trigger>.file, IN_MODIFY | IN_ONESHOT
 *   wd 3  <trigger>.other, IN_ATTRIB
 * After the trigger: the watches in fdinfo (wd, ino, mask) are as before; creating a file in the
 * directory gives IN_CREATE on wd 1 with its name; writing the file gives IN_MODIFY on wd 2
 * then IN_IGNORED (oneshot); a chmod of the other gives IN_ATTRIB on wd 3; nothing else.
 * With "removed" wd 1 is removed before READY (the numbering cannot be made again, which the
 * dump refuses); with "pending" an event is left unread (refused). Both PASS after the trigger. */
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "wl.h"

/* The watch lines of fdinfo, sorted. */
static void watches(int fd, char *out, size_t len)
{
	wl_fdinfo_lines(fd, "inotify wd:", " ignored_mask:", out, len);
}

/* The next event, or wd 0 when there is none within 500 ms. */
static int next_event(int fd, uint32_t *mask, char *name, size_t len)
{
	static char buf[4096] __attribute__((aligned(8)));
	static ssize_t have, at;

	for (int i = 0; at >= have && i < 50; i++) {
		at = 0;
		have = read(fd, buf, sizeof(buf));
		if (have < 0 && errno != EAGAIN)
			wl_fail("read: %s", strerror(errno));
		if (have <= 0)
			wl_nap_ms(10);
	}
	if (at >= have)
		return 0;
	struct inotify_event *ev = (struct inotify_event *)(buf + at);
	at += (ssize_t)sizeof(*ev) + ev->len;
	*mask = ev->mask;
	snprintf(name, len, "%s", ev->len ? ev->name : "");
	return ev->wd;
}

static void expect(int fd, int wd, uint32_t mask, const char *name)
{
	char got_name[256];
	uint32_t got_mask = 0;
	int got = next_event(fd, &got_mask, got_name, sizeof(got_name));

	if (got != wd || got_mask != mask || strcmp(got_name, name))
		wl_fail("event wd %d mask %#x name \"%s\", want wd %d mask %#x name \"%s\"", got,
		        got_mask, got_name, wd, mask, name);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	char *dir, *file, *other, before[2048], after[2048], *made;
	int fd, wfd;

	wl_init("wl-inotify");
	dir = wl_side_path(".dir");
	file = wl_side_path(".file");
	other = wl_side_path(".other");
	if (mkdir(dir, 0755) < 0 || (wfd = open(file, O_CREAT | O_WRONLY, 0644)) < 0 ||
	    close(open(other, O_CREAT | O_WRONLY, 0644)) < 0)
		wl_fail("setup: %s", strerror(errno));
	fd = inotify_init1(IN_NONBLOCK);
	if (fd < 0)
		wl_fail("inotify_init1: %s", strerror(errno));
	if (inotify_add_watch(fd, dir, IN_CREATE | IN_DELETE) != 1 ||
	    inotify_add_watch(fd, file, IN_MODIFY | IN_ONESHOT) != 2 ||
	    inotify_add_watch(fd, other, IN_ATTRIB) != 3)
		wl_fail("inotify_add_watch: %s", strerror(errno));
	if (!strcmp(mode, "removed")) {
		uint32_t m;
		char n[256];
		inotify_rm_watch(fd, 1);
		next_event(fd, &m, n, sizeof(n));
	}
	if (!strcmp(mode, "pending") && chmod(other, 0600) < 0)
		wl_fail("chmod: %s", strerror(errno));
	watches(fd, before, sizeof(before));
	wl_ready();
	wl_await_trigger();
	if (*mode)
		wl_pass();

	watches(fd, after, sizeof(after));
	if (strcmp(before, after))
		wl_fail("watches were\n%snow\n%s", before, after);
	if (asprintf(&made, "%s/new", dir) < 0 || close(open(made, O_CREAT | O_WRONLY, 0644)) < 0)
		wl_fail("create: %s", strerror(errno));
	expect(fd, 1, IN_CREATE, "new");
	if (write(wfd, "x", 1) != 1)
		wl_fail("write: %s", strerror(errno));
	expect(fd, 2, IN_MODIFY, "");
	expect(fd, 2, IN_IGNORED, "");
	if (chmod(other, 0600) < 0)
		wl_fail("chmod: %s", strerror(errno));
	expect(fd, 3, IN_ATTRIB, "");
	expect(fd, 0, 0, "");
	wl_pass();
}
