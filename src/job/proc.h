/* Small /proc readers the job manager needs: liveness (PID + start time,
 * so a reused PID is not mistaken for the job) and ownership. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/error.h"

struct proc_stat {
	char state; /* R, S, D, T, t, Z, X ... */
	pid_t ppid;
	pid_t pgrp;
	uint64_t start_time; /* clock ticks since boot */
};

struct proc_ids {
	uid_t uid[3]; /* real, effective, saved */
	gid_t gid[3];
};

int proc_read_stat(pid_t pid, struct proc_stat *ret, cd_err *err);
int proc_read_ids(pid_t pid, struct proc_ids *ret, cd_err *err);
/* Supplementary groups from /proc/PID/status; *ret_groups is malloc'd. */
int proc_read_groups(pid_t pid, gid_t **ret_groups, int *ret_n, cd_err *err);

/* "running", "sleep", "stopped", "zombie" for a state letter. */
const char *proc_state_name(char state);

/* Whether pid or one of its descendants holds an fd or a mapping of a file
 * whose path starts with prefix ("/dev/nvidia": the GPU column of ps). */
bool proc_tree_holds(pid_t pid, const char *prefix);

/* Sends sig to pid and to every descendant of it (read from
 * /proc/PID/task/TID/children, parents first). */
void proc_signal_tree(pid_t pid, int sig);
