// Argument checks for every entry point, and nothing else (xv6's sysfile.c split): the
// mechanism files receive plain C values that are already known to be well formed.
// Wrong JavaScript type -> TypeError; a number outside its domain -> code ERANGE.

#include "regions.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

bool args_get(napi_env env, napi_callback_info info, const char *fn, size_t count, args_t *args) {
  ASSERT(count <= ARGS_MAX);
  args->env = env;
  args->fn = fn;
  args->argc = ARGS_MAX;
  if (!napi_check(env, napi_get_cb_info(env, info, &args->argc, args->argv, NULL, NULL), "napi_get_cb_info")) {
    return false;
  }
  if (args->argc < count) {
    throw_type(env, "%s: expected %zu arguments, got %zu", fn, count, args->argc);
    return false;
  }
  return true;
}

static bool value_number(args_t *args, napi_value value, const char *name, double *out) {
  napi_valuetype type;
  if (!napi_check(args->env, napi_typeof(args->env, value, &type), "napi_typeof")) return false;
  if (type != napi_number) {
    throw_type(args->env, "%s: %s must be a number", args->fn, name);
    return false;
  }
  return napi_check(args->env, napi_get_value_double(args->env, value, out), "napi_get_value_double");
}

static bool arg_number(args_t *args, size_t i, const char *name, double *out) {
  ASSERT(i < args->argc);
  return value_number(args, args->argv[i], name, out);
}

bool value_integer(args_t *args, napi_value input, const char *name, int64_t min, int64_t max, int64_t *out) {
  double value;
  ASSERT(min <= max);
  if (!value_number(args, input, name, &value)) return false;
  if (!isfinite(value) || value != trunc(value) || fabs(value) > (double)SAFE_INTEGER_MAX) {
    throw_type(args->env, "%s: %s must be a safe integer, got %g", args->fn, name, value);
    return false;
  }
  if (value < (double)min || value > (double)max) {
    throw_code(args->env, "ERANGE", NULL, "%s: %s %.0f is outside [%lld, %lld]", args->fn, name, value,
               (long long)min, (long long)max);
    return false;
  }
  *out = (int64_t)value;
  return true;
}

bool arg_integer(args_t *args, size_t i, const char *name, int64_t min, int64_t max, int64_t *out) {
  ASSERT(i < args->argc);
  return value_integer(args, args->argv[i], name, min, max, out);
}

// A string of at most capacity-1 UTF-8 bytes without NUL, copied NUL-terminated into out.
bool value_string(args_t *args, napi_value value, const char *name, char *out, size_t capacity, size_t *length) {
  napi_env env = args->env;
  napi_valuetype type;
  size_t bytes = 0;
  ASSERT(capacity > 0);
  if (!napi_check(env, napi_typeof(env, value, &type), "napi_typeof")) return false;
  if (type != napi_string) {
    throw_type(env, "%s: %s must be a string", args->fn, name);
    return false;
  }
  if (!napi_check(env, napi_get_value_string_utf8(env, value, NULL, 0, &bytes), "napi_get_value_string_utf8")) {
    return false;
  }
  if (bytes >= capacity) {
    throw_code(env, "ERANGE", NULL, "%s: %s is %zu bytes long; the limit is %zu", args->fn, name, bytes, capacity - 1);
    return false;
  }
  size_t copied = 0;
  if (!napi_check(env, napi_get_value_string_utf8(env, value, out, capacity, &copied), "napi_get_value_string_utf8")) {
    return false;
  }
  ASSERT(copied == bytes);
  if (strlen(out) != copied) {
    throw_code(env, "EINVAL", NULL, "%s: %s contains a NUL character", args->fn, name);
    return false;
  }
  *length = copied;
  return true;
}

bool arg_string(args_t *args, size_t i, const char *name, char *out, size_t capacity, size_t *length) {
  ASSERT(i < args->argc);
  return value_string(args, args->argv[i], name, out, capacity, length);
}

// One of a closed set of strings; *out is its index in choices.
bool value_choice(args_t *args, napi_value value, const char *name, const char *const *choices, size_t count,
                  size_t *out) {
  char text[32];
  size_t length;
  napi_valuetype type;
  if (!napi_check(args->env, napi_typeof(args->env, value, &type), "napi_typeof")) return false;
  if (type == napi_string) {
    size_t bytes = 0;
    if (!napi_check(args->env, napi_get_value_string_utf8(args->env, value, NULL, 0, &bytes),
                    "napi_get_value_string_utf8")) {
      return false;
    }
    if (bytes < sizeof text) {
      if (!value_string(args, value, name, text, sizeof text, &length)) return false;
      for (size_t c = 0; c < count; c++) {
        if (strcmp(text, choices[c]) == 0) {
          *out = c;
          return true;
        }
      }
    }
  }
  char list[160] = "";
  for (size_t c = 0; c < count; c++) {
    size_t used = strlen(list);
    snprintf(list + used, sizeof list - used, "%s'%s'", c == 0 ? "" : ", ", choices[c]);
  }
  throw_type(args->env, "%s: %s must be one of %s", args->fn, name, list);
  return false;
}

bool arg_choice(args_t *args, size_t i, const char *name, const char *const *choices, size_t count, size_t *out) {
  ASSERT(i < args->argc);
  return value_choice(args, args->argv[i], name, choices, count, out);
}

