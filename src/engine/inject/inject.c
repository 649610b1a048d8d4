#include "engine/inject/inject.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/cleanup.h"

/* Kernel-internal restart codes a task stopped in a syscall may show in rax. */
#define ERESTARTSYS           512
#define ERESTARTNOINTR        513
#define ERESTARTNOHAND        514
#define ERESTART_RESTARTBLOCK 516

struct cd_inject {
	pid_t pid;
	bool attached;
	int mem_fd;
	uint64_t site;
	uint64_t orig_sigmask;
	struct user_regs_struct orig_regs;
	int stop_sig;
	int deferred_stop;     /* a stop signal that came while we held it */
	unsigned long options; /* PTRACE_SETOPTIONS */
};

/* One engine runs per process: plain counters. */
static struct cd_inject_counts counts;

void cd_inject_counts_get(struct cd_inject_counts *ret)
{
	*ret = counts;
}

pid_t cd_inject_pid(const cd_inject *h)
{
	return h->pid;
}

int cd_inject_stop_sig(const cd_inject *h)
{
	return h->stop_sig;
}

const struct user_regs_struct *cd_inject_orig_regs(const cd_inject *h)
{
	return &h->orig_regs;
}

uint64_t cd_inject_orig_sigmask(const cd_inject *h)
{
	return h->orig_sigmask;
}

int cd_inject_mem_fd(cd_inject *h)
{
	return h->mem_fd;
}

uint64_t cd_inject_syscall_site(const cd_inject *h)
{
	return h->site;
}

void cd_inject_set_syscall_site(cd_inject *h, uint64_t addr)
{
	h->site = addr;
}

/* How long a task may take to reach the first stop: one in uninterruptible
 * sleep (a hung NFS server …) stops only when it leaves it. */
#define SEIZE_TIMEOUT_MS 10000

/* Waits for the next ptrace stop of the task; returns the waitpid status.
 * timeout_ms < 0 waits for ever. */
static int wait_stop_timed(cd_inject *h, int *ret_status, int timeout_ms, cd_err *err)
{
	int status;

	/* most stops come within tens of us: polled at 20 us, doubling to 1 ms */
	for (long waited_us = 0, nap_us = 20;;) {
		pid_t r = waitpid(h->pid, &status, __WALL | (timeout_ms < 0 ? 0 : WNOHANG));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cd_err_sys(err, errno, "pid %d: waitpid", h->pid);
		if (r > 0)
			break;
		if (waited_us >= timeout_ms * 1000L)
			return cd_err_set(
			    err, ETIMEDOUT,
			    "pid %d: did not stop within %d s (uninterruptible sleep?)", h->pid,
			    timeout_ms / 1000);
		usleep((useconds_t)nap_us);
		waited_us += nap_us;
		nap_us = nap_us < 1000 ? 2 * nap_us : 1000;
	}
	counts.stops++;
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		h->attached = false;
		return cd_err_set(err, ESRCH, "pid %d: exited while stopped by the engine", h->pid);
	}
	*ret_status = status;
	return 0;
}

static int wait_stop(cd_inject *h, int *ret_status, cd_err *err)
{
	return wait_stop_timed(h, ret_status, -1, err);
}

int cd_inject_get_regs(cd_inject *h, struct user_regs_struct *regs, cd_err *err)
{
	struct iovec iov = {regs, sizeof(*regs)};

	counts.regs++;
	if (ptrace(PTRACE_GETREGSET, h->pid, (void *)NT_PRSTATUS, &iov) < 0)
		return cd_err_sys(err, errno, "pid %d: read registers", h->pid);
	return 0;
}

int cd_inject_set_regs(cd_inject *h, const struct user_regs_struct *regs, cd_err *err)
{
	struct iovec iov = {(void *)regs, sizeof(*regs)};

	counts.regs++;
	if (ptrace(PTRACE_SETREGSET, h->pid, (void *)NT_PRSTATUS, &iov) < 0)
		return cd_err_sys(err, errno, "pid %d: write registers", h->pid);
	return 0;
}

