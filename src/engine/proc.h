/* Parsers for the /proc files the engine reads. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/error.h"

struct cd_proc_map {
	uint64_t start, end, pgoff;
	int prot;
	bool shared, growsdown;
	uint64_t dev, ino;
	char path[PATH_MAX];
	char vmflags[160]; /* the VmFlags line's two-letter names, space-separated */
	int pkey;          /* smaps ProtectionKey (x86 PKU), 0 when none */
};

/* Mappings of pid from /proc/PID/smaps (for VmFlags). */
int cd_proc_maps(pid_t pid, struct cd_proc_map **ret, size_t *ret_n, cd_err *err);
/* While a dump's tree is stopped: a task's listing is read once and used
 * again while /proc/PID/maps is unchanged (proc.c). _end frees it all. */
void cd_proc_maps_cache_begin(void);
void cd_proc_maps_cache_end(void);
/* The engine changed VmFlags of pid's mappings (all tasks' when pid <= 0)
 * in a way /proc/PID/maps does not show. */
void cd_proc_maps_forget(pid_t pid);
/* smaps reads (whole or partial: cd_proc_map_at) and listings used again
 * since _begin. */
void cd_proc_maps_cache_counts(uint64_t *reads, uint64_t *hits);
/* The mapping of pid that holds addr, from smaps read only as far as it:
 * the kernel walks the page tables of the mappings it shows, no further
 * (a low mapping costs little in a task of many GiB). ENOENT when none. */
int cd_proc_map_at(pid_t pid, uint64_t addr, struct cd_proc_map *ret, cd_err *err);
/* Whether m's VmFlags hold the two-letter name (proc(5): "lo", "dc" …). */
bool cd_proc_vmflag(const struct cd_proc_map *m, const char *name);

struct cd_proc_stat {
	char comm[16];
	char state;
	pid_t ppid, pgrp, session;
	int tty_nr;    /* controlling terminal's device number, 0 when none */
	int exit_code; /* a zombie's wait status */
	int nice, num_threads;
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk, arg_start, arg_end, env_start, env_end;
};
int cd_proc_stat(pid_t pid, struct cd_proc_stat *st, cd_err *err);

struct cd_proc_status {
	uint32_t uid[4], gid[4];
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs, seccomp;
	unsigned umask;
	pid_t tracer;    /* TracerPid: 0 when not traced */
	uint64_t shdpnd; /* ShdPnd: the signals pending for the process */
};
int cd_proc_status(pid_t pid, struct cd_proc_status *st, cd_err *err);

/* The supplementary groups of pid, all of them (up to NGROUPS_MAX, 65536):
 * an array the caller frees, with at least one element. */
int cd_proc_groups(pid_t pid, uint32_t **ret, size_t *ret_n, cd_err *err);

/* Children of pid's main thread. */
int cd_proc_children(pid_t pid, pid_t **ret, size_t *ret_n, cd_err *err);

/* Reads a whole small /proc file into a NUL-terminated buffer. */
int cd_proc_read_file(pid_t pid, const char *name, char **ret, size_t *ret_len, cd_err *err);

/* readlink of /proc/PID/<name> into a fresh string. */
int cd_proc_readlink(pid_t pid, const char *name, char **ret, cd_err *err);

struct cd_proc_fdinfo {
	uint64_t pos;
	int flags;
	int mnt_id;
};
int cd_proc_fdinfo(pid_t pid, int fd, struct cd_proc_fdinfo *fi, cd_err *err);
/* The number after "key:" in /proc/PID/fdinfo/FD, in base (0: C rules);
 * ENOENT when the kernel shows no such key. */
int cd_proc_fdinfo_u64(pid_t pid, int fd, const char *key, int base, uint64_t *ret, cd_err *err);

/* rlimits (cur, max) from /proc/PID/limits; RLIM_INFINITY for "unlimited". */
int cd_proc_limits(pid_t pid, uint64_t rlim[][2], size_t n, cd_err *err);
