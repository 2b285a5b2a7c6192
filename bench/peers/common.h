/*
 * What both native peers share: the trial protocol of bench/trial.ts, in C.
 *
 *   <peer> --file F --data-bytes N --unit-bytes U --count K --pattern seq|random
 *          --seed S --stamp N --warmup W [--warmup-ms M] --ops-min A --ops-max B --budget-ms T [peer options]
 *
 * One op commits K units of U bytes (a 4 KiB page, or a 64-byte record) chosen as
 * bench/workload.ts chooses them: `seq` walks the data in order, `random` draws K distinct
 * units with the same PRNG (mulberry32) and seed, sorted. Each unit is filled with one byte
 * value and stamped with the op number and the trial's stamp, so every op changes every unit.
 * W ops warm up; then ops run until B, or until at least A ran and T ms passed.
 * The result is one JSON line on stdout: {"ops", "opNs": [...], "linesFlushed", "fences",
 * "pmBytes", "notes"}; a failure is one line on stderr and exit 1.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_LINE_BYTES 64
#define OPS_LIMIT 100000

typedef struct {
  const char *file;
  uint64_t data_bytes;
  uint64_t unit_bytes;
  uint64_t count;
  int random;
  uint32_t seed;
  uint32_t stamp;
  uint64_t warmup;
  double warmup_ms; /* and warm up until this much time passed (at most OPS_LIMIT ops) */
  uint64_t ops_min;
  uint64_t ops_max;
  double budget_ms;
  const char *variant;
} bench_args_t;

typedef struct {
  uint64_t units;     /* data_bytes / unit_bytes */
  uint32_t *order;    /* partial Fisher-Yates state for random choice */
  uint64_t *chosen;   /* this op's units, sorted */
  uint64_t cursor;    /* next unit for seq */
  uint32_t prng;
} chooser_t;