int cd_inject_get_xstate(cd_inject *h, void *buf, size_t *len, cd_err *err)
{
	struct iovec iov = {buf, *len};

	if (ptrace(PTRACE_GETREGSET, h->pid, (void *)NT_X86_XSTATE, &iov) < 0)
		return cd_err_sys(err, errno, "pid %d: read XSAVE area", h->pid);
	*len = iov.iov_len;
	return 0;
}

int cd_inject_set_xstate(cd_inject *h, const void *buf, size_t len, cd_err *err)
{
	struct iovec iov = {(void *)buf, len};

	if (ptrace(PTRACE_SETREGSET, h->pid, (void *)NT_X86_XSTATE, &iov) < 0)
		return cd_err_sys(err, errno, "pid %d: write XSAVE area", h->pid);
	return 0;
}

int cd_inject_set_sigmask(cd_inject *h, uint64_t mask, cd_err *err)
{
	if (ptrace(PTRACE_SETSIGMASK, h->pid, (void *)sizeof(mask), &mask) < 0)
		return cd_err_sys(err, errno, "pid %d: set signal mask", h->pid);
	return 0;
}

int cd_inject_seize_start(pid_t pid, cd_inject **ret, cd_err *err)
{
	_cleanup_free_ cd_inject *h = calloc(1, sizeof(*h));

	if (!h)
		return cd_err_set(err, ENOMEM, "pid %d: out of memory", pid);
	h->pid = pid;
	h->mem_fd = -1;
	h->options = PTRACE_O_TRACESYSGOOD;
	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)h->options) < 0)
		return cd_err_sys(err, errno, "pid %d: seize", pid);
	h->attached = true;
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0) {
		int r = cd_err_sys(err, errno, "pid %d: interrupt", pid);
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
		return r;
	}
	*ret = TAKE_PTR(h);
	return 0;
}

int cd_inject_seize_finish(cd_inject *h, cd_err *err)
{
	pid_t pid = h->pid;
	char path[64];
	int status, r;

	/* A signal may be reported before our interrupt; let it through to the
	 * task (it stays pending until the task runs) and wait for the stop. */
	for (;;) {
		r = wait_stop_timed(h, &status, SEIZE_TIMEOUT_MS, err);
		if (r < 0)
			return r;
		if ((status >> 16) == PTRACE_EVENT_STOP && WSTOPSIG(status) != SIGTRAP &&
		    !h->stop_sig) {
			/* A stopped group: the seize made the task report its
			 * group stop (with the stop signal), which took our
			 * interrupt. Injected calls would meet another stop
			 * trap: one more interrupt, and out of this trap into
			 * that one. */
			h->stop_sig = WSTOPSIG(status);
			if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0 ||
			    ptrace(PTRACE_CONT, pid, NULL, NULL) < 0)
				return cd_err_sys(err, errno, "pid %d: out of its group stop", pid);
			continue;
		}
		if ((status >> 16) == PTRACE_EVENT_STOP)
			break;
		if (ptrace(PTRACE_CONT, pid, NULL, (void *)(long)WSTOPSIG(status)) < 0)
			return cd_err_sys(err, errno, "pid %d: continue", pid);
	}
	r = cd_inject_get_regs(h, &h->orig_regs, err);
	if (r < 0)
		return r;
	if (ptrace(PTRACE_GETSIGMASK, pid, (void *)sizeof(h->orig_sigmask), &h->orig_sigmask) < 0)
		return cd_err_sys(err, errno, "pid %d: read signal mask", pid);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	h->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (h->mem_fd < 0)
		return cd_err_sys(err, errno, "pid %d: open %s", pid, path);
	/* the last step: a failure before it leaves the task's mask as it was */
	return cd_inject_set_sigmask(h, ~0ULL, err);
}

int cd_inject_seize(pid_t pid, cd_inject **ret, cd_err *err)
{
	cd_inject *h = NULL;
	int r = cd_inject_seize_start(pid, &h, err);

	if (r >= 0 && (r = cd_inject_seize_finish(h, err)) < 0) {
		cd_inject_free(h);
		return r;
	}
	if (r >= 0)
		*ret = h;
	return r;
}

