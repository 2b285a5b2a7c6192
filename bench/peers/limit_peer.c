/*
 * The physical limit: the least work that makes the op's units durable on this machine.
 * The file (--file, on the pool's file system) is mapped MAP_SHARED|MAP_POPULATE; each op
 * writes its units and ends with one sfence:
 *   --variant clwb  copy each unit from DRAM with memcpy, write back its lines with the best
 *                   flush instruction (clwb > clflushopt > clflush, chosen from cpuid, as the
 *                   addon does), then sfence;
 *   --variant nt    copy each unit with non-temporal stores (movntdq), then sfence.
 * No log, no metadata, no atomicity: nothing can be cheaper and still durable.
 */
#include "common.h"

#include <cpuid.h>
#include <fcntl.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <unistd.h>

typedef void (*flush_fn)(const uint8_t *start, uint64_t bytes);

__attribute__((target("clwb"))) static void flush_clwb(const uint8_t *start, uint64_t bytes) {
  for (uint64_t i = 0; i < bytes; i += CACHE_LINE_BYTES) _mm_clwb((void *)(start + i));
}

__attribute__((target("clflushopt"))) static void flush_clflushopt(const uint8_t *start, uint64_t bytes) {
  for (uint64_t i = 0; i < bytes; i += CACHE_LINE_BYTES) _mm_clflushopt((void *)(start + i));
}

static void flush_clflush(const uint8_t *start, uint64_t bytes) {
  for (uint64_t i = 0; i < bytes; i += CACHE_LINE_BYTES) _mm_clflush((const void *)(start + i));
}

static const char *flush_name = "clflush";

static flush_fn flush_choose(void) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) ebx = 0;
  if (ebx & bit_CLWB) {
    flush_name = "clwb";
    return flush_clwb;
  }
  if (ebx & bit_CLFLUSHOPT) {
    flush_name = "clflushopt";
    return flush_clflushopt;
  }
  return flush_clflush;
}

/* Non-temporal copy of a whole number of 64-byte lines (both ends 16-byte aligned). */
static void copy_nt(uint8_t *dst, const uint8_t *src, uint64_t bytes) {
  for (uint64_t i = 0; i < bytes; i += 16) {
    __m128i v = _mm_load_si128((const __m128i *)(src + i));
    _mm_stream_si128((__m128i *)(dst + i), v);
  }
}

typedef struct {
  bench_args_t *args;
  chooser_t chooser;
  uint8_t *base;
  uint8_t *source; /* the op's unit content, in DRAM */
  flush_fn flush;
  int nt;
  uint64_t lines, fences;
} peer_t;

static uint8_t *map_file(const bench_args_t *a) {
  int fd = open(a->file, O_RDWR | O_CREAT, 0600);
  if (fd < 0) die("open");
  if (ftruncate(fd, (off_t)a->data_bytes) != 0) die("ftruncate");
  uint8_t *base = mmap(NULL, a->data_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (base == MAP_FAILED) die("mmap");
  close(fd);
  return base;
}

static void peer_prepare(uint64_t n, void *ctx) {
  peer_t *p = ctx;
  chooser_next(&p->chooser, p->args);
  unit_fill(p->source, p->args->unit_bytes, n, p->args->stamp);
}

static void peer_op(uint64_t n, void *ctx) {
  peer_t *p = ctx;
  const bench_args_t *a = p->args;
  (void)n;
  for (uint64_t j = 0; j < a->count; j++) {
    uint8_t *unit = p->base + p->chooser.chosen[j] * a->unit_bytes;
    if (p->nt) {
      copy_nt(unit, p->source, a->unit_bytes);
    } else {
      memcpy(unit, p->source, a->unit_bytes);
      p->flush(unit, a->unit_bytes);
    }
  }
  _mm_sfence();
  p->lines += a->count * (a->unit_bytes / CACHE_LINE_BYTES);
  p->fences++;
}

static void peer_reset(void *ctx) {
  peer_t *p = ctx;
  p->lines = 0;
  p->fences = 0;
}

int main(int argc, char **argv) {
  bench_args_t a;
  args_parse(argc, argv, &a);
  if (strcmp(a.variant, "clwb") && strcmp(a.variant, "nt")) {
    fprintf(stderr, "--variant must be clwb or nt\n");
    return 2;
  }
  if (a.unit_bytes % CACHE_LINE_BYTES != 0) {
    fprintf(stderr, "--unit-bytes must be a multiple of %d\n", CACHE_LINE_BYTES);
    return 2;
  }
  peer_t p = {.args = &a, .nt = !strcmp(a.variant, "nt"), .flush = flush_choose()};
  chooser_init(&p.chooser, &a);
  p.base = map_file(&a);
  p.source = aligned_alloc(CACHE_LINE_BYTES, a.unit_bytes);
  if (p.source == NULL) die("out of memory");
  timings_t t;
  const peer_ops_t ops = {peer_prepare, peer_op, peer_reset};
  run_ops(&a, &t, &ops, &p);
  char notes[64];
  snprintf(notes, sizeof notes, "%s", p.nt ? "movntdq + sfence" : flush_name);
  if (!p.nt) strncat(notes, " + sfence", sizeof notes - strlen(notes) - 1);
  print_result(&t, p.lines, p.fences, p.lines * CACHE_LINE_BYTES, notes);
  munmap(p.base, a.data_bytes);
  return 0;
}
