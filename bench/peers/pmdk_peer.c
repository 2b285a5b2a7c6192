/*
 * PMDK libpmemobj peer: one transaction per op that adds the op's units to the undo log and
 * overwrites them. --variant per-unit adds one range per unit; --variant one-range adds one
 * range covering all of them (meant for sequential units, where it is exact).
 *
 * The pool (--file) holds one object of --data-bytes; it is created on first use and reused
 * by later trials. Run it with PMEM_IS_PMEM_FORCE=1 on tmpfs so libpmem flushes with CPU
 * instructions, as on real PM.
 *
 * Counting: this program defines libpmem's flush, drain, persist, msync and mem* functions
 * itself and exports them (-rdynamic), so libpmemobj's calls into libpmem bind here first;
 * each counts the cache lines it writes back and the fences it issues, then calls the real
 * one (dlvsym). A fence is counted per drain and per persist or mem* call without NODRAIN;
 * lines are the 64-byte lines of each flushed (or non-temporally written) range.
 */
#include "common.h"

#include <dlfcn.h>
#include <libpmem.h>
#include <libpmemobj.h>
#include <sys/stat.h>

#define LAYOUT "region-system-bench"
#define POOL_OVERHEAD_BYTES (64ull << 20)

static uint64_t lines_flushed, fences;

static uint64_t lines_of(const void *addr, size_t len) {
  if (len == 0) return 0;
  uintptr_t first = (uintptr_t)addr / CACHE_LINE_BYTES, last = ((uintptr_t)addr + len - 1) / CACHE_LINE_BYTES;
  return last - first + 1;
}

static void *real(const char *name) {
  void *fn = dlvsym(RTLD_NEXT, name, "LIBPMEM_1.0");
  if (fn == NULL) fn = dlsym(RTLD_NEXT, name);
  if (fn == NULL) {
    fprintf(stderr, "cannot find libpmem's %s to wrap\n", name);
    exit(1);
  }
  return fn;
}

typedef void (*range_fn)(const void *, size_t);
typedef int (*range_int_fn)(const void *, size_t);
typedef void (*drain_fn)(void);
typedef void *(*copy_fn)(void *, const void *, size_t, unsigned);
typedef void *(*set_fn)(void *, int, size_t, unsigned);

#define REAL(name, type) \
  static type real_fn = NULL; \
  if (real_fn == NULL) real_fn = (type)real(name)

void pmem_flush(const void *addr, size_t len) {
  REAL("pmem_flush", range_fn);
  lines_flushed += lines_of(addr, len);
  real_fn(addr, len);
}

void pmem_drain(void) {
  REAL("pmem_drain", drain_fn);
  fences++;
  real_fn();
}

void pmem_persist(const void *addr, size_t len) {
  REAL("pmem_persist", range_fn);
  lines_flushed += lines_of(addr, len);
  fences++;
  real_fn(addr, len);
}

void pmem_deep_flush(const void *addr, size_t len) {
  REAL("pmem_deep_flush", range_fn);
  lines_flushed += lines_of(addr, len);
  real_fn(addr, len);
}

int pmem_msync(const void *addr, size_t len) {
  REAL("pmem_msync", range_int_fn);
  lines_flushed += lines_of(addr, len);
  fences++;
  return real_fn(addr, len);
}

static void count_mem(const void *dest, size_t len, unsigned flags) {
  if (!(flags & PMEM_F_MEM_NOFLUSH)) lines_flushed += lines_of(dest, len);
  if (!(flags & PMEM_F_MEM_NODRAIN)) fences++;
}

void *pmem_memcpy(void *dest, const void *src, size_t len, unsigned flags) {
  REAL("pmem_memcpy", copy_fn);
  count_mem(dest, len, flags);
  return real_fn(dest, src, len, flags);
}

void *pmem_memmove(void *dest, const void *src, size_t len, unsigned flags) {
  REAL("pmem_memmove", copy_fn);
  count_mem(dest, len, flags);
  return real_fn(dest, src, len, flags);
}

void *pmem_memset(void *dest, int c, size_t len, unsigned flags) {
  REAL("pmem_memset", set_fn);
  count_mem(dest, len, flags);
  return real_fn(dest, c, len, flags);
}

struct root {
  PMEMoid data;
};

typedef struct {
  bench_args_t *args;
  chooser_t chooser;
  PMEMobjpool *pop;
  PMEMoid data;
  uint8_t *base;
  int one_range;
} peer_t;

