// Throwing JavaScript errors. Expected failures carry `code` (an errno name, or 'ECLOSED'
// for a handle used after unmap) and `syscall`, like Node's own system errors, so the
// TypeScript layer can branch on `code` without parsing messages.

#include "regions.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MESSAGE_BYTES 320

static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name != NULL) return name;
#endif
  switch (err) {
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case EINTR: return "EINTR";
  case EIO: return "EIO";
  case EBADF: return "EBADF";
  case EAGAIN: return "EAGAIN";
  case ENOMEM: return "ENOMEM";
  case EACCES: return "EACCES";
  case EFAULT: return "EFAULT";
  case EINVAL: return "EINVAL";
  case ENODEV: return "ENODEV";
  case ENOLCK: return "ENOLCK";
  case ENOSYS: return "ENOSYS";
  case ERANGE: return "ERANGE";
  case EOVERFLOW: return "EOVERFLOW";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case ETIMEDOUT: return "ETIMEDOUT";
  default: return "EUNKNOWN";
  }
}

static const char *errno_text(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  // strerror() may share a static buffer between worker threads; this one does not.
  const char *text = strerrordesc_np(err);
  if (text != NULL) return text;
#endif
  return "system error";
}

// Builds and throws Error or TypeError with `code` and optional `syscall`; returns NULL so
// entry points can `return throw_...(...)`.
static napi_value throw_with(napi_env env, bool type_error, const char *code, const char *syscall,
                             const char *message) {
  napi_value code_value, message_value, error, syscall_value;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return NULL;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok) {
    napi_throw_error(env, code, message);
    return NULL;
  }
  napi_status status = type_error ? napi_create_type_error(env, code_value, message_value, &error)
                                  : napi_create_error(env, code_value, message_value, &error);
  if (status != napi_ok) {
    napi_throw_error(env, code, message);
    return NULL;
  }
  if (syscall != NULL && napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok) {
    napi_set_named_property(env, error, "syscall", syscall_value);
  }
  napi_throw(env, error);
  return NULL;
}

napi_value throw_errno(napi_env env, int err, const char *fn, const char *syscall) {
  char message[MESSAGE_BYTES];
  snprintf(message, sizeof message, "%s: %s: %s, %s", fn, errno_name(err), errno_text(err), syscall);
  return throw_with(env, false, errno_name(err), syscall, message);
}

napi_value throw_code(napi_env env, const char *code, const char *syscall, const char *format, ...) {
  char message[MESSAGE_BYTES];
  va_list list;
  va_start(list, format);
  vsnprintf(message, sizeof message, format, list);
  va_end(list);
  return throw_with(env, false, code, syscall, message);
}

napi_value throw_type(napi_env env, const char *format, ...) {
  char message[MESSAGE_BYTES];
  va_list list;
  va_start(list, format);
  vsnprintf(message, sizeof message, format, list);
  va_end(list);
  return throw_with(env, true, "ERR_INVALID_ARG_TYPE", NULL, message);
}

// For N-API calls that fail only on engine trouble (out of memory, pending termination):
// make sure *some* exception is pending so the caller can simply return NULL.
bool napi_check(napi_env env, napi_status status, const char *what) {
  if (status == napi_ok) return true;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  const char *detail = (info != NULL && info->error_message != NULL) ? info->error_message : "unknown";
  throw_code(env, "ENAPI", NULL, "regions_native: %s failed: %s", what, detail);
  return false;
}
