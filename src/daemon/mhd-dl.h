/* libmicrohttpd, loaded when the daemon starts, not linked: with GnuTLS and
 * what that pulls in (p11-kit, nettle, gmp, idn2, tasn1: about 10 more
 * libraries, GnuTLS's constructor run at every start) it made every start
 * of the one binary slower, each CLI command included, which never serves
 * HTTP. Include this after <microhttpd.h> in a file that calls these
 * functions: the names below then call through daemon_mhd(), which loads
 * the library on first use; daemon_mhd_load() says why it could not. */
#pragma once

#include <microhttpd.h>

#include "shared/error.h"

/* clang-format off */
#define DAEMON_MHD_FUNCS(X) \
	X(MHD_add_response_header) \
	X(MHD_create_response_for_upgrade) \
	X(MHD_create_response_from_buffer) \
	X(MHD_destroy_response) \
	X(MHD_get_connection_info) \
	X(MHD_http_unescape) \
	X(MHD_lookup_connection_value) \
	X(MHD_queue_response) \
	X(MHD_set_connection_option) \
	X(MHD_start_daemon) \
	X(MHD_stop_daemon) \
	X(MHD_upgrade_action)
/* clang-format on */

struct daemon_mhd_api {
/* f names a function, and the member after it: nothing to parenthesize */
#define DAEMON_MHD_FIELD(f) __typeof__(&f) f; /* NOLINT(bugprone-macro-parentheses) */
	DAEMON_MHD_FUNCS(DAEMON_MHD_FIELD)
#undef DAEMON_MHD_FIELD
};

/* Loads libmicrohttpd once (thread-safe); 0, or an error naming why not. */
int daemon_mhd_load(cd_err *err);

/* The loaded functions; call daemon_mhd_load() first to learn of a failure. */
const struct daemon_mhd_api *daemon_mhd(void);

#ifndef DAEMON_MHD_DL_IMPL
#define MHD_add_response_header         (daemon_mhd()->MHD_add_response_header)
#define MHD_create_response_for_upgrade (daemon_mhd()->MHD_create_response_for_upgrade)
#define MHD_create_response_from_buffer (daemon_mhd()->MHD_create_response_from_buffer)
#define MHD_destroy_response            (daemon_mhd()->MHD_destroy_response)
#define MHD_get_connection_info         (daemon_mhd()->MHD_get_connection_info)
#define MHD_http_unescape               (daemon_mhd()->MHD_http_unescape)
#define MHD_lookup_connection_value     (daemon_mhd()->MHD_lookup_connection_value)
#define MHD_queue_response              (daemon_mhd()->MHD_queue_response)
#define MHD_set_connection_option       (daemon_mhd()->MHD_set_connection_option)
#define MHD_start_daemon                (daemon_mhd()->MHD_start_daemon)
#define MHD_stop_daemon                 (daemon_mhd()->MHD_stop_daemon)
#define MHD_upgrade_action              (daemon_mhd()->MHD_upgrade_action)
#endif