bool arg_object(args_t *args, size_t i, const char *name) {
  napi_valuetype type;
  ASSERT(i < args->argc);
  if (!napi_check(args->env, napi_typeof(args->env, args->argv[i], &type), "napi_typeof")) return false;
  if (type != napi_object) {
    throw_type(args->env, "%s: %s must be an object", args->fn, name);
    return false;
  }
  return true;
}

bool object_property(args_t *args, napi_value object, const char *key, napi_value *out) {
  napi_valuetype type;
  napi_value value;
  if (!napi_check(args->env, napi_get_named_property(args->env, object, key, &value), "napi_get_named_property") ||
      !napi_check(args->env, napi_typeof(args->env, value, &type), "napi_typeof")) {
    return false;
  }
  *out = type == napi_undefined ? NULL : value;
  return true;
}

bool arg_bool(args_t *args, size_t i, const char *name, bool *out) {
  napi_valuetype type;
  ASSERT(i < args->argc);
  if (!napi_check(args->env, napi_typeof(args->env, args->argv[i], &type), "napi_typeof")) return false;
  if (type != napi_boolean) {
    throw_type(args->env, "%s: %s must be a boolean", args->fn, name);
    return false;
  }
  return napi_check(args->env, napi_get_value_bool(args->env, args->argv[i], out), "napi_get_value_bool");
}

// A descriptor that cannot exist is EBADF, as the kernel would say, not a range error.
bool arg_fd(args_t *args, size_t i, int *out) {
  double value;
  if (!arg_number(args, i, "fd", &value)) return false;
  if (value != trunc(value) || value < 0 || value > (double)INT_MAX) {
    throw_code(args->env, "EBADF", NULL, "%s: fd %g is not a file descriptor", args->fn, value);
    return false;
  }
  *out = (int)value;
  return true;
}

// Milliseconds, fractions allowed; +Infinity means no time limit.
bool arg_timeout_ms(args_t *args, size_t i, double *out) {
  double value;
  if (!arg_number(args, i, "timeoutMs", &value)) return false;
  if (isnan(value) || value < 0) {
    throw_code(args->env, "ERANGE", NULL, "%s: timeoutMs %g must be >= 0 (or Infinity)", args->fn, value);
    return false;
  }
  *out = value;
  return true;
}

static size_t element_bytes(napi_typedarray_type type) {
  switch (type) {
  case napi_int16_array:
  case napi_uint16_array: return 2;
  case napi_int32_array:
  case napi_uint32_array:
  case napi_float32_array: return 4;
  case napi_float64_array:
  case napi_bigint64_array:
  case napi_biguint64_array: return 8;
  default: return 1;
  }
}

// The bytes of an ArrayBuffer, typed array or DataView. A SharedArrayBuffer has no N-API
// accessor; addon.ts passes a Uint8Array over it instead.
bool arg_bytes(args_t *args, size_t i, const char *name, uint8_t **data, size_t *length) {
  ASSERT(i < args->argc);
  return value_bytes(args, args->argv[i], name, data, length);
}

bool value_bytes(args_t *args, napi_value value, const char *name, uint8_t **data, size_t *length) {
  napi_env env = args->env;
  bool is_buffer = false, is_typed = false, is_view = false;
  void *base = NULL;
  if (!napi_check(env, napi_is_arraybuffer(env, value, &is_buffer), "napi_is_arraybuffer") ||
      !napi_check(env, napi_is_typedarray(env, value, &is_typed), "napi_is_typedarray") ||
      !napi_check(env, napi_is_dataview(env, value, &is_view), "napi_is_dataview")) {
    return false;
  }
  napi_status status;
  if (is_buffer) {
    status = napi_get_arraybuffer_info(env, value, &base, length);
  } else if (is_typed) {
    napi_typedarray_type type;
    size_t count = 0;
    status = napi_get_typedarray_info(env, value, &type, &count, &base, NULL, NULL);
    *length = count * element_bytes(type);
  } else if (is_view) {
    status = napi_get_dataview_info(env, value, length, &base, NULL, NULL);
  } else {
    throw_type(env, "%s: %s must be an ArrayBuffer, typed array or DataView", args->fn, name);
    return false;
  }
  if (!napi_check(env, status, "reading buffer info")) return false;
  if (base == NULL) *length = 0; // detached (or empty): nothing may be touched
  *data = base;
  return true;
}

napi_value make_bool(napi_env env, bool value) {
  napi_value result;
  return napi_check(env, napi_get_boolean(env, value, &result), "napi_get_boolean") ? result : NULL;
}

napi_value make_number(napi_env env, double value) {
  napi_value result;
  return napi_check(env, napi_create_double(env, value, &result), "napi_create_double") ? result : NULL;
}

napi_value make_string(napi_env env, const char *value) {
  napi_value result;
  return napi_check(env, napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &result), "napi_create_string_utf8")
             ? result
             : NULL;
}

napi_value make_undefined(napi_env env) {
  napi_value result;
  return napi_check(env, napi_get_undefined(env, &result), "napi_get_undefined") ? result : NULL;
}

bool object_set(napi_env env, napi_value object, const char *key, napi_value value) {
  return value != NULL && napi_check(env, napi_set_named_property(env, object, key, value), "napi_set_named_property");
}

bool object_set_number(napi_env env, napi_value object, const char *key, double value) {
  return object_set(env, object, key, make_number(env, value));
}
