/* wl-tree: a session with process groups across branches.
 *   L  the started process, session leader (already, or by setsid()): sid L, pgid L
 *   ├─ A  own process group (pgid A)
 *   │  └─ G  grandchild, in B's process group (pgid B)
 *   ├─ B  own process group (pgid B)
 *   └─ C  stays in L's group
 * Every member records ppid, pgid and sid before READY and checks them after the trigger (also
 * against the layout above; L not its ppid, which a restore may change), then exits 0 or 1; A
 * reaps G, L reaps A, B and C and prints PASS only if all exited 0. L names the members' pids on
 * stderr: "wl-tree: L=… A=… B=… C=… G=…". Started as a process group leader outside a session
 * of its own (an interactive shell's job), it cannot setsid() and fails at once. */
#include <fcntl.h>

#include "wl.h"

struct report {
	char name;
	pid_t pid;
};

struct member {
	char name;
	pid_t want_ppid, want_pgid, want_sid;
	pid_t ppid, pgid, sid;
};

static int setup_fd[2] = {-1, -1}; /* the pipe members report "set up" on */
static pid_t leader, pid_b;

static void report_ready(char name)
{
	struct report r = {.name = name, .pid = getpid()};

	close(setup_fd[0]);
	if (write(setup_fd[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
		wl_child_fail("%c: report: %s", name, strerror(errno));
	close(setup_fd[1]);
}

static void record(struct member *m)
{
	m->ppid = getppid();
	m->pgid = getpgid(0);
	m->sid = getsid(0);
}

/* NULL if ppid, pgid and sid are as recorded and as laid out, else what differs. */
static const char *verify(const struct member *m, char *buf, size_t len)
{
	pid_t ppid = getppid(), pgid = getpgid(0), sid = getsid(0);

	if (ppid != m->ppid || pgid != m->pgid || sid != m->sid)
		snprintf(buf, len, "%c: ppid/pgid/sid %d/%d/%d, were %d/%d/%d", m->name, (int)ppid,
		         (int)pgid, (int)sid, (int)m->ppid, (int)m->pgid, (int)m->sid);
	else if (ppid != m->want_ppid || pgid != m->want_pgid || sid != m->want_sid)
		snprintf(buf, len, "%c: ppid/pgid/sid %d/%d/%d, want %d/%d/%d", m->name, (int)ppid,
		         (int)pgid, (int)sid, (int)m->want_ppid, (int)m->want_pgid,
		         (int)m->want_sid);
	else
		return NULL;
	return buf;
}

/* The life of every member but L: record, report, wait for the trigger, verify. */
static int member_main(struct member *m, pid_t child)
{
	char buf[160];
	const char *why;

	record(m);
	report_ready(m->name);
	wl_child_await_trigger();
	why = verify(m, buf, sizeof(buf));
	if (why)
		wl_child_fail("%s", why);
	if (child > 0) {
		why = wl_reap(child, 0, buf, sizeof(buf));
		if (why)
			wl_child_fail("%c: %s", m->name, why);
	}
	return 0;
}

static int g_main(void *arg)
{
	struct member m = {
	    .name = 'G', .want_ppid = getppid(), .want_pgid = pid_b, .want_sid = leader};

	if (setpgid(0, pid_b) < 0)
		wl_child_fail("G: setpgid: %s", strerror(errno));
	return member_main(&m, 0);
}

static int a_main(void *arg)
{
	struct member m = {
	    .name = 'A', .want_ppid = leader, .want_pgid = getpid(), .want_sid = leader};
	pid_t g;

	if (setpgid(0, 0) < 0)
		wl_child_fail("A: setpgid: %s", strerror(errno));
	g = wl_spawn(g_main, NULL);
	setpgid(g, pid_b); /* also here, so it holds before A reports (one of the two wins) */
	return member_main(&m, g);
}

static int b_main(void *arg)
{
	struct member m = {
	    .name = 'B', .want_ppid = leader, .want_pgid = getpid(), .want_sid = leader};

	if (setpgid(0, 0) < 0)
		wl_child_fail("B: setpgid: %s", strerror(errno));
	return member_main(&m, 0);
}

static int c_main(void *arg)
{
	struct member m = {
	    .name = 'C', .want_ppid = leader, .want_pgid = leader, .want_sid = leader};

	return member_main(&m, 0);
}

/* Reads the four "set up" reports and names the members on stderr. */
static void collect_reports(int rfd)
{
	pid_t pids[26] = {0};
	struct report r;

	for (int i = 0; i < 4; i++) {
		if (read(rfd, &r, sizeof(r)) != (ssize_t)sizeof(r) || r.name < 'A' || r.name > 'Z')
			wl_fail("a member of the tree did not get set up");
		pids[r.name - 'A'] = r.pid;
	}
	fprintf(stderr, "wl-tree: L=%d A=%d B=%d C=%d G=%d\n", (int)leader, (int)pids[0],
	        (int)pids[1], (int)pids[2], (int)pids['G' - 'A']);
}

int main(void)
{
	struct member l = {.name = 'L', .want_pgid = getpid(), .want_sid = getpid()};
	const char *names = "ABC";
	pid_t kids[3];
	char buf[160];
	const char *why;

	wl_init("wl-tree");
	if (getsid(0) != getpid() && setsid() < 0)
		wl_fail("setsid: %s (start it as a session leader, or as no group's leader)",
		        strerror(errno));
	leader = getpid();
	if (pipe2(setup_fd, O_CLOEXEC) < 0)
		wl_fail("pipe: %s", strerror(errno));
	/* B first: G joins B's group, which must exist by then. */
	kids[1] = pid_b = wl_spawn(b_main, NULL);
	setpgid(pid_b, pid_b);
	kids[0] = wl_spawn(a_main, NULL);
	setpgid(kids[0], kids[0]);
	kids[2] = wl_spawn(c_main, NULL);
	/* On failure kill the groups of A and B too, which hold G. */
	wl_children[wl_nr_children++] = -kids[0];
	wl_children[wl_nr_children++] = -pid_b;
	close(setup_fd[1]);
	collect_reports(setup_fd[0]);
	close(setup_fd[0]);
	record(&l);
	wl_ready();

	wl_await_trigger();
	l.want_ppid = l.ppid = getppid();
	why = verify(&l, buf, sizeof(buf));
	if (why)
		wl_fail("%s", why);
	for (int i = 0; i < 3; i++) {
		why = wl_reap(kids[i], 0, buf, sizeof(buf));
		if (why)
			wl_fail("member %c: %s", names[i], why);
	}
	wl_pass();
}
