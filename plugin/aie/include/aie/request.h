// ohai — our declaration of ai_engine's OHOS::AI::IRequest.
//
// The class is only a name: its member functions are implemented by the hosting process
// (ai_engine's data_channel library on a device, plugin/aie/host on a PC) and resolved when a
// plugin is loaded, so a plugin must call them and never define them. Therefore no data members,
// no virtual functions, and signatures that mangle exactly like ai_engine's.
#pragma once

#include <sys/types.h>

#include "aie/data_info.h"

namespace OHOS {
namespace AI {

class IRequest {
public:
    // A request exists only on the heap of the host; plugins never construct one.
    static IRequest *Create();
    // Frees the request and its message and sets `request` to null.
    static void Destroy(IRequest *&request);

    int GetRequestId() const;
    void SetRequestId(int requestId);
    int GetOperationId() const;
    void SetOperationId(int operationId);
    uid_t GetClientUid() const;
    void SetClientUid(const uid_t clientUid);
    // (adapterId << 32) + sessionId: which client transaction the request belongs to.
    long long GetTransactionId() const;
    void SetTransactionId(long long transactionId);
    int GetAlgoPluginType() const;
    void SetAlgoPluginType(int type);
    // The request body; owned by the request (valid until it is destroyed, which for an
    // asynchronous request is right after AsyncProcess returns).
    const DataInfo &GetMsg() const;
    void SetMsg(const DataInfo &msg);

    IRequest(const IRequest &) = delete;
    IRequest &operator=(const IRequest &) = delete;

protected:
    IRequest() = default;
    ~IRequest() = default;
};

}  // namespace AI
}  // namespace OHOS