int cd_inject_suspend_seccomp(cd_inject *h, cd_err *err)
{
	if (ptrace(PTRACE_SETOPTIONS, h->pid, NULL,
	           (void *)(h->options | PTRACE_O_SUSPEND_SECCOMP)) < 0)
		return cd_err_sys(err, errno, "pid %d: suspend seccomp (PTRACE_O_SUSPEND_SECCOMP)",
		                  h->pid);
	h->options |= PTRACE_O_SUSPEND_SECCOMP;
	return 0;
}

int cd_inject_find_vdso_site(cd_inject *h, cd_err *err)
{
	char path[64], line[512];
	uint64_t start = 0, end = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", h->pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return cd_err_sys(err, errno, "pid %d: open %s", h->pid, path);
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "[vdso]") &&
		    sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &end) == 2)
			break;
		start = end = 0;
	}
	if (!start)
		return cd_err_set(err, ENOENT, "pid %d: no [vdso] mapping", h->pid);
	size_t len = end - start;
	_cleanup_free_ uint8_t *buf = malloc(len);
	if (!buf)
		return cd_err_set(err, ENOMEM, "pid %d: out of memory", h->pid);
	int r = cd_inject_read_mem(h, start, buf, len, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
			h->site = start + i;
			return 0;
		}
	}
	return cd_err_set(err, ENOENT, "pid %d: no syscall instruction in [vdso]", h->pid);
}

/* A stop signal sent to the task while our calls run (SIGSTOP cannot be
 * blocked) is held back, and sent again when the task is let go: it then
 * stops as it was asked to, after the dump. A group stop another thread
 * took is passed through the same way. */
static bool defer_stop(cd_inject *h, int status)
{
	int sig = WSTOPSIG(status);

	if (!WIFSTOPPED(status) || sig == SIGTRAP || sig == (SIGTRAP | 0x80))
		return false;
	if ((status >> 16) != PTRACE_EVENT_STOP && sig != SIGSTOP && sig != SIGTSTP &&
	    sig != SIGTTIN && sig != SIGTTOU)
		return false;
	if (!h->deferred_stop)
		h->deferred_stop = sig;
	return true;
}

/* Resumes with PTRACE_SYSCALL and expects a syscall stop. */
static int step_to_syscall_stop(cd_inject *h, const char *what, cd_err *err)
{
	int status, r;

	for (;;) {
		if (ptrace(PTRACE_SYSCALL, h->pid, NULL, NULL) < 0)
			return cd_err_sys(err, errno, "pid %d: resume to %s", h->pid, what);
		r = wait_stop(h, &status, err);
		if (r < 0)
			return r;
		if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80))
			return 0;
		if (!defer_stop(h, status))
			break;
	}
	return cd_err_set(err, EPROTO, "pid %d: unexpected stop 0x%x waiting for %s", h->pid,
	                  status, what);
}

int cd_inject_syscall(cd_inject *h, long nr, const uint64_t args[6], long *ret, cd_err *err)
{
	struct user_regs_struct regs = h->orig_regs;
	int r;

	if (!h->site)
		return cd_err_set(err, EINVAL, "pid %d: no syscall site", h->pid);
	counts.calls++;
	regs.rip = h->site;
	regs.rax = (uint64_t)nr;
	regs.orig_rax = (uint64_t)-1; /* no restart handling on the way out */
	regs.rdi = args[0];
	regs.rsi = args[1];
	regs.rdx = args[2];
	regs.r10 = args[3];
	regs.r8 = args[4];
	regs.r9 = args[5];
	r = cd_inject_set_regs(h, &regs, err);
	if (r < 0)
		return r;
	r = step_to_syscall_stop(h, "syscall entry", err);
	if (r < 0)
		return r;
	r = step_to_syscall_stop(h, "syscall exit", err);
	if (r < 0)
		return r;
	r = cd_inject_get_regs(h, &regs, err);
	if (r < 0)
		return r;
	*ret = (long)regs.rax;
	return 0;
}

