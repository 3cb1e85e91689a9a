/* Internal: thread-local error reporting shared by every source file. */
#ifndef HR_STATUS_H
#define HR_STATUS_H

#include "../include/headroom.h"

/*
 * Records a printf-style message for hr_last_error() and returns `status`, so failure
 * paths read: `return hr_fail(HR_E_INVALID, "hr_alloc: size must be > 0 (got %llu)", ...)`.
 * The message should name the call and the values involved.
 */
int hr_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears the thread-local message (called at the start of each public call). */
void hr_clear_error(void);

#define HR_CHECK_PTR(p, call)                                                        \
  do {                                                                               \
    if ((p) == 0) return hr_fail(HR_E_INVALID, "%s: %s must not be NULL", call, #p); \
  } while (0)

typedef unsigned long long hr_ull; /* for printf of uint64_t without PRIu64 noise */

#endif
