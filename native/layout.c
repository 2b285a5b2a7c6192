// layout(): the C side's view of every structure it shares with TypeScript, so that
// test/07-native-layout.test.ts can hold the two to each other and name each disagreement.
//
// One flat object, name -> number. A name is the TypeScript constant it must equal
// (src/map/control_area.ts, src/constants.ts, src/arch/addon.ts; `WORD.requestSeq` is a field
// of WORD), and the number is computed from the C definitions (offsetof, sizeof), never
// written twice. Names of accepted strings (TrackMode.*, SharedMechanism.*) map to 1.

#include "registry.h"

#include <string.h>

typedef struct layout_value {
  const char *name;
  double value;
} layout_value_t;

#define WORD_OF(field) {"WORD." #field, (double)(offsetof(control_header_t, field) / sizeof(uint32_t))}
#define SLOT_WORD_OF(field) {"SLOT_WORD." #field, (double)(offsetof(mapper_slot_t, field) / sizeof(uint32_t))}

static const layout_value_t LAYOUT[] = {
    {"PAGE_BYTES", PAGE_BYTES},
    {"CACHE_LINE_BYTES", CACHE_LINE_BYTES},
    {"CHUNK_BYTES_MAX", (double)CHUNK_BYTES_MAX},
    // The control area of a shared working copy (registry.h).
    {"CONTROL_MAGIC", CONTROL_MAGIC},
    {"CONTROL_VERSION", CONTROL_VERSION},
    {"CONTROL_HEADER_BYTES", CONTROL_HEADER_BYTES},
    {"BITMAP_OFFSET", (double)offsetof(control_area_t, bitmap)},
    {"MAPPER_SLOT_BYTES", (double)sizeof(mapper_slot_t)},
    {"MAPPER_SLOTS", (double)CONTROL_SLOTS_MAX},
    {"slotByteOffset(0)", (double)offsetof(control_area_t, slot[0])},
    {"slotByteOffset(last)", (double)offsetof(control_area_t, slot[CONTROL_SLOTS_MAX - 1])},
    // The words the handlers read by their constants, the others from the struct.
    WORD_OF(magic),
    WORD_OF(version),
    {"WORD.requestSeq", (double)CONTROL_WORD_REQUEST},
    {"WORD.releaseSeq", (double)CONTROL_WORD_RELEASE},
    {"WORD.regiondPid", (double)CONTROL_WORD_REGIOND_PID},
    WORD_OF(pages),
    {"WORD.overflow", (double)CONTROL_WORD_OVERFLOW},
    WORD_OF(slots),
    SLOT_WORD_OF(pid),
    {"SLOT_WORD.ackSeq", (double)CONTROL_SLOT_WORD_ACK},
    SLOT_WORD_OF(mechanism),
    {"SLOT_WORD.registered", (double)CONTROL_SLOT_WORD_REGISTERED},
    {"SLOT_WORD.otherThreads", (double)CONTROL_SLOT_WORD(other_threads)},
    {"MECHANISM_CODE.none", CONTROL_MECHANISM_NONE},
    {"MECHANISM_CODE.userfaultfd", CONTROL_MECHANISM_USERFAULTFD},
    {"MECHANISM_CODE.mprotect", CONTROL_MECHANISM_MPROTECT},
    {"MECHANISM_CODE.compare", CONTROL_MECHANISM_COMPARE},
    {"MECHANISM_CODE.manual", CONTROL_MECHANISM_MANUAL},
    {"REGISTERED.none", CONTROL_REGISTERED_NONE},
    {"REGISTERED.signal", CONTROL_REGISTERED_SIGNAL},
    {"REGISTERED.quiet", CONTROL_REGISTERED_QUIET},
    {"REGISTERED.reports", CONTROL_REGISTERED_REPORTS},
    // The registry, as trackRegister and sharedRegister take it.
    {"TRACK_FAULT_PAGES_MAX", TRACK_FAULT_PAGES_MAX},
};

#define LAYOUT_COUNT (sizeof LAYOUT / sizeof LAYOUT[0])

static const char *const MODE_NAMES[TRACK_MODE_COUNT] = TRACK_MODE_NAMES;

// The bitmap is bytes here (bit p%8 of byte p/8) and u32 words in TypeScript (bit p%32 of
// word p/32): the same bits only on a little-endian CPU.
static bool little_endian(void) {
  const uint32_t one = 1;
  return *(const uint8_t *)&one == 1;
}

static bool set_names(napi_env env, napi_value result, const char *group, size_t count) {
  for (size_t i = 0; i < count; i++) {
    char name[64];
    size_t used = text_append(name, 0, sizeof name, group, strlen(group));
    used = text_append(name, used, sizeof name, MODE_NAMES[i], strlen(MODE_NAMES[i]));
    name[used] = '\0';
    if (!object_set_number(env, result, name, 1)) return false;
  }
  return true;
}

// layout() -> { [name]: number }
napi_value layout_js(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  if (!napi_check(env, napi_create_object(env, &result), "napi_create_object")) return NULL;
  for (size_t i = 0; i < LAYOUT_COUNT; i++) {
    if (!object_set_number(env, result, LAYOUT[i].name, LAYOUT[i].value)) return NULL;
  }
  if (!object_set_number(env, result, "littleEndian", little_endian() ? 1 : 0) ||
      !set_names(env, result, "TrackMode.", TRACK_MODE_COUNT) ||
      !set_names(env, result, "SharedMechanism.", SHARED_MECHANISM_COUNT)) {
    return NULL;
  }
  return result;
}
