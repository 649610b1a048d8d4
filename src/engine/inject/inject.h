/* Ptrace control of one task and system calls run inside it (our small
 * "compel"). A handle owns the ptrace attachment: the task is stopped from
 * cd_inject_seize() until cd_inject_release()/cd_inject_detach(), with all
 * signals blocked so nothing but our own stops can happen in between.
 *
 * Injection never writes code into the task: the caller names the address
 * of an existing `syscall` instruction (any 0f 05 bytes in an executable
 * mapping, e.g. in the vDSO or in a trampoline page), and the call is run
 * with PTRACE_SYSCALL, stopping at the syscall-exit stop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "shared/error.h"

typedef struct cd_inject cd_inject;

/* Seizes pid, interrupts it, waits for the stop, records its registers and
 * signal mask, then blocks every signal. */
int cd_inject_seize(pid_t pid, cd_inject **ret, cd_err *err);
/* The same in two halves, so that many threads are interrupted before any
 * is waited for: start seizes and interrupts; finish waits for the stop and
 * does the rest. A handle that failed to finish is freed by the caller
 * (which detaches it). */
int cd_inject_seize_start(pid_t pid, cd_inject **ret, cd_err *err);
int cd_inject_seize_finish(cd_inject *h, cd_err *err);

pid_t cd_inject_pid(const cd_inject *h);
/* The signal that had stopped the task's group (SIGSTOP, SIGTSTP, …) when
 * it was seized, 0 when it was not stopped. The task is then out of the
 * group stop (our calls run), which the kernel puts it back into when it
 * is let go. */
int cd_inject_stop_sig(const cd_inject *h);
/* Suspends the task's seccomp while we hold it (PTRACE_O_SUSPEND_SECCOMP:
 * CAP_SYS_ADMIN): our calls pass its filters. Threads it clones for us
 * inherit it. */
int cd_inject_suspend_seccomp(cd_inject *h, cd_err *err);

/* The registers and signal mask the task had when it was seized. */
const struct user_regs_struct *cd_inject_orig_regs(const cd_inject *h);
uint64_t cd_inject_orig_sigmask(const cd_inject *h);

int cd_inject_get_regs(cd_inject *h, struct user_regs_struct *regs, cd_err *err);
int cd_inject_set_regs(cd_inject *h, const struct user_regs_struct *regs, cd_err *err);
/* The XSAVE area: *len in = buffer size, out = bytes the kernel filled. */
int cd_inject_get_xstate(cd_inject *h, void *buf, size_t *len, cd_err *err);
int cd_inject_set_xstate(cd_inject *h, const void *buf, size_t len, cd_err *err);
int cd_inject_set_sigmask(cd_inject *h, uint64_t mask, cd_err *err);

/* Address of a `syscall` instruction in the task used by cd_inject_syscall. */
void cd_inject_set_syscall_site(cd_inject *h, uint64_t addr);
uint64_t cd_inject_syscall_site(const cd_inject *h);
/* Looks for 0f 05 in the task's [vdso] and uses it as syscall site. */
int cd_inject_find_vdso_site(cd_inject *h, cd_err *err);

/* Runs syscall nr with up to six arguments inside the task; *ret gets the
 * raw return value (negative errno on failure). Returns <0 only when the
 * injection itself failed. */
int cd_inject_syscall(cd_inject *h, long nr, const uint64_t args[6], long *ret, cd_err *err);

/* Runs clone3(args, size) inside the task to make a thread (CLONE_THREAD
 * in the flags at args): the new thread is attached as it is created and
 * stopped before it runs an instruction; *ret gets its handle (syscall
 * site and signal mask as the creator's). */
int cd_inject_clone_thread(cd_inject *h, uint64_t args, size_t size, cd_inject **ret, cd_err *err);

/* Batches: many calls in one round trip. The runner (inject.c, copied by
 * the caller into an executable page of the task) goes through a list of
 * entries the caller wrote into the task's memory; each gets its raw
 * result in ret. */
#define CD_INJECT_STOP_ON_ERROR 1 /* entry flag: a failure ends the run */
struct cd_inject_entry {
	int64_t nr;
	uint64_t flags;
	uint64_t args[6];
	int64_t ret;
};
_Static_assert(sizeof(struct cd_inject_entry) == 72, "the runner (inject.c) walks 72-byte entries");
extern const uint8_t cd_inject_batch_code[], cd_inject_batch_code_end[];
/* Whether the runner may run in the task now: its int3 would take a
 * SIGTRAP the task has pending, and would reset an ignored SIGTRAP to
 * its default (the kernel's rule for a forced signal). */
bool cd_inject_batch_ok(cd_inject *h);
/* Runs the runner at code over the n entries at list (task addresses);
 * *ran gets how many ran, the last of them the failure that ended the run
 * when fewer than n did. Returns <0 only when running it failed. */
int cd_inject_batch(cd_inject *h, uint64_t code, uint64_t list, size_t n, size_t *ran, cd_err *err);

/* Memory of the task through /proc/PID/mem (writes work on read-only pages). */
int cd_inject_write_mem(cd_inject *h, uint64_t addr, const void *buf, size_t len, cd_err *err);
int cd_inject_read_mem(cd_inject *h, uint64_t addr, void *buf, size_t len, cd_err *err);
int cd_inject_mem_fd(cd_inject *h);

/* Puts back the seized registers (applying the kernel's restart rules for a
 * task stopped in a system call, as the same task will resume) and signal
 * mask, and detaches: the task runs on as if never stopped. */
int cd_inject_release(cd_inject *h, cd_err *err);
/* Detaches without touching registers (they were set by the caller). */
int cd_inject_detach(cd_inject *h, cd_err *err);
/* Frees the handle; if still attached, detaches first (best effort). */
void cd_inject_free(cd_inject *h);

/* Applies the restart rules to regs of a task stopped in a syscall.
 * same_task: restart_syscall is usable (the kernel restart block still
 * exists); otherwise relative sleeps restart for the time left and other
 * such calls see EINTR. */
void cd_inject_fix_restart(struct user_regs_struct *regs, bool same_task);

/* What this process's injections cost so far, for measurements (the
 * engine driver's --timings): ptrace stops waited for, injected system
 * calls and register transfers. */
struct cd_inject_counts {
	uint64_t stops;
	uint64_t calls; /* each call of a batch counts */
	uint64_t batches;
	uint64_t regs;
};
void cd_inject_counts_get(struct cd_inject_counts *ret);

static inline void cd_inject_freep(cd_inject **h)
{
	cd_inject_free(*h);
}
#define _cleanup_inject_ __attribute__((cleanup(cd_inject_freep)))
