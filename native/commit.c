// One journal commit's data path in one call: the "pmem" persistence of a FileDevice running
// the plan that src/pm/commit_plan.ts describes and executes in TypeScript for every other
// device (SimDevice's crash images cover that reference; test/26 proves the two equal, byte
// for byte and line for line between fences). No policy here: the kernel chose the blocks,
// encoded the record and the entries; this file only moves bytes, writes lines back and
// fences, in this order:
//
//   1. each fresh data page is copied to its new block and its 64 lines written back (by
//      non-temporal stores where the CPU has them: arch_copy_page_written_back); the fresh
//      metadata ranges (written before the call) are written back;
//   2. the record is stored into its half and written back;
//   3. fence: the pages, metadata and record are durable before the commit word exists
//      (sfence completes the non-temporal stores as it does the write-backs);
//   4. the commit word (one aligned 8-byte store, so a crash leaves it old or new), written
//      back, fence: the commit point;
//   5. the entries (8-byte stores) and ranges are applied in place; each distinct line is
//      written back once, without a fence: the next commit's first fence orders them.
//
// Every offset and length is checked against the mapping before the first store, so a bad
// plan throws with nothing written.
//
// commit(handle, numbers, sources, record, words, ranges[, trace]) -> lines written back
//   numbers  Float64Array: copies, flushes, words, ranges, sources, record offset, commit
//            offset, sequence, then per copy (destination, source index, source offset),
//            flush (offset, length) pairs, word offsets, range offsets
//   sources  Array of Uint8Array: the buffers the pages are copied from (a working copy's
//            chunks: a few per call, never one per page)
//   record   Uint8Array: the encoded record
//   words    Uint32Array: (lo, hi) per word
//   ranges   Array of Uint8Array, one per range
//   trace    optional Float64Array (tests): receives each line written back, in order, and -1
//            for each fence, as far as it has room

#include "regions.h"
#include "arch/arch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_HEADER 8

typedef struct {
  size_t copies, flushes, words, ranges, buffers;
  uint64_t record_offset, commit_offset, sequence;
  const double *copy_at, *flush_at, *word_at, *range_at; // copy_at: (to, source, offset) triples
  uint8_t **sources;
  size_t *source_lengths;
  const uint8_t *record;
  size_t record_length;
  const uint32_t *values;
  uint8_t **range_bytes;
  size_t *range_lengths;
} plan_t;

// What a test sees of the order (see trace above); NULL `at` when not asked.
typedef struct {
  double *at;
  size_t capacity, count;
} trace_t;

static void note(trace_t *trace, double value) {
  if (trace->at != NULL && trace->count < trace->capacity) trace->at[trace->count] = value;
  trace->count++;
}

static void fence(trace_t *trace) {
  arch_cache_fence();
  note(trace, -1);
}

// The lines of [offset, +length) as written back: counted, and traced for tests. The
// mapping is page-aligned, so line numbers within it are pool line numbers.
static size_t noted_lines(uint64_t offset, uint64_t length, trace_t *trace) {
  if (length == 0) return 0;
  uint64_t line = offset / CACHE_LINE_BYTES;
  size_t lines = (size_t)((offset + length + CACHE_LINE_BYTES - 1) / CACHE_LINE_BYTES - line);
  if (trace->at != NULL) for (size_t i = 0; i < lines; i++) note(trace, (double)(line + i));
  return lines;
}

static size_t write_back(uint8_t *base, uint64_t offset, uint64_t length, trace_t *trace) {
  if (length == 0) return 0;
  uintptr_t first = (uintptr_t)(base + offset) & ~(uintptr_t)(CACHE_LINE_BYTES - 1);
  arch_cache_flush(first, (uintptr_t)(base + offset + length));
  return noted_lines(offset, length, trace);
}

