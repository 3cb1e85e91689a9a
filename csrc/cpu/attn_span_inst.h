/*
 * Instantiates attn_span_body.h for one ISA and KV dtype (included by attn_span.c, no guard):
 * SPAN_PREFIX##_d64, _d128 (unrolled) and _dn (any multiple of W). Undefines LOADKV and
 * SPAN_PREFIX afterwards.
 */
#define SPAN_CAT_(a, b) a##b
#define SPAN_CAT(a, b) SPAN_CAT_(a, b)

#define SPAN_NAME SPAN_CAT(SPAN_PREFIX, _d64)
#define SPAN_NP (64 / W)
#include "attn_span_body.h"
#undef SPAN_NAME
#undef SPAN_NP

#define SPAN_NAME SPAN_CAT(SPAN_PREFIX, _d128)
#define SPAN_NP (128 / W)
#include "attn_span_body.h"
#undef SPAN_NAME
#undef SPAN_NP

#define SPAN_NAME SPAN_CAT(SPAN_PREFIX, _dn)
#define SPAN_NP (s->d / W)
#include "attn_span_body.h"
#undef SPAN_NAME
#undef SPAN_NP

#undef LOADKV
#undef SPAN_PREFIX
#undef SPAN_CAT
#undef SPAN_CAT_