/* The batch runner: runs a list of system calls inside the task in one
 * go. Position independent, no stack, no data of its own: the caller
 * copies it into an executable page of the task. In: rdi = the list
 * (struct cd_inject_entry, 72 bytes each), rsi = how many. Each call's
 * result goes to its ret; a failed call (-4095..-1) whose flags ask for it
 * ends the run. At the end, int3: the tracer's stop (run_to_trap). r12
 * then holds how many calls did not run. */
__asm__(".pushsection .text\n"
        ".globl cd_inject_batch_code\n"
        ".globl cd_inject_batch_code_end\n"
        "cd_inject_batch_code:\n"
        "	mov %rdi, %rbx\n"
        "	mov %rsi, %r12\n"
        "1:	test %r12, %r12\n"
        "	jz 3f\n"
        "	mov 0(%rbx), %rax\n"  /* nr */
        "	mov 16(%rbx), %rdi\n" /* args */
        "	mov 24(%rbx), %rsi\n"
        "	mov 32(%rbx), %rdx\n"
        "	mov 40(%rbx), %r10\n"
        "	mov 48(%rbx), %r8\n"
        "	mov 56(%rbx), %r9\n"
        "	syscall\n"
        "	mov %rax, 64(%rbx)\n" /* ret */
        "	dec %r12\n"
        "	cmp $-4095, %rax\n"
        "	jb 2f\n"
        "	testq $1, 8(%rbx)\n" /* flags & CD_INJECT_STOP_ON_ERROR */
        "	jnz 3f\n"
        "2:	add $72, %rbx\n"
        "	jmp 1b\n"
        "3:	int3\n"
        "cd_inject_batch_code_end:\n"
        ".popsection\n");

#define SIGTRAP_BIT (1ULL << (SIGTRAP - 1))

/* Resumes the task at the runner and waits for its int3. SIGTRAP is let
 * through meanwhile: a trap while blocked would reset the task's SIGTRAP
 * handler (the kernel's rule for a forced signal). */
static int run_to_trap(cd_inject *h, const char *what, cd_err *err)
{
	int status, r;

	if ((r = cd_inject_set_sigmask(h, ~SIGTRAP_BIT, err)) < 0)
		return r;
	for (;;) {
		if (ptrace(PTRACE_CONT, h->pid, NULL, NULL) < 0)
			return cd_err_sys(err, errno, "pid %d: resume to %s", h->pid, what);
		if ((r = wait_stop(h, &status, err)) < 0)
			return r;
		if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0)
			break;
		if (!defer_stop(h, status))
			return cd_err_set(err, EPROTO, "pid %d: unexpected stop 0x%x in %s", h->pid,
			                  status, what);
	}
	return cd_inject_set_sigmask(h, ~0ULL, err);
}

/* Whether status has a line "key:\t<hex mask>" with SIGTRAP's bit. */
static bool mask_has_trap(const char *status, const char *key)
{
	const char *p = strstr(status, key);

	return p && (strtoull(p + strlen(key), NULL, 16) & SIGTRAP_BIT);
}

bool cd_inject_batch_ok(cd_inject *h)
{
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", h->pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return false;
	buf[n] = '\0';
	return !mask_has_trap(buf, "\nSigPnd:") && !mask_has_trap(buf, "\nShdPnd:") &&
	       !mask_has_trap(buf, "\nSigIgn:");
}

