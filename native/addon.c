// Registration of regions_native. Names and signatures are typed by src/arch/addon.ts,
// the only module that loads this file.

#include "regions.h"
#include "socket.h"

typedef struct entry {
  const char *name;
  napi_callback callback;
} entry_t;

static const entry_t ENTRIES[] = {
    {"map", map_map},
    {"buffers", map_buffers},
    {"unmap", map_unmap},
    {"msync", memory_msync},
    {"memfdCreate", memory_memfd_create},
    {"fallocate", memory_fallocate},
    {"protect", memory_protect},
    {"sharedBuffer", shared_buffer},
    {"trackRegister", track_register},
    {"trackUnregister", track_unregister},
    {"trackStatus", track_status},
    {"trackReset", track_reset},
    {"trackFreeze", track_freeze},
    {"trackThaw", track_thaw},
    {"sharedRegister", track_shared_register},
    {"sharedCollect", track_shared_collect},
    {"shootdownInstall", shootdown_install},
    {"uffdAvailable", uffd_available},
    {"uffdOpen", uffd_open},
    {"uffdRegister", uffd_register},
    {"uffdUnregister", uffd_unregister},
    {"pagemapWritten", uffd_pagemap_written},
    {"flush", flush_flush},
    {"fence", flush_fence},
    {"commit", commit_execute},
    {"flushInstruction", flush_instruction},
    {"lockTry", lock_try},
    {"lockWait", lock_wait},
    {"unlock", lock_unlock},
    {"posixLockTry", lock_posix_try},
    {"posixUnlock", lock_posix_unlock},
    {"lockHolderPid", lock_holder_pid},
    {"futexWait", futex_wait},
    {"futexWake", futex_wake},
    {"layout", layout_js},
    {"socketConnect", socket_connect},
    {"socketListen", socket_listen},
    {"socketSend", socket_send},
    {"socketReceive", socket_receive},
    {"socketClose", socket_close},
    {"peerCredentials", socket_peer_credentials},
    {"socketSendSome", socket_send_some},
    {"socketsReadable", sockets_readable},
    {"peerPidfd", pidfd_of_peer},
    {"pidfdSignal", pidfd_signal},
    {"pidfdExited", pidfd_exited},
};

#define ENTRY_COUNT (sizeof ENTRIES / sizeof ENTRIES[0])

static napi_value addon_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[ENTRY_COUNT];
  flush_init();
  for (size_t i = 0; i < ENTRY_COUNT; i++) {
    properties[i] = (napi_property_descriptor){
        .utf8name = ENTRIES[i].name,
        .method = ENTRIES[i].callback,
        .attributes = napi_enumerable,
    };
  }
  if (!napi_check(env, napi_define_properties(env, exports, ENTRY_COUNT, properties), "napi_define_properties")) {
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, addon_init)
