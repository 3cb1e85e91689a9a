/* The C tests' shared harness: a current-test name and CHECK macros that print the failing
 * expression, the values and hr_last_error(), then exit non-zero. */
#ifndef HR_TEST_CHECK_H
#define HR_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom.h"

static const char *cur_test = "?";
static const char *cur_cond = ""; /* the failing CHECK's expression */

static void failf(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL %s (%s:%d): %s ", cur_test, file, line, cur_cond);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n  hr_last_error: %s\n", hr_last_error());
  va_end(ap);
  exit(1);
}
#define CHECK(cond, ...)                         \
  do {                                           \
    if (!(cond)) {                               \
      cur_cond = #cond;                          \
      failf(__FILE__, __LINE__, "" __VA_ARGS__); \
    }                                            \
  } while (0)
#define CHECK_EQ(a, b)                                                                              \
  do {                                                                                              \
    long long va_ = (long long)(a), vb_ = (long long)(b);                                           \
    if (va_ != vb_) failf(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, va_, #b, vb_); \
  } while (0)
#define CHECK_OK(call)                                                                         \
  do {                                                                                         \
    int st_ = (call);                                                                          \
    if (st_ != HR_OK) failf(__FILE__, __LINE__, "%s returned %s", #call, hr_status_name(st_)); \
  } while (0)
#define CHECK_ST(call, want)                                                                                      \
  do {                                                                                                            \
    int st_ = (call);                                                                                             \
    if (st_ != (want))                                                                                            \
      failf(__FILE__, __LINE__, "%s returned %s, expected %s", #call, hr_status_name(st_), hr_status_name(want)); \
  } while (0)
#define CHECK_MSG(needle)                                                                                        \
  do {                                                                                                           \
    if (!strstr(hr_last_error(), (needle))) failf(__FILE__, __LINE__, "hr_last_error() lacks \"%s\"", (needle)); \
  } while (0)
/* Status and message of a failing call. */
#define CHECK_ERR(call, want, needle) \
  do {                                \
    CHECK_ST(call, want);             \
    CHECK_MSG(needle);                \
  } while (0)

#endif