int cd_inject_batch(cd_inject *h, uint64_t code, uint64_t list, size_t n, size_t *ran, cd_err *err)
{
	const uint64_t len = (uint64_t)(cd_inject_batch_code_end - cd_inject_batch_code);
	struct user_regs_struct regs = h->orig_regs;
	int r;

	regs.rip = code;
	regs.orig_rax = (uint64_t)-1; /* no restart handling on the way out */
	regs.rdi = list;
	regs.rsi = n;
	if ((r = cd_inject_set_regs(h, &regs, err)) < 0 ||
	    (r = run_to_trap(h, "the batch runner", err)) < 0 ||
	    (r = cd_inject_get_regs(h, &regs, err)) < 0)
		return r;
	/* a trap of its own (a SIGTRAP sent meanwhile) stops elsewhere */
	if (regs.rip != code + len || regs.r12 > n)
		return cd_err_set(err, EPROTO, "pid %d: batch runner stopped at %llx, not its end",
		                  h->pid, (unsigned long long)regs.rip);
	counts.batches++;
	counts.calls += n - regs.r12;
	*ran = n - regs.r12;
	return 0;
}

/* The thread made by a clone the creator reported: traced since its
 * creation (PTRACE_O_TRACECLONE), it waits in its first stop. */
static int adopt_thread(cd_inject *creator, pid_t tid, cd_inject **ret, cd_err *err)
{
	_cleanup_free_ cd_inject *h = calloc(1, sizeof(*h));
	int status = 0, r;

	if (!h)
		return cd_err_set(err, ENOMEM, "tid %d: out of memory", tid);
	h->pid = tid;
	h->attached = true;
	h->site = creator->site;
	h->options = creator->options;    /* the kernel's: a traced clone inherits them */
	h->mem_fd = dup(creator->mem_fd); /* the same memory */
	if (h->mem_fd < 0) {
		r = cd_err_sys(err, errno, "tid %d: dup", tid);
		goto fail;
	}
	if ((r = wait_stop(h, &status, err)) < 0)
		goto fail;
	if ((status >> 16) != PTRACE_EVENT_STOP) {
		r = cd_err_set(err, EPROTO, "tid %d: unexpected first stop 0x%x", tid, status);
		goto fail;
	}
	if ((r = cd_inject_get_regs(h, &h->orig_regs, err)) < 0)
		goto fail;
	h->orig_sigmask = creator->orig_sigmask;
	*ret = TAKE_PTR(h);
	return 0;
fail:
	/* it must not run: it dies with the task (the caller kills it traced) */
	if (h->mem_fd >= 0)
		close(h->mem_fd);
	h->attached = false;
	return r;
}

int cd_inject_clone_thread(cd_inject *h, uint64_t args, size_t size, cd_inject **ret, cd_err *err)
{
	struct user_regs_struct regs = h->orig_regs;
	unsigned long tid = 0;
	int status = 0, r;

	if (ptrace(PTRACE_SETOPTIONS, h->pid, NULL, (void *)(h->options | PTRACE_O_TRACECLONE)) < 0)
		return cd_err_sys(err, errno, "pid %d: trace clones", h->pid);
	regs.rip = h->site;
	regs.rax = SYS_clone3;
	regs.orig_rax = (uint64_t)-1;
	regs.rdi = args;
	regs.rsi = size;
	if ((r = cd_inject_set_regs(h, &regs, err)) < 0 ||
	    (r = step_to_syscall_stop(h, "clone3 entry", err)) < 0)
		return r;
	if (ptrace(PTRACE_SYSCALL, h->pid, NULL, NULL) < 0)
		return cd_err_sys(err, errno, "pid %d: resume clone3", h->pid);
	if ((r = wait_stop(h, &status, err)) < 0)
		return r;
	/* a failed clone3 goes straight to its exit stop */
	if ((status >> 8) == (SIGTRAP | (PTRACE_EVENT_CLONE << 8))) {
		if (ptrace(PTRACE_GETEVENTMSG, h->pid, NULL, &tid) < 0)
			return cd_err_sys(err, errno, "pid %d: new thread's id", h->pid);
		if ((r = step_to_syscall_stop(h, "clone3 exit", err)) < 0)
			return r;
	} else if (!WIFSTOPPED(status) || WSTOPSIG(status) != (SIGTRAP | 0x80)) {
		return cd_err_set(err, EPROTO, "pid %d: unexpected stop 0x%x in clone3", h->pid,
		                  status);
	}
	if ((r = cd_inject_get_regs(h, &regs, err)) < 0)
		return r;
	if ((long)regs.rax < 0)
		return cd_err_sys(err, (int)-(long)regs.rax, "pid %d: clone3 thread", h->pid);
	if (ptrace(PTRACE_SETOPTIONS, h->pid, NULL, (void *)h->options) < 0)
		return cd_err_sys(err, errno, "pid %d: stop tracing clones", h->pid);
	return adopt_thread(h, (pid_t)tid, ret, err);
}

