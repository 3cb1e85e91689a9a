/* The handle table of csrc/core/handles.h: one array of slots, a lock, generations. */
#include "handles.h"

#include <pthread.h>

#include "status.h"

typedef struct {
  void *obj; /* NULL: free slot */
  struct hr_instance *owner;
  uint32_t gen;
  uint8_t kind;
} slot_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static slot_t slots[HR_MAX_HANDLES];
static int next_free; /* search start: spreads reuse so a stale handle rarely meets its slot again */

#define GEN_MASK 0xffffffffull

const char *hr_handle_kind_name(int kind) {
  switch (kind) {
    case HR_H_INSTANCE: return "device";
    case HR_H_GRAPH_SET: return "graph set";
    case HR_H_COPY_ENGINE: return "copy engine";
    case HR_H_EVENT: return "event";
    default: return "unknown";
  }
}

static uint64_t encode(int slot, int kind, uint32_t gen) {
  return ((uint64_t)gen << 20) | ((uint64_t)kind << 16) | (uint64_t)(slot + 1);
}

int hr_handle_new(int kind, void *obj, struct hr_instance *owner, const char *call, uint64_t *out) {
  *out = 0;
  pthread_mutex_lock(&lock);
  int found = -1;
  for (int i = 0; i < HR_MAX_HANDLES && found < 0; i++) {
    int s = (next_free + i) % HR_MAX_HANDLES;
    if (!slots[s].obj) found = s;
  }
  if (found >= 0) {
    slot_t *s = &slots[found];
    s->gen = (uint32_t)((s->gen + 1) & GEN_MASK);
    if (s->gen == 0) s->gen = 1;
    s->obj = obj;
    s->owner = owner;
    s->kind = (uint8_t)kind;
    *out = encode(found, kind, s->gen);
    next_free = (found + 1) % HR_MAX_HANDLES;
  }
  pthread_mutex_unlock(&lock);
  if (found < 0)
    return hr_fail(HR_E_STATE, "%s: too many live handles (max %d over devices, graph sets, copy engines, events)",
                   call, HR_MAX_HANDLES);
  return HR_OK;
}

/* Under the lock: the slot of a live handle of `kind`, else NULL and *why says what is wrong. */
static slot_t *find_locked(uint64_t h, int kind, const char **why) {
  uint64_t slot = (h & 0xffff) - 1;
  int hk = (int)((h >> 16) & 0xf);
  uint64_t gen = h >> 20;
  *why = kind == HR_H_INSTANCE ? "invalid or closed" : "invalid or destroyed";
  if ((h & 0xffff) == 0 || slot >= HR_MAX_HANDLES || gen > GEN_MASK) return NULL;
  slot_t *s = &slots[slot];
  if (hk != kind) {
    if (hk > HR_H_NONE && hk < HR_H_KIND_COUNT && s->obj && s->gen == gen && s->kind == hk) *why = "wrong kind of";
    return NULL;
  }
  if (!s->obj || s->gen != gen || s->kind != kind) return NULL;
  return s;
}

void *hr_handle_get(uint64_t h, int kind, struct hr_instance *owner, const char *call) {
  const char *why = "";
  pthread_mutex_lock(&lock);
  slot_t *s = find_locked(h, kind, &why);
  void *obj = s ? s->obj : NULL;
  int other = s && owner && s->owner != owner;
  pthread_mutex_unlock(&lock);
  if (!s) {
    int hk = (int)((h >> 16) & 0xf);
    if (why[0] == 'w')
      hr_fail(HR_E_INVALID, "%s: handle 0x%llx is a %s handle, not a %s handle", call, (hr_ull)h,
              hr_handle_kind_name(hk), hr_handle_kind_name(kind));
    else
      hr_fail(HR_E_INVALID, "%s: %s %s handle 0x%llx", call, why, hr_handle_kind_name(kind), (hr_ull)h);
    return NULL;
  }
  if (other) {
    hr_fail(HR_E_INVALID, "%s: %s 0x%llx belongs to another device instance", call, hr_handle_kind_name(kind),
            (hr_ull)h);
    return NULL;
  }
  return obj;
}

void *hr_handle_take(uint64_t h, int kind) {
  const char *why = "";
  pthread_mutex_lock(&lock);
  slot_t *s = find_locked(h, kind, &why);
  void *obj = NULL;
  if (s) {
    obj = s->obj;
    s->obj = NULL;
    s->owner = NULL;
  }
  pthread_mutex_unlock(&lock);
  return obj;
}

void *hr_handle_take_owned(int kind, struct hr_instance *owner, uint64_t *h_out) {
  void *obj = NULL;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < HR_MAX_HANDLES && !obj; i++) {
    slot_t *s = &slots[i];
    if (s->obj && s->kind == kind && s->owner == owner) {
      obj = s->obj;
      if (h_out) *h_out = encode(i, kind, s->gen);
      s->obj = NULL;
      s->owner = NULL;
    }
  }
  pthread_mutex_unlock(&lock);
  return obj;
}

int64_t hr_handle_count(int kind, struct hr_instance *owner) {
  int64_t n = 0;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < HR_MAX_HANDLES; i++)
    if (slots[i].obj && slots[i].kind == kind && (!owner || slots[i].owner == owner)) n++;
  pthread_mutex_unlock(&lock);
  return n;
}
