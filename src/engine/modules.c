/* The resource modules and their order: the one place to register a new
 * resource type (its file holds a struct cd_module with a dump half and a
 * restore half; see internal.h). */
#include "engine/internal.h"
#include "shared/cleanup.h"

/* Dump order. These run while the task has a scratch page, each for the
 * task and then (dump_thread) for each other thread; memory is dumped after
 * them (dump.c), once the scratch page is gone again. */
const struct cd_module *const cd_dump_modules[] = {
    &cd_mod_cpu,
    &cd_mod_mm,
    &cd_mod_files,
    &cd_mod_signals,
    &cd_mod_timers,
    &cd_mod_attrs,
    &cd_mod_mempolicy,
    &cd_mod_seccomp,
    &cd_mod_creds,
    &cd_mod_posix_timers,
    /* after files: the locks are found through the task's fds */
    &cd_mod_locks,
    /* after signals: a parent's queues are read */
    &cd_mod_jobctl,
};
const size_t cd_dump_modules_n = ARRAY_SIZE(cd_dump_modules);

/* Restore order, by injected syscalls from the trampoline: memory first
 * (it replaces the whole address space), then the rest of the task's
 * state; then the other threads are made, each given its own state by the
 * per-thread halves of the TASK modules; credentials after the others
 * (they may take away the rights those need), in every thread (they are
 * per thread in the kernel). NUMA policies after memory (mbind needs the
 * mappings); seccomp last of the task's own (the threads made after
 * inherit its chain; it is suspended while we hold the task). POSIX
 * timers and file locks after them, checked by the kernel against the
 * task's own rights (a timer may aim at a thread: every thread exists by
 * then), and locks last: a task's POSIX locks go when it closes any fd of
 * the file, which the modules before may do. Files, cwd, umask and rlimits
 * are set by each new task itself before it is seized (restore.c); its
 * root once memory and mm have opened their files (fsroot.c); what needs
 * the whole tree (/proc files of its tasks, SIGIO owners) comes after the
 * credentials, done as the task itself. See enum cd_phase. */
const struct cd_restore_step cd_restore_steps[] = {
    {&cd_mod_mem, CD_PHASE_TASK},          {&cd_mod_mm, CD_PHASE_TASK},
    {&cd_mod_root, CD_PHASE_TASK},         {&cd_mod_signals, CD_PHASE_TASK},
    {&cd_mod_timers, CD_PHASE_TASK},       {&cd_mod_attrs, CD_PHASE_TASK},
    {&cd_mod_mempolicy, CD_PHASE_TASK},    {&cd_mod_seccomp, CD_PHASE_TASK},
    {&cd_mod_creds, CD_PHASE_DROP},        {&cd_mod_files, CD_PHASE_LATE},
    {&cd_mod_posix_timers, CD_PHASE_LATE}, {&cd_mod_locks, CD_PHASE_LATE},
};
const size_t cd_restore_steps_n = ARRAY_SIZE(cd_restore_steps);
