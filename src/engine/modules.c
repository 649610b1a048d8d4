/* The resource modules and their order: the one place to register a new
 * resource type (its file holds a struct cd_module with a dump half and a
 * restore half; see internal.h). */
#include "engine/internal.h"
#include "shared/cleanup.h"

/* Dump order. These run while the task has a scratch page; memory is
 * dumped after them (dump.c), once the scratch page is gone again. */
const struct cd_module *const cd_dump_modules[] = {
    &cd_mod_cpu,
    &cd_mod_mm,
    &cd_mod_files,
    &cd_mod_signals,
    &cd_mod_timers,
    &cd_mod_attrs,
    &cd_mod_creds,
    &cd_mod_posix_timers,
    /* after files: the locks are found through the task's fds */
    &cd_mod_locks,
};
const size_t cd_dump_modules_n = ARRAY_SIZE(cd_dump_modules);

/* Restore order, by injected syscalls from the trampoline: memory first
 * (it replaces the whole address space), credentials after the others
 * (they may take away the rights those need); POSIX timers and file locks
 * after them, checked by the kernel against the task's own rights, and
 * locks last: a task's POSIX locks go when it closes any fd of the file,
 * which the modules before may do. Files, cwd, umask and
 * rlimits are set by each new task itself before it is seized (restore.c);
 * its root once memory and mm have opened their files (fsroot.c);
 * what needs the whole tree (/proc files of its tasks, SIGIO owners) comes
 * after the credentials, done as the task itself. */
const struct cd_module *const cd_restore_modules[] = {
    &cd_mod_mem,   &cd_mod_mm,    &cd_mod_root,  &cd_mod_signals,      &cd_mod_timers,
    &cd_mod_attrs, &cd_mod_creds, &cd_mod_files, &cd_mod_posix_timers, &cd_mod_locks,
};
const size_t cd_restore_modules_n = ARRAY_SIZE(cd_restore_modules);
