// ohai — our declaration of ai_engine's OHOS::AI::IResponse (same rules as request.h: implemented
// by the host, never by a plugin).
#pragma once

#include <string>
#include <sys/types.h>

#include "aie/data_info.h"

namespace OHOS {
namespace AI {

class IRequest;

class IResponse {
public:
    // Copies the request id, transaction id, plugin type and client uid of `request`.
    static IResponse *Create(IRequest *request);
    // Frees the response; also free()s its result buffer unless Detach() was called.
    static void Destroy(IResponse *&response);

    int GetRequestId() const;
    long long GetTransactionId() const;
    void SetTransactionId(long long transactionId);
    int GetAlgoPluginType() const;
    void SetAlgoPluginType(int type);
    int GetRetCode() const;
    void SetRetCode(int retCode);
    uid_t GetClientUid() const;
    void SetClientUid(const uid_t clientUid);
    const std::string &GetRetDesc() const;
    void SetRetDesc(const std::string &retDesc);
    const DataInfo &GetResult() const;
    // Takes ownership of result.data, which must come from malloc().
    void SetResult(const DataInfo &result);
    // Gives up ownership of the result buffer (the caller frees it).
    void Detach();

    IResponse(const IResponse &) = delete;
    IResponse &operator=(const IResponse &) = delete;

protected:
    IResponse() = default;
    ~IResponse() = default;
};

}  // namespace AI
}  // namespace OHOS
