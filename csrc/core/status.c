/* Status codes, the ABI version and the thread-local last-error message. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

int hr_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

void hr_clear_error(void) { last_error[0] = '\0'; }

int hr_abi_version(void) { return HR_ABI_VERSION; }

const char *hr_last_error(void) { return last_error; }

const char *hr_status_name(int status) {
  switch (status) {
    case HR_OK: return "HR_OK";
    case HR_E_INVALID: return "HR_E_INVALID";
    case HR_E_OOM: return "HR_E_OOM";
    case HR_E_STATE: return "HR_E_STATE";
    case HR_E_BACKEND: return "HR_E_BACKEND";
    case HR_E_IO: return "HR_E_IO";
    case HR_E_UNSUPPORTED: return "HR_E_UNSUPPORTED";
    case HR_E_NODEVICE: return "HR_E_NODEVICE";
    default: return "HR_E_UNKNOWN";
  }
}
