// ohai — the host side of ai_engine's data channel: OHOS::AI::IRequest / IResponse.
//
// A plugin library calls these member functions but never defines them: on a device they come
// from ai_engine's data_channel library, on a PC from here. They are resolved when the plugin is
// dlopen()ed, from the global scope of the hosting process, so they are exported even though the
// rest of the host is hidden (see data_channel.h).
//
// IRequest and IResponse are names only (no data members, no virtual functions) so that their
// layout never matters to a plugin; the objects handed out are the derived records below.
#include "data_channel.h"

#include <cstdlib>
#include <new>
#include <string>

namespace OHOS {
namespace AI {
namespace {

// The response's "no plugin type yet" value when it is created without a request (the same
// convention ai_engine uses).
constexpr int kNoPluginType = -1;

class RequestRecord final : public IRequest {
public:
    RequestRecord() = default;
    ~RequestRecord() {
        std::free(msg.data);
    }

    int request_id = 0;
    int operation_id = 0;
    uid_t client_uid = 0;
    long long transaction_id = 0;
    int plugin_type = 0;
    DataInfo msg{nullptr, 0};   // owned: free()d with the request
};

class ResponseRecord final : public IResponse {
public:
    ResponseRecord() = default;
    ~ResponseRecord() {
        std::free(result.data);
    }

    int request_id = 0;
    long long transaction_id = 0;
    int plugin_type = kNoPluginType;
    uid_t client_uid = 0;
    int ret_code = 0;
    std::string ret_desc;
    DataInfo result{nullptr, 0};   // owned until Detach(): free()d with the response
};

// IRequest/IResponse are empty, non-virtual bases of exactly one record type each, so the
// downcast is exact. Every object the host hands out was made by Create() below.
RequestRecord & record(IRequest * request) { return *static_cast<RequestRecord *>(request); }
const RequestRecord & record(const IRequest * request) { return *static_cast<const RequestRecord *>(request); }
ResponseRecord & record(IResponse * response) { return *static_cast<ResponseRecord *>(response); }
const ResponseRecord & record(const IResponse * response) { return *static_cast<const ResponseRecord *>(response); }

}  // namespace

// ---- IRequest ----------------------------------------------------------------------------

// nothrow: no exception may cross into a plugin, which may be built without exception support.
IRequest * IRequest::Create() { return new (std::nothrow) RequestRecord(); }

void IRequest::Destroy(IRequest *& request) {
    delete static_cast<RequestRecord *>(request);   // deleting null is a no-op
    request = nullptr;
}

int IRequest::GetRequestId() const { return record(this).request_id; }
void IRequest::SetRequestId(int requestId) { record(this).request_id = requestId; }
int IRequest::GetOperationId() const { return record(this).operation_id; }
void IRequest::SetOperationId(int operationId) { record(this).operation_id = operationId; }
uid_t IRequest::GetClientUid() const { return record(this).client_uid; }
void IRequest::SetClientUid(const uid_t clientUid) { record(this).client_uid = clientUid; }
long long IRequest::GetTransactionId() const { return record(this).transaction_id; }
void IRequest::SetTransactionId(long long transactionId) { record(this).transaction_id = transactionId; }
int IRequest::GetAlgoPluginType() const { return record(this).plugin_type; }
void IRequest::SetAlgoPluginType(int type) { record(this).plugin_type = type; }
const DataInfo & IRequest::GetMsg() const { return record(this).msg; }

// Takes ownership of msg.data (malloc()ed). Like ai_engine, a buffer set before is not freed:
// a plugin tested here must not rely on a replacement freeing the old one, because on a device
// it would leak (and here the host's leak tests see it).
void IRequest::SetMsg(const DataInfo & msg) { record(this).msg = msg; }

// ---- IResponse ---------------------------------------------------------------------------

IResponse * IResponse::Create(IRequest * request) {
    auto * response = new (std::nothrow) ResponseRecord();
    if (response == nullptr || request == nullptr) return response;
    const RequestRecord & from = record(request);
    response->request_id = from.request_id;
    response->transaction_id = from.transaction_id;
    response->plugin_type = from.plugin_type;
    response->client_uid = from.client_uid;
    return response;
}

void IResponse::Destroy(IResponse *& response) {
    delete static_cast<ResponseRecord *>(response);
    response = nullptr;
}

int IResponse::GetRequestId() const { return record(this).request_id; }
long long IResponse::GetTransactionId() const { return record(this).transaction_id; }
void IResponse::SetTransactionId(long long transactionId) { record(this).transaction_id = transactionId; }
int IResponse::GetAlgoPluginType() const { return record(this).plugin_type; }
void IResponse::SetAlgoPluginType(int type) { record(this).plugin_type = type; }
int IResponse::GetRetCode() const { return record(this).ret_code; }
void IResponse::SetRetCode(int retCode) { record(this).ret_code = retCode; }
uid_t IResponse::GetClientUid() const { return record(this).client_uid; }
void IResponse::SetClientUid(const uid_t clientUid) { record(this).client_uid = clientUid; }
const std::string & IResponse::GetRetDesc() const { return record(this).ret_desc; }

void IResponse::SetRetDesc(const std::string & retDesc) {
    // std::string may throw bad_alloc; a plugin must never see an exception from the host.
    try {
        record(this).ret_desc = retDesc;
    } catch (...) {
        record(this).ret_desc.clear();
    }
}

const DataInfo & IResponse::GetResult() const { return record(this).result; }

// Takes ownership of result.data (malloc()ed); a result set before is not freed (see SetMsg).
void IResponse::SetResult(const DataInfo & result) { record(this).result = result; }

// The caller keeps the buffer; the length stays readable, as in ai_engine.
void IResponse::Detach() { record(this).result.data = nullptr; }

}  // namespace AI
}  // namespace OHOS
