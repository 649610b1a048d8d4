/* wl-signals: signal state of every kind. Before READY:
 *   SIGUSR1     SA_SIGINFO|SA_RESTART handler, sa_mask {SIGUSR2, SIGTERM}
 *   SIGUSR2     SA_ONSTACK handler, with a sigaltstack set
 *   SIGWINCH    handler; blocked, raised: pending
 *   SIGRTMIN+3  SA_SIGINFO handler; blocked, queued twice (values 1234, 5678): pending
 *   SIGHUP      ignored;  SIGINT, SIGQUIT: default action, blocked, not pending
 * After the trigger: every sigaction, the mask, the pending set and the altstack are as recorded
 * (and as set up); on unblock the pending signals arrive (the real-time one twice, in order,
 * with its values); SIGUSR1 and SIGUSR2 sent to ourselves reach their handlers, the one with
 * SIGUSR2 blocked, the other on the alternate stack. */
#include <sys/mman.h>

#include "wl.h"

#define ALTSTACK_SIZE (64 * 1024)
#define RT_SIG        (SIGRTMIN + 3)

static const int rt_values[] = {1234, 5678};

static volatile sig_atomic_t usr1_count, usr1_code, usr1_pid, usr1_usr2_blocked;
static volatile sig_atomic_t usr2_count, usr2_on_altstack;
static volatile sig_atomic_t winch_count;
static volatile sig_atomic_t rt_count, rt_code, rt_pid, rt_value[4];
static unsigned char *altstack;

static struct {
	struct sigaction act[_NSIG];
	sigset_t mask, pending;
	stack_t ss;
} rec;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	sigset_t now;

	usr1_count++;
	usr1_code = si->si_code;
	usr1_pid = si->si_pid;
	sigprocmask(SIG_BLOCK, NULL, &now);
	usr1_usr2_blocked = sigismember(&now, SIGUSR2) == 1;
}

static void on_usr2(int sig)
{
	unsigned char local;

	usr2_count++;
	usr2_on_altstack = &local >= altstack && &local < altstack + ALTSTACK_SIZE;
}

static void on_winch(int sig)
{
	winch_count++;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	if (rt_count < (sig_atomic_t)WL_ARRAY_SIZE(rt_value))
		rt_value[rt_count] = si->si_value.sival_int;
	rt_count++;
	rt_code = si->si_code;
	rt_pid = si->si_pid;
}

static void set_action(int sig, void (*fn)(int), void (*info_fn)(int, siginfo_t *, void *),
                       int flags, const int *mask_sigs, size_t nr_mask)
{
	struct sigaction sa = {.sa_flags = flags};

	if (info_fn)
		sa.sa_sigaction = info_fn;
	else
		sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < nr_mask; i++)
		sigaddset(&sa.sa_mask, mask_sigs[i]);
	if (sigaction(sig, &sa, NULL) < 0)
		wl_fail("sigaction %d: %s", sig, strerror(errno));
}

static void setup(void)
{
	static const int usr1_mask[] = {SIGUSR2, SIGTERM};
	stack_t ss = {.ss_size = ALTSTACK_SIZE};
	sigset_t block;
	union sigval v;

	set_action(SIGUSR1, NULL, on_usr1, SA_SIGINFO | SA_RESTART, usr1_mask, 2);
	set_action(SIGUSR2, on_usr2, NULL, SA_ONSTACK, NULL, 0);
	set_action(SIGWINCH, on_winch, NULL, 0, NULL, 0);
	set_action(RT_SIG, NULL, on_rt, SA_SIGINFO, NULL, 0);
	set_action(SIGHUP, SIG_IGN, NULL, 0, NULL, 0);
	/* A shell may start us with these ignored; blocked with the default action, one sent from
	 * outside stays pending and shows. */
	set_action(SIGINT, SIG_DFL, NULL, 0, NULL, 0);
	set_action(SIGQUIT, SIG_DFL, NULL, 0, NULL, 0);

	altstack =
	    mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (altstack == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	ss.ss_sp = altstack;
	if (sigaltstack(&ss, NULL) < 0)
		wl_fail("sigaltstack: %s", strerror(errno));

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGWINCH);
	sigaddset(&block, RT_SIG);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGWINCH);
	for (size_t i = 0; i < WL_ARRAY_SIZE(rt_values); i++) {
		v.sival_int = rt_values[i];
		if (sigqueue(getpid(), RT_SIG, v) < 0)
			wl_fail("sigqueue: %s", strerror(errno));
	}
}

static bool catchable(int sig)
{
	return sig != SIGKILL && sig != SIGSTOP && (sig < 32 || sig >= SIGRTMIN);
}

static void record(void)
{
	memset(&rec, 0, sizeof(rec));
	for (int sig = 1; sig < _NSIG; sig++)
		if (catchable(sig))
			sigaction(sig, NULL, &rec.act[sig]);
	sigprocmask(SIG_BLOCK, NULL, &rec.mask);
	sigpending(&rec.pending);
	sigaltstack(NULL, &rec.ss);
}

/* The first signal whose membership differs between a and b, or 0. */
static int set_diff(const sigset_t *a, const sigset_t *b)
{
	for (int sig = 1; sig < _NSIG; sig++)
		if (catchable(sig) && sigismember(a, sig) != sigismember(b, sig))
			return sig;
	return 0;
}

