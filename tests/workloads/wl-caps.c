/* wl-caps [securebits]: capabilities of children (needs root). Child 1 (uid 0, as CRIU's zdtm
 * caps00): drops CAP_SETPCAP from its bounding set, CAP_CHOWN and CAP_DAC_OVERRIDE from its
 * effective set and CAP_DAC_OVERRIDE from its permitted set. Child 2: keeps its capabilities across
 * setresuid(4242) (PR_SET_KEEPCAPS, cleared again after it; left set with "securebits", which
 * the engine refuses to dump, naming it, and the run goes on to PASS), then keeps
 * CAP_NET_BIND_SERVICE, CAP_KILL and CAP_SYS_NICE permitted, CAP_KILL effective,
 * CAP_NET_BIND_SERVICE inheritable and ambient, and drops CAP_SYS_ADMIN from its bounding set. Each
 * records its effective, permitted, inheritable, bounding and ambient sets, its securebits and uids
 * before READY; after the trigger the parent closes the "go" pipe (uid 4242 may not reach the
 * trigger file), each compares (details on stderr) and the parent reaps both and prints the
 * verdict. */
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "wl.h"

struct caps {
	uint32_t eff[2], prm[2], inh[2];
	uint64_t bnd, amb;
	int securebits;
	uid_t uid[3];
};

static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last = 40;

	if (f) {
		if (fscanf(f, "%d", &last) != 1)
			last = 40;
		fclose(f);
	}
	return last;
}

static void capget_all(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};

	if (syscall(SYS_capget, &hdr, d) < 0)
		wl_child_fail("capget: %s", strerror(errno));
}

static void capset_all(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};

	if (syscall(SYS_capset, &hdr, d) < 0)
		wl_child_fail("capset: %s", strerror(errno));
}

static void read_caps(struct caps *c)
{
	struct __user_cap_data_struct d[2];

	memset(c, 0, sizeof(*c));
	capget_all(d);
	for (int i = 0; i < 2; i++) {
		c->eff[i] = d[i].effective;
		c->prm[i] = d[i].permitted;
		c->inh[i] = d[i].inheritable;
	}
	for (int cap = 0; cap <= last_cap(); cap++) {
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			c->bnd |= 1ULL << cap;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
			c->amb |= 1ULL << cap;
	}
	c->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	if (getresuid(&c->uid[0], &c->uid[1], &c->uid[2]) < 0)
		wl_child_fail("getresuid: %s", strerror(errno));
}

static void compare(const struct caps *was, const struct caps *now)
{
	if (memcmp(was->eff, now->eff, sizeof(was->eff)) ||
	    memcmp(was->prm, now->prm, sizeof(was->prm)) ||
	    memcmp(was->inh, now->inh, sizeof(was->inh)))
		wl_child_fail(
		    "eff/prm/inh %08x%08x/%08x%08x/%08x%08x, were %08x%08x/%08x%08x/%08x%08x",
		    now->eff[1], now->eff[0], now->prm[1], now->prm[0], now->inh[1], now->inh[0],
		    was->eff[1], was->eff[0], was->prm[1], was->prm[0], was->inh[1], was->inh[0]);
	if (was->bnd != now->bnd)
		wl_child_fail("bounding set %llx, was %llx", (unsigned long long)now->bnd,
		              (unsigned long long)was->bnd);
	if (was->amb != now->amb)
		wl_child_fail("ambient set %llx, was %llx", (unsigned long long)now->amb,
		              (unsigned long long)was->amb);
	if (was->securebits != now->securebits)
		wl_child_fail("securebits %#x, were %#x", now->securebits, was->securebits);
	if (memcmp(was->uid, now->uid, sizeof(was->uid)))
		wl_child_fail("uids %d/%d/%d, were %d/%d/%d", now->uid[0], now->uid[1], now->uid[2],
		              was->uid[0], was->uid[1], was->uid[2]);
}

static void set_caps00(void)
{
	struct __user_cap_data_struct d[2];

	if (prctl(PR_CAPBSET_DROP, CAP_SETPCAP, 0, 0, 0) < 0)
		wl_child_fail("PR_CAPBSET_DROP: %s", strerror(errno));
	capget_all(d);
	d[0].effective &= ~((1U << CAP_CHOWN) | (1U << CAP_DAC_OVERRIDE));
	d[0].permitted &= ~(1U << CAP_DAC_OVERRIDE);
	capset_all(d);
}

static bool keep_securebits;

static void set_keepcaps(void)
{
	const uint32_t keep =
	    (1U << CAP_NET_BIND_SERVICE) | (1U << CAP_KILL) | (1U << CAP_SYS_NICE);
	struct __user_cap_data_struct d[2] = {{0}};

	if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) < 0 ||
	    prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		wl_child_fail("prctl: %s", strerror(errno));
	if (setresuid(4242, 4242, 4242) < 0)
		wl_child_fail("setresuid: %s", strerror(errno));
	d[0].permitted = keep;
	d[0].effective = 1U << CAP_KILL;
	d[0].inheritable = 1U << CAP_NET_BIND_SERVICE;
	capset_all(d);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) < 0)
		wl_child_fail("PR_CAP_AMBIENT_RAISE: %s", strerror(errno));
	if (!keep_securebits && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		wl_child_fail("PR_SET_KEEPCAPS 0: %s", strerror(errno));
}

static int child_main(void *arg)
{
	int *ready = arg;
	struct caps was, now;
	char c;

	if (ready[2] == 1)
		set_caps00();
	else
		set_keepcaps();
	read_caps(&was);
	if (write(ready[1], "x", 1) != 1)
		wl_child_fail("write: %s", strerror(errno));
	/* uid 4242 may not reach the trigger: the parent closes the go pipe */
	close(ready[4]);
	if (read(ready[3], &c, 1) != 0)
		wl_child_fail("go pipe: %s", strerror(errno));
	read_caps(&now);
	compare(&was, &now);
	return 0;
}

int main(int argc, char **argv)
{
	int ready[5];
	pid_t kids[2];
	char c;

	wl_init("wl-caps");
	keep_securebits = argc > 1 && !strcmp(argv[1], "securebits");
	if (pipe(ready) < 0 || pipe(ready + 3) < 0)
		wl_fail("pipe: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		ready[2] = i + 1;
		kids[i] = wl_spawn(child_main, ready);
	}
	close(ready[1]);
	for (int i = 0; i < 2; i++)
		if (read(ready[0], &c, 1) != 1)
			wl_fail("a child died before it was ready");
	close(ready[0]);
	close(ready[3]);
	wl_ready();
	wl_await_trigger();
	close(ready[4]);
	for (int i = 0; i < 2; i++)
		wl_expect_exit(kids[i], 0);
	wl_pass();
}
