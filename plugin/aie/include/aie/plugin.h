// ohai — our declaration of ai_engine's plugin interface (OHOS::AI::IPlugin and its callback).
//
// Binary contract with ai_engine's server: the order of the virtual functions below is the vtable
// layout and must not change; return values are 0 for success; the server finds a plugin by the
// exported C symbol PLUGIN_INTERFACE (a factory returning a new plugin), later `delete`s the plugin
// and dlclose()s the library.
#pragma once

#include "aie/data_info.h"
#include "aie/request.h"
#include "aie/response.h"

namespace OHOS {
namespace AI {

enum PluginEvent {
    ON_PLUGIN_SUCCEED = 0,
    ON_PLUGIN_FAIL = 1,
};

class IPluginCallback {
public:
    virtual ~IPluginCallback() = default;
    // Delivers the one reply of an asynchronous request; the host takes the response.
    virtual int OnEvent(PluginEvent event, IResponse *response) = 0;
};

class IPlugin {
public:
    virtual ~IPlugin() = default;
    virtual const long long GetVersion() const = 0;
    virtual const char *GetName() const = 0;
    // "SYNC" or "ASYNC"; the server refuses calls in the other mode (RETCODE_WRONG_INFER_MODE).
    virtual const char *GetInferMode() const = 0;
    // Creates `response` with IResponse::Create(request); the server destroys it.
    virtual int SyncProcess(IRequest *request, IResponse *&response) = 0;
    // The request is destroyed when this returns; reply exactly once through callback->OnEvent.
    virtual int AsyncProcess(IRequest *request, IPluginCallback *callback) = 0;
    // outputInfo.data: malloc()ed by the plugin, freed by the server.
    virtual int Prepare(long long transactionId, const DataInfo &inputInfo, DataInfo &outputInfo) = 0;
    // isFullUnload: the last client of the plugin is gone.
    virtual int Release(bool isFullUnload, long long transactionId, const DataInfo &inputInfo) = 0;
    virtual int SetOption(int optionType, const DataInfo &inputInfo) = 0;
    // outputInfo.data: malloc()ed by the plugin, freed by the server.
    virtual int GetOption(int optionType, const DataInfo &inputInfo, DataInfo &outputInfo) = 0;
};

// The factory the server looks up with dlsym(handle, PLUGIN_INTERFACE_NAME).
typedef IPlugin *(*IPLUGIN_INTERFACE)();
constexpr const char *PLUGIN_INTERFACE_NAME = "PLUGIN_INTERFACE";

}  // namespace AI
}  // namespace OHOS