static void check_recorded(void)
{
	struct sigaction now;
	sigset_t set;
	stack_t ss;
	int sig;

	for (sig = 1; sig < _NSIG; sig++) {
		if (!catchable(sig))
			continue;
		memset(&now, 0, sizeof(now));
		sigaction(sig, NULL, &now);
		if (now.sa_handler != rec.act[sig].sa_handler)
			wl_fail("signal %d: another handler (%s)", sig, strsignal(sig));
		if (now.sa_flags != rec.act[sig].sa_flags)
			wl_fail("signal %d: flags %#x, were %#x", sig, (unsigned)now.sa_flags,
			        (unsigned)rec.act[sig].sa_flags);
		if (set_diff(&now.sa_mask, &rec.act[sig].sa_mask))
			wl_fail("signal %d: sa_mask differs at signal %d", sig,
			        set_diff(&now.sa_mask, &rec.act[sig].sa_mask));
	}
	sigprocmask(SIG_BLOCK, NULL, &set);
	sig = set_diff(&set, &rec.mask);
	if (sig)
		wl_fail("blocked mask differs at signal %d (%s)", sig, strsignal(sig));
	sigpending(&set);
	sig = set_diff(&set, &rec.pending);
	if (sig)
		wl_fail("pending signals differ at signal %d (%s)", sig, strsignal(sig));
	if (sigaltstack(NULL, &ss) < 0 || ss.ss_sp != rec.ss.ss_sp ||
	    ss.ss_size != rec.ss.ss_size || ss.ss_flags != rec.ss.ss_flags)
		wl_fail("sigaltstack differs");
}

/* What was set up, independent of what was recorded. */
static void check_expected(void)
{
	int mask_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_NODEFER | SA_RESETHAND;
	sigset_t set;

	if (rec.act[SIGUSR1].sa_sigaction != on_usr1 ||
	    (rec.act[SIGUSR1].sa_flags & mask_flags) != (SA_SIGINFO | SA_RESTART) ||
	    !sigismember(&rec.act[SIGUSR1].sa_mask, SIGUSR2) ||
	    !sigismember(&rec.act[SIGUSR1].sa_mask, SIGTERM))
		wl_fail("SIGUSR1 action is not as set up");
	if (rec.act[SIGUSR2].sa_handler != on_usr2 ||
	    (rec.act[SIGUSR2].sa_flags & mask_flags) != SA_ONSTACK)
		wl_fail("SIGUSR2 action is not as set up");
	if (rec.act[SIGHUP].sa_handler != SIG_IGN)
		wl_fail("SIGHUP is not ignored");
	if (rec.ss.ss_sp != altstack || rec.ss.ss_size != ALTSTACK_SIZE || rec.ss.ss_flags)
		wl_fail("sigaltstack is not as set up");
	sigpending(&set);
	for (int sig = 1; sig < _NSIG; sig++) {
		bool want = sig == SIGWINCH || sig == RT_SIG;

		if (catchable(sig) && sigismember(&set, sig) != want)
			wl_fail("signal %d (%s) is %spending", sig, strsignal(sig),
			        want ? "not " : "");
	}
	if (usr1_count || usr2_count || winch_count || rt_count)
		wl_fail("a signal arrived before it was sent or unblocked (usr1 %d, usr2 %d, "
		        "winch %d, rt %d)",
		        (int)usr1_count, (int)usr2_count, (int)winch_count, (int)rt_count);
}

static void check_delivery(void)
{
	sigset_t unblock;

	sigemptyset(&unblock);
	sigaddset(&unblock, SIGWINCH);
	sigaddset(&unblock, RT_SIG);
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);
	if (winch_count != 1)
		wl_fail("pending SIGWINCH arrived %d times on unblock", (int)winch_count);
	if (rt_count != 2)
		wl_fail("pending SIGRTMIN+3 arrived %d times on unblock, want 2", (int)rt_count);
	if (rt_value[0] != rt_values[0] || rt_value[1] != rt_values[1])
		wl_fail("SIGRTMIN+3 values %d, %d, want %d, %d", (int)rt_value[0], (int)rt_value[1],
		        rt_values[0], rt_values[1]);
	if (rt_code != SI_QUEUE || rt_pid != getpid())
		wl_fail("SIGRTMIN+3 siginfo: code %d pid %d", (int)rt_code, (int)rt_pid);

	kill(getpid(), SIGHUP);
	kill(getpid(), SIGUSR1);
	if (usr1_count != 1 || usr1_code != SI_USER || usr1_pid != getpid())
		wl_fail("SIGUSR1 sent after the trigger: count %d code %d pid %d", (int)usr1_count,
		        (int)usr1_code, (int)usr1_pid);
	if (!usr1_usr2_blocked)
		wl_fail("SIGUSR2 was not blocked in the SIGUSR1 handler");
	kill(getpid(), SIGUSR2);
	if (usr2_count != 1)
		wl_fail("SIGUSR2 sent after the trigger arrived %d times", (int)usr2_count);
	if (!usr2_on_altstack)
		wl_fail("the SIGUSR2 handler did not run on the alternate stack");
}

int main(void)
{
	wl_init("wl-signals");
	setup();
	record();
	wl_ready();

	wl_await_trigger();
	check_recorded();
	check_expected();
	check_delivery();
	wl_pass();
}
