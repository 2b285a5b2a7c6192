// A fault's access kind on an architecture without an implementation here: unknown. The
// signal frame's layout (where a write bit lives, if anywhere) is per architecture, so
// rather than guess at it segv.c asks the kernel for the page's protection now: a fault on a
// readable page was a store (see segv.c's fault_is_write).

#include "../arch.h"

arch_access_t arch_fault_access(const void *ucontext) {
  (void)ucontext;
  return ARCH_ACCESS_UNKNOWN;
}
