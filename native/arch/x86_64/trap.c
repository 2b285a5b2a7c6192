// x86-64: the page-fault error code the kernel leaves in the signal frame (REG_ERR) has bit 1
// set when the faulting access was a write. Async-signal-safe: it reads the frame only.

#include "../arch.h"

#include <ucontext.h>

#define X86_PF_WRITE 0x2 // page-fault error code: the access was a write

arch_access_t arch_fault_access(const void *ucontext) {
  const ucontext_t *uc = ucontext;
  return (uc->uc_mcontext.gregs[REG_ERR] & X86_PF_WRITE) != 0 ? ARCH_ACCESS_WRITE : ARCH_ACCESS_READ;
}
