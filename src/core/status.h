/* Status codes and the per-thread last-error message.
 *
 * Library code never exits: a failing function returns a strata_status other than
 * STRATA_OK and leaves one human-readable line (what went wrong and where) that the
 * caller reads with strata_last_error(). The message buffer is thread-local and owned by
 * the library; it stays valid until the same thread records the next error. */
#ifndef STRATA_CORE_STATUS_H
#define STRATA_CORE_STATUS_H

typedef enum {
    STRATA_OK = 0,
    STRATA_ERR_IO,          /* open/read/write/mmap failed */
    STRATA_ERR_FORMAT,      /* input file or text is malformed */
    STRATA_ERR_UNSUPPORTED, /* well-formed but not something we implement */
    STRATA_ERR_NOMEM,       /* allocation failed (host or device) */
    STRATA_ERR_INVALID,     /* bad argument or option from the caller */
    STRATA_ERR_NOT_FOUND,   /* a named thing (key, tensor, model) does not exist */
    STRATA_ERR_NO_FIT,      /* a plan cannot fit the devices */
    STRATA_ERR_CANCELLED,   /* the caller asked to stop */
} strata_status;

/* Records a printf-style message for this thread and returns `status`, so that error
 * paths read `return strata_fail(STRATA_ERR_FORMAT, "...", ...);`. */
strata_status strata_fail(strata_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread ("" if none). */
const char *strata_last_error(void);

/* A short constant name for a status ("format error", ...). */
const char *strata_status_name(strata_status status);

/* Always-on assertion for programming errors (not for bad input). */
#define STRATA_ASSERT(cond)                                                         \
    do {                                                                            \
        if (!(cond)) strata_assert_fail(#cond, __FILE__, __LINE__);                 \
    } while (0)
_Noreturn void strata_assert_fail(const char *expr, const char *file, int line);

#endif
