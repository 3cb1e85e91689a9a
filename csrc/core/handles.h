/*
 * Internal: the one handle table behind every opaque handle of the ABI (instances, graph
 * sets, copy engines, CUDA events). A handle encodes its slot, its kind and the slot's
 * generation, so a closed, forged or wrong-kind handle is HR_E_INVALID with a message, never
 * a dereference. Objects other than instances record the instance that owns them; closing
 * the instance releases them (hr_handle_take_owned).
 *
 *   bits  0..15  slot + 1 (0 = never valid)
 *   bits 16..19  kind (HR_H_*)
 *   bits 20..51  generation of the slot (bumped on every reuse; 52 bits fit a JS number)
 */
#ifndef HR_HANDLES_H
#define HR_HANDLES_H

#include <stdint.h>

struct hr_instance;

enum hr_handle_kind { HR_H_NONE = 0, HR_H_INSTANCE, HR_H_GRAPH_SET, HR_H_COPY_ENGINE, HR_H_EVENT, HR_H_KIND_COUNT };

#define HR_MAX_HANDLES 8192

/* "device", "graph set", "copy engine", "event". */
const char *hr_handle_kind_name(int kind);
/* Registers obj; HR_E_STATE naming `call` when the table is full. */
int hr_handle_new(int kind, void *obj, struct hr_instance *owner, const char *call, uint64_t *out);
/* The live object of `kind` behind h, else NULL with HR_E_INVALID naming `call`. When owner is
 * not NULL the object must also belong to that instance. */
void *hr_handle_get(uint64_t h, int kind, struct hr_instance *owner, const char *call);
/* Unregisters h (which must be live and of `kind`) and returns its object, else NULL. */
void *hr_handle_take(uint64_t h, int kind);
/* Unregisters one live handle of `kind` owned by `owner` and returns its object (*h_out its
 * handle), or NULL when none is left: instance close drains its objects with this. */
void *hr_handle_take_owned(int kind, struct hr_instance *owner, uint64_t *h_out);
/* Live handles of `kind` owned by owner (tests, close). */
int64_t hr_handle_count(int kind, struct hr_instance *owner);

#endif
