/* The daemon: an HTTP/1.1 + JSON API (libmicrohttpd) on a unix socket, or
 * on TCP when asked, in front of the job manager. Runs in the foreground
 * until SIGTERM/SIGINT; jobs keep running after it stops. */
#pragma once

#include "shared/config.h"
#include "shared/error.h"

int daemon_run(const struct cd_config *cfg, cd_err *err);