static int compare_lines(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

// Steps 1-5 above; `lines` has room for one line per word. Returns lines written back.
static size_t execute(uint8_t *base, const plan_t *plan, uint64_t *lines, trace_t *trace) {
  size_t flushed = 0;
  for (size_t i = 0; i < plan->copies; i++) {
    const double *copy = plan->copy_at + 3 * i;
    uint64_t to = (uint64_t)copy[0];
    const uint8_t *from = plan->sources[(size_t)copy[1]] + (uint64_t)copy[2];
    // Non-temporal stores where the CPU has them: the same lines reach the persistence
    // domain by the fence below, without reading the old block first or a clwb per line.
    if (arch_copy_page_written_back(base + to, from)) {
      flushed += noted_lines(to, PAGE_BYTES, trace);
    } else {
      memcpy(base + to, from, PAGE_BYTES);
      flushed += write_back(base, to, PAGE_BYTES, trace);
    }
  }
  for (size_t i = 0; i < plan->flushes; i++) {
    flushed += write_back(base, (uint64_t)plan->flush_at[2 * i], (uint64_t)plan->flush_at[2 * i + 1], trace);
  }
  memcpy(base + plan->record_offset, plan->record, plan->record_length);
  flushed += write_back(base, plan->record_offset, plan->record_length, trace);
  fence(trace); // the record and every fresh block are durable before the commit word
  __atomic_store_n((uint64_t *)(base + plan->commit_offset), plan->sequence, __ATOMIC_RELAXED);
  flushed += write_back(base, plan->commit_offset, 8, trace);
  fence(trace); // commit point
  for (size_t i = 0; i < plan->words; i++) {
    uint64_t at = (uint64_t)plan->word_at[i];
    uint64_t value = (uint64_t)plan->values[2 * i] | ((uint64_t)plan->values[2 * i + 1] << 32);
    __atomic_store_n((uint64_t *)(base + at), value, __ATOMIC_RELAXED);
    lines[i] = at / CACHE_LINE_BYTES;
  }
  qsort(lines, plan->words, sizeof lines[0], compare_lines);
  for (size_t i = 0; i < plan->words; i++) {
    if (i > 0 && lines[i] == lines[i - 1]) continue;
    flushed += write_back(base, lines[i] * CACHE_LINE_BYTES, CACHE_LINE_BYTES, trace);
  }
  for (size_t i = 0; i < plan->ranges; i++) {
    uint64_t at = (uint64_t)plan->range_at[i];
    memcpy(base + at, plan->range_bytes[i], plan->range_lengths[i]);
    flushed += write_back(base, at, plan->range_lengths[i], trace);
  }
  return flushed; // no fence: the next commit's first one orders the applies
}

static bool inside(args_t *args, const mapping_t *mapping, double offset, double length, const char *what) {
  size_t size = mapping_length(mapping);
  bool integral = offset >= 0 && length >= 0 && offset == (double)(uint64_t)offset &&
                  length == (double)(uint64_t)length;
  if (integral && (uint64_t)offset + (uint64_t)length <= size) return true;
  throw_code(args->env, "ERANGE", NULL, "%s: %s [%.0f, +%.0f) is outside the mapping of %zu bytes", args->fn, what,
             offset, length, size);
  return false;
}

// One Uint8Array (not empty, not detached) per element of the array argument `i`.
static bool byte_list(args_t *args, size_t i, const char *name, size_t count, uint8_t **data, size_t *lengths) {
  napi_env env = args->env;
  uint32_t have = 0;
  bool is_array = false;
  if (!napi_check(env, napi_is_array(env, args->argv[i], &is_array), "napi_is_array")) return false;
  if (!is_array || !napi_check(env, napi_get_array_length(env, args->argv[i], &have), "napi_get_array_length")) {
    if (is_array) return false;
    throw_type(env, "%s: %s must be an array", args->fn, name);
    return false;
  }
  if (have != count) {
    throw_code(env, "EINVAL", NULL, "%s: %s has %u elements, the plan says %zu", args->fn, name, have, count);
    return false;
  }
  for (uint32_t e = 0; e < have; e++) {
    napi_value element;
    size_t length = 0;
    if (!napi_check(env, napi_get_element(env, args->argv[i], e, &element), "napi_get_element") ||
        !value_bytes(args, element, name, &data[e], &length)) {
      return false;
    }
    if (data[e] == NULL) {
      throw_code(env, "EINVAL", NULL, "%s: %s[%u] is empty or detached", args->fn, name, e);
      return false;
    }
    lengths[e] = length;
  }
  return true;
}

// A typed array argument of `type` (Float64Array or Uint32Array): its elements and count.
static bool typed(args_t *args, size_t i, const char *name, napi_typedarray_type type, void **data, size_t *count) {
  napi_env env = args->env;
  bool is_typed = false;
  napi_typedarray_type have;
  if (!napi_check(env, napi_is_typedarray(env, args->argv[i], &is_typed), "napi_is_typedarray")) return false;
  if (is_typed && !napi_check(env, napi_get_typedarray_info(env, args->argv[i], &have, count, data, NULL, NULL),
                              "napi_get_typedarray_info")) {
    return false;
  }
  if (!is_typed || have != type || (*data == NULL && *count != 0)) {
    throw_type(env, "%s: %s must be a %s", args->fn, name, type == napi_float64_array ? "Float64Array" : "Uint32Array");
    return false;
  }
  return true;
}

// The counts and offsets of `numbers`, each range checked against the mapping.
static bool plan_numbers(args_t *args, const mapping_t *mapping, const double *n, size_t count, plan_t *plan) {
  for (size_t i = 0; i < PLAN_HEADER && i < count; i++) {
    if (!(n[i] >= 0 && n[i] <= (double)SAFE_INTEGER_MAX && n[i] == (double)(uint64_t)n[i])) count = 0; // not a count
  }
  if (count < PLAN_HEADER) {
    throw_code(args->env, "EINVAL", NULL, "%s: numbers must start with eight non-negative integers", args->fn);
    return false;
  }
  plan->copies = (size_t)n[0], plan->flushes = (size_t)n[1], plan->words = (size_t)n[2], plan->ranges = (size_t)n[3];
  plan->buffers = (size_t)n[4];
  plan->record_offset = (uint64_t)n[5], plan->commit_offset = (uint64_t)n[6], plan->sequence = (uint64_t)n[7];
  size_t want = PLAN_HEADER + 3 * plan->copies + 2 * plan->flushes + plan->words + plan->ranges;
  bool sane = plan->copies <= count && plan->flushes <= count && plan->words <= count && plan->ranges <= count &&
              plan->buffers <= count;
  if (!sane || want != count) {
    throw_code(args->env, "EINVAL", NULL, "%s: numbers holds %zu values, its counts need %zu", args->fn, count, want);
    return false;
  }
  plan->copy_at = n + PLAN_HEADER;
  plan->flush_at = plan->copy_at + 3 * plan->copies;
  plan->word_at = plan->flush_at + 2 * plan->flushes;
  plan->range_at = plan->word_at + plan->words;
  if (plan->commit_offset % 8 != 0 || !inside(args, mapping, (double)plan->commit_offset, 8, "commit word")) {
    if (plan->commit_offset % 8 != 0) throw_code(args->env, "EINVAL", NULL, "%s: commit word not 8-aligned", args->fn);
    return false;
  }
  for (size_t i = 0; i < plan->copies; i++) {
    if (!inside(args, mapping, plan->copy_at[3 * i], PAGE_BYTES, "copy")) return false;
  }
  for (size_t i = 0; i < plan->flushes; i++) {
    if (!inside(args, mapping, plan->flush_at[2 * i], plan->flush_at[2 * i + 1], "flush")) return false;
  }
  for (size_t i = 0; i < plan->words; i++) {
    if (!inside(args, mapping, plan->word_at[i], 8, "word")) return false;
    if ((uint64_t)plan->word_at[i] % 8 != 0) {
      throw_code(args->env, "EINVAL", NULL, "%s: word %zu is not 8-aligned", args->fn, i);
      return false;
    }
  }
  return true;
}

// The byte arguments, checked; the caller frees plan->sources and plan->range_bytes/lengths.
static bool plan_bytes(args_t *args, const mapping_t *mapping, const uint32_t *values, size_t value_count,
                       plan_t *plan) {
  if (value_count != 2 * plan->words) {
    throw_code(args->env, "EINVAL", NULL, "%s: words holds %zu values, not %zu", args->fn, value_count,
               2 * plan->words);
    return false;
  }
  plan->values = values;
  uint8_t *record = NULL;
  if (!arg_bytes(args, 3, "record", &record, &plan->record_length)) return false;
  plan->record = record;
  if (!inside(args, mapping, (double)plan->record_offset, (double)plan->record_length, "record")) return false;
  if (!byte_list(args, 2, "sources", plan->buffers, plan->sources, plan->source_lengths) ||
      !byte_list(args, 5, "ranges", plan->ranges, plan->range_bytes, plan->range_lengths)) {
    return false;
  }
  for (size_t i = 0; i < plan->copies; i++) {
    const double *copy = plan->copy_at + 3 * i;
    bool known = copy[1] >= 0 && copy[1] < (double)plan->buffers && copy[1] == (double)(size_t)copy[1];
    double end = copy[2] + PAGE_BYTES;
    if (!known || !(copy[2] >= 0) || copy[2] != (double)(uint64_t)copy[2] ||
        end > (double)plan->source_lengths[(size_t)copy[1]]) {
      throw_code(args->env, "ERANGE", NULL, "%s: copy %zu reads outside its source", args->fn, i);
      return false;
    }
  }
  for (size_t i = 0; i < plan->ranges; i++) {
    if (!inside(args, mapping, plan->range_at[i], (double)plan->range_lengths[i], "range")) return false;
  }
  return true;
}

napi_value commit_execute(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  double *numbers = NULL;
  uint32_t *values = NULL;
  size_t number_count = 0, value_count = 0;
  plan_t plan = {0};
  if (!args_get(env, info, "commit", 6, &args) || !arg_mapping(&args, 0, &mapping) ||
      !typed(&args, 1, "numbers", napi_float64_array, (void **)&numbers, &number_count) ||
      !typed(&args, 4, "words", napi_uint32_array, (void **)&values, &value_count) ||
      !plan_numbers(&args, mapping, numbers, number_count, &plan)) {
    return NULL;
  }
  if (!mapping_writable(mapping)) return throw_code(env, "EACCES", NULL, "commit: the mapping is read-only");
  if (strcmp(arch_cache_flush_name(), "none") == 0) {
    return throw_code(env, "EOPNOTSUPP", NULL,
                      "commit: no cache-line write-back instruction here; use msync persistence");
  }
  // One allocation owns every array this call needs; freed below on every path.
  size_t lists = plan.buffers + plan.ranges;
  size_t bytes = lists * (sizeof(uint8_t *) + sizeof(size_t)) + plan.words * sizeof(uint64_t) + 1;
  void *scratch = calloc(1, bytes);
  if (scratch == NULL) return throw_errno(env, ENOMEM, "commit", "calloc");
  plan.sources = (uint8_t **)scratch;
  plan.range_bytes = plan.sources + plan.buffers;
  plan.source_lengths = (size_t *)(plan.range_bytes + plan.ranges);
  plan.range_lengths = plan.source_lengths + plan.buffers;
  uint64_t *lines = (uint64_t *)(plan.range_lengths + plan.ranges);
  trace_t trace = {0};
  napi_valuetype kind = napi_undefined;
  if (args.argc > 6 && !napi_check(env, napi_typeof(env, args.argv[6], &kind), "napi_typeof")) {
    free(scratch);
    return NULL;
  }
  bool traced = kind != napi_undefined;
  napi_value result = NULL;
  if (traced && !typed(&args, 6, "trace", napi_float64_array, (void **)&trace.at, &trace.capacity)) {
    free(scratch);
    return NULL;
  }
  if (plan_bytes(&args, mapping, values, value_count, &plan)) {
    result = make_number(env, (double)execute(mapping_addr(mapping), &plan, lines, &trace));
  }
  free(scratch);
  return result;
}
