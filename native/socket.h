// Unix-socket entry points (socket.c): blocking client I/O for the synchronous regiond
// client, the server's listening socket; regiond's descriptor passing and readiness look
// (serving.c); and the peer's credentials and process handle (peer.c). Registered in addon.c.

#ifndef REGIONS_SOCKET_H
#define REGIONS_SOCKET_H

#include "regions.h"

#ifdef __cplusplus
extern "C" {
#endif

napi_value socket_connect(napi_env env, napi_callback_info info);
napi_value socket_listen(napi_env env, napi_callback_info info);
napi_value socket_send(napi_env env, napi_callback_info info);
napi_value socket_receive(napi_env env, napi_callback_info info);
napi_value socket_close(napi_env env, napi_callback_info info);

// ---- serving.c
napi_value socket_send_some(napi_env env, napi_callback_info info);
napi_value sockets_readable(napi_env env, napi_callback_info info);

// ---- peer.c
napi_value socket_peer_credentials(napi_env env, napi_callback_info info);
napi_value pidfd_of_peer(napi_env env, napi_callback_info info);
napi_value pidfd_signal(napi_env env, napi_callback_info info);
napi_value pidfd_exited(napi_env env, napi_callback_info info);

#ifdef __cplusplus
}
#endif

#endif
