/* The error contract (after crun): a failing function returns a negative
 * errno and fills one cd_err with a message; each caller that adds context
 * wraps it ("restore: pid 42: mmap 7f00..: Invalid argument"). The final
 * message is what the daemon sends back to the CLI and what the CLI prints. */
#pragma once

#include <stdarg.h>

#define CD_ERR_MSG_MAX 1024

typedef struct cd_err {
	int code; /* positive errno, 0 when unset */
	char msg[CD_ERR_MSG_MAX];
} cd_err;

/* Sets the message from fmt and returns -code. A code of 0 is stored as EIO.
 * "%m" in fmt expands to strerror(code). */
int cd_err_set(cd_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like cd_err_set, with strerror(code) appended as ": <text>". */
int cd_err_sys(cd_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "<fmt>: " and returns -err->code. */
int cd_err_wrap(cd_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void cd_err_clear(cd_err *err);
