#include "shared/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int normalize(int code)
{
	if (code < 0)
		code = -code;
	return code ? code : EIO;
}

__attribute__((format(printf, 3, 0))) static void vformat(cd_err *err, int code, const char *fmt,
                                                          va_list ap)
{
	int saved = errno;

	errno = code; /* so that %m names this error, not whatever errno holds */
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	errno = saved;
}

int cd_err_set(cd_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	code = normalize(code);
	if (!err)
		return -code;
	err->code = code;
	va_start(ap, fmt);
	vformat(err, code, fmt, ap);
	va_end(ap);
	return -code;
}

int cd_err_sys(cd_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	code = normalize(code);
	if (!err)
		return -code;
	err->code = code;
	va_start(ap, fmt);
	vformat(err, code, fmt, ap);
	va_end(ap);
	len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(code));
	return -code;
}

int cd_err_wrap(cd_err *err, const char *fmt, ...)
{
	char prefix[CD_ERR_MSG_MAX];
	char old[CD_ERR_MSG_MAX];
	va_list ap;
	int saved = errno;

	if (!err)
		return -EIO;
	if (!err->code)
		err->code = EIO;
	memcpy(old, err->msg, sizeof(old));
	errno = err->code;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	errno = saved;
	if (old[0]) {
		char joined[2 * CD_ERR_MSG_MAX + 2];

		snprintf(joined, sizeof(joined), "%s: %s", prefix, old);
		snprintf(err->msg, sizeof(err->msg), "%.*s", CD_ERR_MSG_MAX - 1, joined);
	} else {
		snprintf(err->msg, sizeof(err->msg), "%s", prefix);
	}
	return -err->code;
}

void cd_err_clear(cd_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
