/* The end of the daemon: the HTTP server stopped while its children are reaped. */
#pragma once

#include <microhttpd.h>

#include "job/manager.h"

/* Stops mhd; meanwhile reaps on SIGCHLD from sigfd, and kills the dump and
 * restore workers still running after a short grace period or at another
 * SIGTERM/SIGINT. Returns once the server has stopped. */
void daemon_shutdown(struct MHD_Daemon *mhd, int sigfd, struct job_manager *jm);
