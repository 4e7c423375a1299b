// The host's ai_engine data channel (plugin/aie/host/data_channel.cpp): what a request and a
// response copy, own and free, and that null pointers are harmless.
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "check.h"
#include "data_channel.h"

using OHOS::AI::IRequest;
using OHOS::AI::IResponse;

namespace {

// Bytes the C heap has handed out and not got back. Freeing is observed through this because a
// freed buffer cannot be inspected; the buffers below are large enough to stand out from any
// bookkeeping the C++ runtime does meanwhile.
constexpr int kBig = 8 << 20;

long long heap_in_use() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    const struct mallinfo2 info = mallinfo2();
    return static_cast<long long>(info.uordblks + info.hblkhd);
#else
    return -1;   // unknown: the checks that need it are skipped
#endif
}

DataInfo malloc_filled(int length, unsigned char value) {
    auto * data = static_cast<unsigned char *>(std::malloc(length));
    std::memset(data, value, length);   // touched, so the allocation is real
    return DataInfo{data, length};
}

void request_fields_round_trip() {
    IRequest * request = IRequest::Create();
    CHECK(request != nullptr);
    CHECK(request->GetRequestId() == 0);
    CHECK(request->GetMsg().data == nullptr && request->GetMsg().length == 0);
    request->SetRequestId(42);
    request->SetOperationId(7);
    request->SetClientUid(1000);
    request->SetTransactionId((3LL << 32) + 5);
    request->SetAlgoPluginType(9);
    DataInfo msg = malloc_filled(16, 'x');
    request->SetMsg(msg);
    CHECK(request->GetRequestId() == 42);
    CHECK(request->GetOperationId() == 7);
    CHECK(request->GetClientUid() == 1000);
    CHECK(request->GetTransactionId() == (3LL << 32) + 5);
    CHECK(request->GetAlgoPluginType() == 9);
    CHECK(request->GetMsg().data == msg.data);   // stored, not copied: the request owns it now
    CHECK(request->GetMsg().length == 16);
    IRequest::Destroy(request);
    CHECK(request == nullptr);
}

void response_create_copies_the_request() {
    IRequest * request = IRequest::Create();
    request->SetRequestId(11);
    request->SetOperationId(2);
    request->SetClientUid(4242);
    request->SetTransactionId((1LL << 32) + 99);
    request->SetAlgoPluginType(5);
    IResponse * response = IResponse::Create(request);
    IRequest::Destroy(request);   // the response must not depend on the request afterwards
    CHECK(response != nullptr);
    CHECK(response->GetRequestId() == 11);
    CHECK(response->GetTransactionId() == (1LL << 32) + 99);
    CHECK(response->GetAlgoPluginType() == 5);
    CHECK(response->GetClientUid() == 4242);
    CHECK(response->GetRetCode() == 0);
    CHECK(response->GetRetDesc().empty());
    CHECK(response->GetResult().data == nullptr && response->GetResult().length == 0);

    response->SetRetCode(1700);
    response->SetRetDesc("algorithm failed");
    response->SetTransactionId(77);
    response->SetAlgoPluginType(6);
    response->SetClientUid(1);
    CHECK(response->GetRetCode() == 1700);
    CHECK(response->GetRetDesc() == "algorithm failed");
    CHECK(response->GetTransactionId() == 77);
    CHECK(response->GetAlgoPluginType() == 6);
    CHECK(response->GetClientUid() == 1);
    IResponse::Destroy(response);
    CHECK(response == nullptr);
}

void response_without_request() {
    IResponse * response = IResponse::Create(nullptr);
    CHECK(response != nullptr);
    CHECK(response->GetRequestId() == 0);
    CHECK(response->GetAlgoPluginType() == -1);   // "no plugin type", as ai_engine
    IResponse::Destroy(response);
    CHECK(response == nullptr);
}

void destroy_of_null_is_harmless() {
    IRequest * request = nullptr;
    IRequest::Destroy(request);
    CHECK(request == nullptr);
    IResponse * response = nullptr;
    IResponse::Destroy(response);
    CHECK(response == nullptr);
    // Destroying twice through the same pointer is harmless too: the first Destroy nulled it.
    IResponse * twice = IResponse::Create(nullptr);
    IResponse::Destroy(twice);
    IResponse::Destroy(twice);
    CHECK(twice == nullptr);
}

void response_destroy_frees_the_result() {
    const long long before = heap_in_use();
    IResponse * response = IResponse::Create(nullptr);
    DataInfo result = malloc_filled(kBig, 'r');
    response->SetResult(result);
    CHECK(response->GetResult().data == result.data);
    CHECK(response->GetResult().length == kBig);
    if (before >= 0) CHECK(heap_in_use() - before >= kBig);
    IResponse::Destroy(response);
    if (before >= 0) CHECK(heap_in_use() - before < kBig / 2);
}

void detached_result_survives_destroy() {
    const long long before = heap_in_use();
    IResponse * response = IResponse::Create(nullptr);
    DataInfo result = malloc_filled(kBig, 'd');
    response->SetResult(result);
    response->Detach();
    CHECK(response->GetResult().data == nullptr);
    IResponse::Destroy(response);
    if (before >= 0) CHECK(heap_in_use() - before >= kBig);   // still allocated: the caller owns it
    CHECK(result.data[0] == 'd' && result.data[kBig - 1] == 'd');
    std::free(result.data);
    if (before >= 0) CHECK(heap_in_use() - before < kBig / 2);
}

void request_destroy_frees_the_message() {
    const long long before = heap_in_use();
    IRequest * request = IRequest::Create();
    request->SetMsg(malloc_filled(kBig, 'm'));
    if (before >= 0) CHECK(heap_in_use() - before >= kBig);
    IRequest::Destroy(request);
    if (before >= 0) CHECK(heap_in_use() - before < kBig / 2);
}

void empty_result_is_fine() {
    IResponse * response = IResponse::Create(nullptr);
    response->SetResult(DataInfo{nullptr, 0});
    IResponse::Destroy(response);
    CHECK(response == nullptr);
}

}  // namespace

int main() {
    request_fields_round_trip();
    response_create_copies_the_request();
    response_without_request();
    destroy_of_null_is_harmless();
    response_destroy_frees_the_result();
    detached_result_survives_destroy();
    request_destroy_frees_the_message();
    empty_result_is_fine();
    return finish("test_aie_data_channel");
}