int cd_inject_write_mem(cd_inject *h, uint64_t addr, const void *buf, size_t len, cd_err *err)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(h->mem_fd, p, len, (off_t)addr);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cd_err_sys(err, n < 0 ? errno : EIO,
			                  "pid %d: write memory at %" PRIx64, h->pid, addr);
		p += n;
		addr += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int cd_inject_read_mem(cd_inject *h, uint64_t addr, void *buf, size_t len, cd_err *err)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(h->mem_fd, p, len, (off_t)addr);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cd_err_sys(err, n < 0 ? errno : EIO,
			                  "pid %d: read memory at %" PRIx64, h->pid, addr);
		p += n;
		addr += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* A relative nanosleep interrupted in the old task: its restart block is
 * gone, but the kernel wrote the time left to the rem argument (when given),
 * so the call is restarted for that time (or, without rem, for the whole
 * request again) rather than failing with EINTR. A futex wait with an
 * absolute timeout restarts as it was. */
static bool restart_sleep(struct user_regs_struct *regs)
{
	switch (regs->orig_rax) {
	case SYS_nanosleep:
		if (regs->rsi)
			regs->rdi = regs->rsi;
		break;
	case SYS_clock_nanosleep:
		if (regs->r10)
			regs->rdx = regs->r10;
		break;
	case SYS_futex:
		/* FUTEX_WAIT_BITSET's timeout is absolute (what glibc's timed
		 * waits use): the same call again waits until the same time */
		if ((regs->rsi & ~(uint64_t)(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)) !=
		    FUTEX_WAIT_BITSET)
			return false;
		break;
	default:
		return false;
	}
	regs->rax = regs->orig_rax;
	regs->rip -= 2;
	return true;
}

void cd_inject_fix_restart(struct user_regs_struct *regs, bool same_task)
{
	if ((long)regs->orig_rax < 0)
		return;
	switch (-(long)regs->rax) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		regs->rax = regs->orig_rax;
		regs->rip -= 2;
		break;
	case ERESTART_RESTARTBLOCK:
		if (same_task) {
			regs->rax = SYS_restart_syscall;
			regs->rip -= 2;
		} else if (!restart_sleep(regs)) {
			regs->rax = (uint64_t)-EINTR;
		}
		break;
	default:
		return;
	}
	regs->orig_rax = (uint64_t)-1;
}

int cd_inject_release(cd_inject *h, cd_err *err)
{
	struct user_regs_struct regs = h->orig_regs;
	int r;

	cd_inject_fix_restart(&regs, true);
	r = cd_inject_set_regs(h, &regs, err);
	if (r < 0)
		return r;
	r = cd_inject_set_sigmask(h, h->orig_sigmask, err);
	if (r < 0)
		return r;
	return cd_inject_detach(h, err);
}

int cd_inject_detach(cd_inject *h, cd_err *err)
{
	if (!h->attached)
		return 0;
	h->attached = false;
	if (ptrace(PTRACE_DETACH, h->pid, NULL, NULL) < 0)
		return cd_err_sys(err, errno, "pid %d: detach", h->pid);
	if (h->deferred_stop && kill(h->pid, h->deferred_stop) < 0 && errno != ESRCH)
		return cd_err_sys(err, errno, "pid %d: send the stop signal held back", h->pid);
	return 0;
}

void cd_inject_free(cd_inject *h)
{
	if (!h)
		return;
	if (h->attached)
		ptrace(PTRACE_DETACH, h->pid, NULL, NULL);
	if (h->mem_fd >= 0)
		close(h->mem_fd);
	free(h);
}