static PMEMobjpool *pool_open(const bench_args_t *a, PMEMoid *data) {
  struct stat st;
  PMEMobjpool *pop;
  int fresh = stat(a->file, &st) != 0;
  if (fresh) pop = pmemobj_create(a->file, LAYOUT, a->data_bytes + a->data_bytes / 8 + POOL_OVERHEAD_BYTES, 0600);
  else pop = pmemobj_open(a->file, LAYOUT);
  if (pop == NULL) {
    fprintf(stderr, "pmemobj %s %s: %s\n", fresh ? "create" : "open", a->file, pmemobj_errormsg());
    exit(1);
  }
  PMEMoid root_oid = pmemobj_root(pop, sizeof(struct root));
  struct root *root = pmemobj_direct(root_oid);
  if (OID_IS_NULL(root->data)) {
    volatile int failed = 0;
    TX_BEGIN(pop) {
      pmemobj_tx_add_range(root_oid, 0, sizeof *root);
      root->data = pmemobj_tx_zalloc(a->data_bytes, 1);
    } TX_ONABORT {
      failed = 1;
    } TX_END
    if (failed) {
      fprintf(stderr, "pmemobj: cannot allocate %llu bytes: %s\n", (unsigned long long)a->data_bytes, pmemobj_errormsg());
      exit(1);
    }
  }
  if (pmemobj_alloc_usable_size(root->data) < a->data_bytes) {
    fprintf(stderr, "pmemobj pool %s holds fewer than %llu data bytes; delete it\n", a->file, (unsigned long long)a->data_bytes);
    exit(1);
  }
  *data = root->data;
  return pop;
}

static void peer_prepare(uint64_t n, void *ctx) {
  peer_t *p = ctx;
  (void)n;
  chooser_next(&p->chooser, p->args);
}

static void peer_op(uint64_t n, void *ctx) {
  peer_t *p = ctx;
  const bench_args_t *a = p->args;
  const uint64_t *units = p->chooser.chosen;
  volatile int failed = 0;
  TX_BEGIN(p->pop) {
    if (p->one_range) {
      uint64_t first = units[0], last = units[a->count - 1];
      pmemobj_tx_add_range(p->data, first * a->unit_bytes, (last - first + 1) * a->unit_bytes);
    } else {
      for (uint64_t j = 0; j < a->count; j++) pmemobj_tx_add_range(p->data, units[j] * a->unit_bytes, a->unit_bytes);
    }
    for (uint64_t j = 0; j < a->count; j++) unit_fill(p->base + units[j] * a->unit_bytes, a->unit_bytes, n, a->stamp);
  } TX_ONABORT {
    failed = 1;
  } TX_END
  if (failed) {
    fprintf(stderr, "pmemobj transaction aborted: %s\n", pmemobj_errormsg());
    exit(1);
  }
}

static void peer_reset(void *ctx) {
  (void)ctx;
  lines_flushed = 0;
  fences = 0;
}

int main(int argc, char **argv) {
  bench_args_t a;
  args_parse(argc, argv, &a);
  peer_t p = {.args = &a, .one_range = !strcmp(a.variant, "one-range")};
  if (strcmp(a.variant, "one-range") && strcmp(a.variant, "per-unit")) {
    fprintf(stderr, "--variant must be per-unit or one-range\n");
    return 2;
  }
  chooser_init(&p.chooser, &a);
  p.pop = pool_open(&a, &p.data);
  p.base = pmemobj_direct(p.data);
  /* Like every system, touch each page first: a fresh process's first access is not a commit cost. */
  volatile uint8_t sink = 0;
  for (uint64_t offset = 0; offset < a.data_bytes; offset += 4096) sink ^= p.base[offset];
  (void)sink;
  timings_t t;
  const peer_ops_t ops = {peer_prepare, peer_op, peer_reset};
  run_ops(&a, &t, &ops, &p);
  if (fences == 0) {
    fprintf(stderr, "no fence was counted: libpmem's functions were not interposed (link with -rdynamic)\n");
    return 1;
  }
  int is_pmem = pmem_is_pmem(p.base, a.unit_bytes);
  print_result(&t, lines_flushed, fences, lines_flushed * CACHE_LINE_BYTES, is_pmem ? "pmem_is_pmem=1" : "pmem_is_pmem=0 (msync)");
  pmemobj_close(p.pop);
  return 0;
}