static void die(const char *what) {
  fprintf(stderr, "%s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
  exit(1);
}

static uint64_t arg_u64(const char *name, const char *value) {
  char *end = NULL;
  errno = 0;
  unsigned long long parsed = strtoull(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0') {
    fprintf(stderr, "%s: \"%s\" is not a whole number\n", name, value);
    exit(2);
  }
  return (uint64_t)parsed;
}

static void args_parse(int argc, char **argv, bench_args_t *a) {
  memset(a, 0, sizeof *a);
  a->variant = "";
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--file")) a->file = v;
    else if (!strcmp(k, "--data-bytes")) a->data_bytes = arg_u64(k, v);
    else if (!strcmp(k, "--unit-bytes")) a->unit_bytes = arg_u64(k, v);
    else if (!strcmp(k, "--count")) a->count = arg_u64(k, v);
    else if (!strcmp(k, "--pattern")) a->random = !strcmp(v, "random");
    else if (!strcmp(k, "--seed")) a->seed = (uint32_t)arg_u64(k, v);
    else if (!strcmp(k, "--stamp")) a->stamp = (uint32_t)arg_u64(k, v);
    else if (!strcmp(k, "--warmup")) a->warmup = arg_u64(k, v);
    else if (!strcmp(k, "--warmup-ms")) a->warmup_ms = (double)arg_u64(k, v);
    else if (!strcmp(k, "--ops-min")) a->ops_min = arg_u64(k, v);
    else if (!strcmp(k, "--ops-max")) a->ops_max = arg_u64(k, v);
    else if (!strcmp(k, "--budget-ms")) a->budget_ms = (double)arg_u64(k, v);
    else if (!strcmp(k, "--variant")) a->variant = v;
    else {
      fprintf(stderr, "unknown option %s\n", k);
      exit(2);
    }
  }
  if (a->file == NULL || a->unit_bytes == 0 || a->data_bytes % a->unit_bytes != 0 || a->count == 0 ||
      a->count > a->data_bytes / a->unit_bytes || a->ops_min == 0 || a->ops_max < a->ops_min ||
      a->ops_max > OPS_LIMIT) {
    fprintf(stderr, "bad arguments: need --file, --unit-bytes dividing --data-bytes, 0 < --count <= units, 0 < --ops-min <= --ops-max <= %d\n", OPS_LIMIT);
    exit(2);
  }
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* mulberry32: the same generator as bench/workload.ts. */
static uint32_t prng_next(uint32_t *state) {
  uint32_t t = (*state += 0x6D2B79F5u);
  t = (t ^ (t >> 15)) * (t | 1u);
  t ^= t + (t ^ (t >> 7)) * (t | 61u);
  return t ^ (t >> 14);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void chooser_init(chooser_t *c, const bench_args_t *a) {
  c->units = a->data_bytes / a->unit_bytes;
  c->order = malloc(c->units * sizeof *c->order);
  c->chosen = malloc(a->count * sizeof *c->chosen);
  if (c->order == NULL || c->chosen == NULL) die("out of memory");
  for (uint64_t i = 0; i < c->units; i++) c->order[i] = (uint32_t)i;
  c->cursor = 0;
  c->prng = a->seed;
}

/* Fills c->chosen with this op's units (sorted). */
static void chooser_next(chooser_t *c, const bench_args_t *a) {
  if (!a->random) {
    for (uint64_t j = 0; j < a->count; j++) c->chosen[j] = (c->cursor + j) % c->units;
    c->cursor = (c->cursor + a->count) % c->units;
    if (c->chosen[a->count - 1] < c->chosen[0]) qsort(c->chosen, a->count, sizeof *c->chosen, cmp_u64);
    return;
  }
  for (uint64_t j = 0; j < a->count; j++) {
    uint64_t pick = j + prng_next(&c->prng) % (uint32_t)(c->units - j);
    uint32_t swap = c->order[j];
    c->order[j] = c->order[pick];
    c->order[pick] = swap;
    c->chosen[j] = c->order[j];
  }
  qsort(c->chosen, a->count, sizeof *c->chosen, cmp_u64);
}

/* The unit's content for op `op`: one byte value, then the op number and the trial's stamp. */
static void unit_fill(uint8_t *unit, uint64_t bytes, uint64_t op, uint32_t stamp) {
  memset(unit, (int)(op % 255) + 1, bytes);
  uint32_t words[2] = {(uint32_t)op, stamp};
  memcpy(unit, words, sizeof words);
}

typedef struct {
  uint64_t *op_ns;
  uint64_t ops;
} timings_t;

static void print_result(const timings_t *t, uint64_t lines, uint64_t fences, uint64_t pm_bytes, const char *notes) {
  printf("{\"ops\":%llu,\"linesFlushed\":%llu,\"fences\":%llu,\"pmBytes\":%llu,\"notes\":\"%s\",\"opNs\":[",
         (unsigned long long)t->ops, (unsigned long long)lines, (unsigned long long)fences,
         (unsigned long long)pm_bytes, notes);
  for (uint64_t i = 0; i < t->ops; i++) printf("%s%llu", i ? "," : "", (unsigned long long)t->op_ns[i]);
  printf("]}\n");
}

typedef struct {
  void (*prepare)(uint64_t n, void *ctx); /* untimed: choose the op's units */
  void (*op)(uint64_t n, void *ctx);      /* timed: write and commit them */
  void (*reset)(void *ctx);               /* zero the peer's counters after warm-up */
} peer_ops_t;

/* Runs the warm-up and the measured ops. */
static void run_ops(const bench_args_t *a, timings_t *t, const peer_ops_t *p, void *ctx) {
  t->op_ns = calloc(a->ops_max, sizeof *t->op_ns);
  if (t->op_ns == NULL) die("out of memory");
  uint64_t n = 0;
  uint64_t warm_start = now_ns();
  for (; n < a->warmup || (n < OPS_LIMIT && (double)(now_ns() - warm_start) / 1e6 < a->warmup_ms); n++) {
    p->prepare(n, ctx);
    p->op(n, ctx);
  }
  p->reset(ctx);
  uint64_t start = now_ns();
  t->ops = 0;
  while (t->ops < a->ops_max) {
    if (t->ops >= a->ops_min && (double)(now_ns() - start) / 1e6 >= a->budget_ms) break;
    p->prepare(n, ctx);
    uint64_t before = now_ns();
    p->op(n++, ctx);
    t->op_ns[t->ops++] = now_ns() - before;
  }
}

#endif
