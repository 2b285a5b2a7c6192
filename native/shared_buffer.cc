// SharedArrayBuffers over part of a mapping: the one piece of the addon written against V8
// itself, since N-API has no way to make a SharedArrayBuffer over external memory.
//
// A SharedArrayBuffer can be posted to worker threads (the memory is shared, not moved) and
// used with Atomics, but it can never be detached. So each one's backing store holds the
// mapping's address range (mapping_share_acquire) and its deleter, which V8 may run on any
// thread once no isolate holds the store, lets go of it (mapping_share_release). After
// unmap() the range is anonymous zero memory until then (map.c): stale access is harmless.
//
// N-API values are V8 Local handles in the current handle scope (Node's own
// v8impl::JsValueFromV8LocalValue): the conversion below is the same reinterpretation.

#include <v8.h>

#include <cstring>
#include <memory>

#include "regions.h"

static void shared_buffer_deleter(void *data, size_t length, void *deleter_data) {
  (void)data;
  (void)length;
  mapping_share_release(static_cast<mapping_t *>(deleter_data));
}

static napi_value napi_value_of(v8::Local<v8::Value> local) {
  static_assert(sizeof(napi_value) == sizeof(v8::Local<v8::Value>), "a napi_value is a V8 Local");
  napi_value value;
  std::memcpy(static_cast<void *>(&value), static_cast<void *>(&local), sizeof value);
  return value;
}

// sharedBuffer(handle, offset, length) -> SharedArrayBuffer over [offset, offset+length).
napi_value shared_buffer(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  uint8_t *start;
  size_t length;
  if (!args_get(env, info, "sharedBuffer", 3, &args) || !arg_mapping(&args, 0, &mapping) ||
      !arg_mapping_range(&args, mapping, 1, &start, &length)) {
    return nullptr;
  }
  if (length == 0 || length > (size_t)CHUNK_BYTES_MAX) {
    return throw_code(env, "ERANGE", nullptr, "sharedBuffer: length %zu is outside [1, %lld]", length,
                      (long long)CHUNK_BYTES_MAX);
  }
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  ASSERT(isolate != nullptr);
  mapping_share_acquire(mapping); // released by the deleter, whatever happens next
  std::unique_ptr<v8::BackingStore> store =
      v8::SharedArrayBuffer::NewBackingStore(start, length, shared_buffer_deleter, mapping);
  ASSERT(store != nullptr && store->Data() == start && store->IsShared());
  v8::Local<v8::SharedArrayBuffer> buffer = v8::SharedArrayBuffer::New(isolate, std::move(store));
  ASSERT(!buffer.IsEmpty());
  return napi_value_of(buffer.As<v8::Value>());
}
