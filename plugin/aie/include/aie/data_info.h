// ohai — the byte buffer that crosses ai_engine's interfaces (our declaration of ai_engine's
// `DataInfo`; see docs/aie-protocol.md).
//
// Binary contract: DataInfo lives at global scope, not in OHOS::AI, because IRequest::SetMsg,
// IResponse::SetResult and IPlugin::Prepare take it by reference and their mangled names must be
// the ones ai_engine's data_channel library and server use.
#pragma once

// Buffers are malloc()ed; whoever receives one frees it with free() (see response.h for results
// and plugin.h for Prepare/GetOption outputs).
typedef struct DataInfo {
    unsigned char *data;
    int length;
} DataInfo;
