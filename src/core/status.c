/* Per-thread error message storage; see status.h. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static _Thread_local char last_error[1024];

strata_status strata_fail(strata_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *strata_last_error(void) { return last_error; }

const char *strata_status_name(strata_status status) {
    switch (status) {
    case STRATA_OK: return "ok";
    case STRATA_ERR_IO: return "I/O error";
    case STRATA_ERR_FORMAT: return "format error";
    case STRATA_ERR_UNSUPPORTED: return "unsupported";
    case STRATA_ERR_NOMEM: return "out of memory";
    case STRATA_ERR_INVALID: return "invalid argument";
    case STRATA_ERR_NOT_FOUND: return "not found";
    case STRATA_ERR_NO_FIT: return "does not fit";
    case STRATA_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

void strata_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "strata: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    abort();
}
