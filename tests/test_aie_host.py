"""The ai_engine plugin host (ohai.aie, plugin/aie/host): loading, the call-mode check, the one-reply
rule, timeouts, the 1 MiB limit and buffer ownership, checked against small test plugins built
here with the system compiler (no model, no ohai plugin library needed)."""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ohai import aie

ROOT = Path(__file__).resolve().parent.parent
MIB = aie.MAX_MESSAGE_BYTES

# A plugin that does what its message says: "<command>[:<argument>]", or a JSON object (echoed,
# with a tiny stream for `ohai aie call --follow`). Its infer mode comes from
# $TEST_PLUGIN_INFER_MODE when it is created; $TEST_PLUGIN_FACTORY_NULL makes the factory fail.
TEST_PLUGIN = r"""
#include "aie/plugin.h"
#include "aie/retcode.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace OHOS::AI;

namespace {

std::atomic<int> g_process_calls{0};
std::atomic<int> g_stream_step{0};
std::string g_last_release;
std::mutex g_release_mutex;

DataInfo copy_of(const std::string & s) {
    auto * p = static_cast<unsigned char *>(std::malloc(s.empty() ? 1 : s.size()));
    std::memcpy(p, s.data(), s.size());
    return DataInfo{p, static_cast<int>(s.size())};
}

DataInfo filled(long n) {
    auto * p = static_cast<unsigned char *>(std::malloc(n > 0 ? n : 1));
    std::memset(p, 'x', n > 0 ? n : 1);   // touched: a leak shows in the heap's numbers
    return DataInfo{p, static_cast<int>(n)};
}

std::string text_of(const DataInfo & d) {
    return d.data ? std::string(reinterpret_cast<const char *>(d.data), d.length) : std::string();
}

std::string command_of(const std::string & m) { return m.substr(0, m.find(':')); }
std::string argument_of(const std::string & m) {
    const auto colon = m.find(':');
    return colon == std::string::npos ? std::string() : m.substr(colon + 1);
}

// Fills `response` for message `m`; returns the event to send.
PluginEvent answer(const std::string & m, IRequest * request, IResponse * response) {
    const std::string cmd = command_of(m), arg = argument_of(m);
    if (!m.empty() && m[0] == '{') {
        std::string body;
        if (m.find("\"op\": \"fail\"") != std::string::npos) {
            return answer("fail", request, response);
        } else if (m.find("\"op\": \"stream_start\"") != std::string::npos) {
            g_stream_step = 0;
            body = "{\"stream\": 5, \"done\": false}";
        } else if (m.find("\"op\": \"stream_next\"") != std::string::npos) {
            const int step = ++g_stream_step;
            body = "{\"text\": \"piece" + std::to_string(step) + " \", \"done\": " + (step == 3 ? "true" : "false") + "}";
        } else {
            const char * dir = std::getenv("OHAI_AIE_MODEL_DIR");
            body = "{\"echo\": " + m + ", \"model_dir\": \"" + (dir ? dir : "") + "\"}";
        }
        response->SetResult(copy_of(body));
        return ON_PLUGIN_SUCCEED;
    }
    if (cmd == "echo" || cmd == "twice") {
        response->SetResult(copy_of(arg));
    } else if (cmd == "fields") {
        response->SetResult(copy_of(
            "{\"request_id\": " + std::to_string(request->GetRequestId()) +
            ", \"operation_id\": " + std::to_string(request->GetOperationId()) +
            ", \"transaction_id\": " + std::to_string(request->GetTransactionId()) +
            ", \"client_uid\": " + std::to_string(request->GetClientUid()) +
            ", \"plugin_type\": " + std::to_string(request->GetAlgoPluginType()) +
            ", \"msg_length\": " + std::to_string(request->GetMsg().length) + "}"));
    } else if (cmd == "fail") {
        response->SetRetCode(RETCODE_ALGORITHM_PROCESS_ERROR);
        response->SetRetDesc("it broke");
        response->SetResult(copy_of("{\"error\": {\"code\": \"boom\", \"message\": \"it broke\"}}"));
        return ON_PLUGIN_FAIL;
    } else if (cmd == "sized") {
        response->SetResult(filled(std::atol(arg.c_str())));
    } else if (cmd == "negative") {
        response->SetResult(DataInfo{static_cast<unsigned char *>(std::malloc(8)), -5});
    } else if (cmd == "retcode") {
        response->SetRetCode(std::atoi(arg.c_str()));
    } else if (cmd == "notjson") {
        response->SetResult(copy_of("[1, 2]"));
    }
    return ON_PLUGIN_SUCCEED;
}

class TestPlugin final : public IPlugin {
public:
    TestPlugin() {
        const char * mode = std::getenv("TEST_PLUGIN_INFER_MODE");
        mode_ = mode ? mode : "ASYNC";
    }
    ~TestPlugin() override {
        // The contract: no callback after the plugin is deleted, so its threads end first.
        std::vector<std::thread> threads;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            threads.swap(threads_);
        }
        for (auto & t : threads) t.join();
    }

    const long long GetVersion() const override { return 7; }
    const char * GetName() const override { return "ohai-test-plugin"; }
    const char * GetInferMode() const override { return mode_.c_str(); }

    int SyncProcess(IRequest * request, IResponse *& response) override {
        ++g_process_calls;
        const std::string m = text_of(request->GetMsg());
        const std::string cmd = command_of(m);
        if (cmd == "throw") throw std::runtime_error("kaboom");
        if (cmd == "null-response") return RETCODE_SUCCESS;
        if (cmd == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(argument_of(m).c_str())));
        if (cmd == "error-return") return RETCODE_ALGORITHM_PROCESS_ERROR;
        response = IResponse::Create(request);
        answer(cmd == "slow" ? "echo:slow" : m, request, response);
        return RETCODE_SUCCESS;
    }

    int AsyncProcess(IRequest * request, IPluginCallback * callback) override {
        ++g_process_calls;
        const std::string m = text_of(request->GetMsg());
        const std::string cmd = command_of(m), arg = argument_of(m);
        if (cmd == "throw") throw std::runtime_error("kaboom");
        if (cmd == "never") return RETCODE_SUCCESS;
        if (cmd == "error-return") return RETCODE_ALGORITHM_PROCESS_ERROR;
        if (cmd == "later" || cmd == "detached-later") {
            // The request dies when this returns: everything the reply needs is taken now.
            IResponse * response = IResponse::Create(request);
            response->SetResult(copy_of("later"));
            const int ms = std::atoi(arg.c_str());
            std::thread worker([callback, response, ms] {
                std::this_thread::sleep_for(std::chrono::milliseconds(ms));
                callback->OnEvent(ON_PLUGIN_SUCCEED, response);
            });
            if (cmd == "detached-later") {
                worker.detach();   // breaks the contract on purpose: may call back after delete
            } else {
                std::lock_guard<std::mutex> lock(mutex_);
                threads_.push_back(std::move(worker));
            }
            return RETCODE_SUCCESS;
        }
        if (cmd == "stranger") {
            callback->OnEvent(ON_PLUGIN_SUCCEED, IResponse::Create(nullptr));   // for no request
        }
        if (cmd == "null-event") {
            callback->OnEvent(ON_PLUGIN_SUCCEED, nullptr);
        }
        if (cmd == "wrong-transaction") {
            IResponse * response = IResponse::Create(request);
            response->SetTransactionId(request->GetTransactionId() + 1);
            return callback->OnEvent(ON_PLUGIN_SUCCEED, response) == 0 ? RETCODE_SUCCESS : RETCODE_FAILURE;
        }
        IResponse * response = IResponse::Create(request);
        const PluginEvent event = answer(m, request, response);
        callback->OnEvent(event, response);
        if (cmd == "twice") {
            IResponse * again = IResponse::Create(request);
            again->SetResult(copy_of("second"));
            callback->OnEvent(ON_PLUGIN_SUCCEED, again);
        }
        return RETCODE_SUCCESS;
    }

    int Prepare(long long transactionId, const DataInfo & in, DataInfo & out) override {
        const std::string m = text_of(in);
        if (command_of(m) == "sized") {
            out = filled(std::atol(argument_of(m).c_str()));
            return RETCODE_SUCCESS;
        }
        if (m == "fail") {
            out = copy_of("{\"error\": {\"code\": \"bad_input\", \"message\": \"no good\"}}");
            return RETCODE_INVALID_PARAM;
        }
        out = copy_of("{\"transaction\": " + std::to_string(transactionId) + ", \"input_length\": " +
                      std::to_string(in.length) + "}");
        return RETCODE_SUCCESS;
    }

    int Release(bool isFullUnload, long long transactionId, const DataInfo & in) override {
        std::lock_guard<std::mutex> lock(g_release_mutex);
        g_last_release = std::string("{\"full\": ") + (isFullUnload ? "true" : "false") +
                         ", \"transaction\": " + std::to_string(transactionId) + ", \"input\": \"" + text_of(in) + "\"}";
        return RETCODE_SUCCESS;
    }

    int SetOption(int optionType, const DataInfo &) override {
        return optionType == 1 ? RETCODE_SUCCESS : RETCODE_INVALID_PARAM;
    }

    int GetOption(int optionType, const DataInfo & in, DataInfo & out) override {
        const std::string m = text_of(in);
        if (optionType == 98) {
            out = copy_of("{\"process_calls\": " + std::to_string(g_process_calls.load()) + "}");
        } else if (optionType == 99) {
            std::lock_guard<std::mutex> lock(g_release_mutex);
            out = copy_of(g_last_release);
        } else if (command_of(m) == "sized") {
            out = filled(std::atol(argument_of(m).c_str()));
        } else if (m == "no-data") {
            out = DataInfo{nullptr, 12};
        } else {
            out = copy_of("{\"option\": " + std::to_string(optionType) + "}");
        }
        return RETCODE_SUCCESS;
    }

private:
    std::string mode_;
    std::mutex mutex_;
    std::vector<std::thread> threads_;
};

}  // namespace

extern "C" __attribute__((visibility("default"))) IPlugin * PLUGIN_INTERFACE() {
    if (std::getenv("TEST_PLUGIN_FACTORY_NULL") != nullptr) return nullptr;
    return new TestPlugin();
}
"""


@pytest.fixture(scope="session")
def test_plugin(tmp_path_factory: pytest.TempPathFactory) -> str:
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler to build the test plugin")
    directory = tmp_path_factory.mktemp("aie_plugin")
    source = directory / "test_plugin.cpp"
    source.write_text(TEST_PLUGIN)
    library = directory / "libtest_plugin.so"
    subprocess.run([compiler, "-std=c++17", "-shared", "-fPIC", "-O1", "-pthread",
                    "-I", str(ROOT / "plugin" / "aie" / "include"), str(source), "-o", str(library)],
                   check=True, capture_output=True, text=True)
    return str(library)


def _open(library: str, mode: str, monkeypatch: pytest.MonkeyPatch, **kwargs: int) -> aie.PluginHost:
    monkeypatch.setenv("TEST_PLUGIN_INFER_MODE", mode)
    return aie.PluginHost(library, **kwargs)


@pytest.fixture
def async_host(test_plugin: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[aie.PluginHost]:
    with _open(test_plugin, "ASYNC", monkeypatch) as host:
        yield host


@pytest.fixture
def sync_host(test_plugin: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[aie.PluginHost]:
    with _open(test_plugin, "SYNC", monkeypatch) as host:
        yield host


def _process_calls(host: aie.PluginHost) -> int:
    return host.get_option(98)["process_calls"]


# ---- loading -----------------------------------------------------------------------------------


def test_library_without_plugin_interface() -> None:
    libm = ctypes.util.find_library("m")
    assert libm is not None
    with pytest.raises(aie.PluginLoadError) as e:
        aie.PluginHost(libm)
    assert e.value.retcode == 1200 == aie.RETCODES["SO_LACK_SYMBOL"]
    assert "PLUGIN_INTERFACE" in str(e.value)
    assert isinstance(e.value, aie.PluginCallError) and isinstance(e.value, aie.OhaiError)


def test_missing_library(tmp_path: Path) -> None:
    with pytest.raises(aie.PluginLoadError) as e:
        aie.PluginHost(tmp_path / "libnothing.so")
    assert e.value.retcode == 1202
    assert "libnothing.so" in e.value.message and "No such file" in e.value.message  # dlerror's text


def test_not_a_library(tmp_path: Path) -> None:
    junk = tmp_path / "junk.so"
    junk.write_bytes(b"\x7fELF but not really")
    with pytest.raises(aie.PluginLoadError) as e:
        aie.PluginHost(junk)
    assert e.value.retcode == 1202


def test_factory_returning_null(test_plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PLUGIN_FACTORY_NULL", "1")
    with pytest.raises(aie.PluginLoadError) as e:
        aie.PluginHost(test_plugin)
    assert e.value.retcode == 1201


def test_identity_and_modes(test_plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for mode, is_sync in [("SYNC", True), ("ASYNC", False), ("async", False), ("Sync", False), ("", False)]:
        with _open(test_plugin, mode, monkeypatch) as host:
            assert (host.name, host.version, host.infer_mode, host.is_sync) == ("ohai-test-plugin", 7, mode, is_sync)
            assert host.library_path == test_plugin
        assert host.closed


def test_plugin_library_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OHAI_AIE_PLUGIN_DIR", str(tmp_path))
    (tmp_path / "libohai_llm_sync.so").write_bytes(b"")
    assert aie.plugin_library("sync") == str(tmp_path / "libohai_llm_sync.so")
    with pytest.raises(ValueError):
        aie.plugin_library("fast")
    try:
        found = aie.plugin_library("async")
    except FileNotFoundError as exc:
        assert "libohai_llm.so" in str(exc)
    else:
        assert found.endswith("/libohai_llm.so")


# ---- requests and replies ------------------------------------------------------------------


def test_request_fields(test_plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for mode in ("ASYNC", "SYNC"):
        with _open(test_plugin, mode, monkeypatch, plugin_type=5) as host:
            transaction = host.new_transaction_id()
            fields = host.process(transaction, "fields", operation_id=3)
            assert fields["transaction_id"] == transaction
            assert fields["client_uid"] == os.getuid()
            assert fields["operation_id"] == 3 and fields["plugin_type"] == 5
            assert fields["msg_length"] == len("fields") and fields["request_id"] > 0
            # A fresh request id per call.
            assert host.process(transaction, "fields")["request_id"] != fields["request_id"]


def test_transaction_ids(async_host: aie.PluginHost) -> None:
    first, out = async_host.prepare("hello")
    second, _ = async_host.prepare("hello")
    assert out == {"transaction": first, "input_length": 5}
    assert first >> 32 == second >> 32 >= 1                     # this host's adapter id
    assert second & 0xFFFFFFFF == (first & 0xFFFFFFFF) + 1       # the next session
    assert aie.make_transaction_id(3, 9) == (3 << 32) + 9
    explicit, _ = async_host.prepare("x", transaction_id=aie.make_transaction_id(77, 1))
    assert explicit == (77 << 32) + 1


def test_echo_both_modes(async_host: aie.PluginHost, sync_host: aie.PluginHost) -> None:
    assert async_host.process(1, b'echo:{"a": 1}') == {"a": 1}
    assert sync_host.process(1, 'echo:{"b": "\u00e9"}') == {"b": "\u00e9"}
    assert async_host.process(1, {"k": [1, 2]})["echo"] == {"k": [1, 2]}
    assert async_host.process(1, "echo:") == {}                   # an empty reply reads as {}
    assert not async_host.contract_violations and not sync_host.contract_violations


def test_error_body_becomes_exception(async_host: aie.PluginHost, sync_host: aie.PluginHost) -> None:
    for host in (async_host, sync_host):
        with pytest.raises(aie.PluginCallError) as e:
            host.process(1, "fail")
        assert e.value.retcode == 1700
        assert (e.value.code, e.value.message) == ("boom", "it broke")
        assert e.value.body == {"error": {"code": "boom", "message": "it broke"}}
        assert e.value.raw == b'{"error": {"code": "boom", "message": "it broke"}}'
        raw = host.process_raw(1, "fail")
        assert not raw.ok and raw.retcode == 1700 and raw.response_desc == "it broke"
    assert async_host.process_raw(1, "fail").event == aie.ON_PLUGIN_FAIL
    with pytest.raises(aie.PluginCallError) as e:
        async_host.prepare("fail")
    assert (e.value.retcode, e.value.code, e.value.message) == (1006, "bad_input", "no good")


def test_response_retcode_and_non_object_reply(async_host: aie.PluginHost) -> None:
    with pytest.raises(aie.PluginCallError) as e:
        async_host.process(1, "retcode:1500")
    assert e.value.retcode == 1500 and e.value.body is None and e.value.code is None
    with pytest.raises(aie.PluginReplyError) as r:
        async_host.process(1, "notjson")
    assert r.value.retcode == 0 and r.value.raw == b"[1, 2]"
    raw = async_host.process_raw(1, b"echo:\xff\xfe not utf-8")
    assert raw.ok and raw.data == b"\xff\xfe not utf-8"
    with pytest.raises(aie.PluginReplyError):
        async_host.process(1, b"echo:\xff\xfe")


def test_options_and_release(async_host: aie.PluginHost) -> None:
    async_host.set_option(1, {"x": 1})
    with pytest.raises(aie.PluginCallError) as e:
        async_host.set_option(2, {"x": 1})
    assert e.value.retcode == 1006
    assert async_host.get_option(7) == {"option": 7}
    async_host.release(1234, "bye", full_unload=True)
    assert async_host.get_option(99) == {"full": True, "transaction": 1234, "input": "bye"}
    async_host.release(55)
    assert async_host.get_option(99) == {"full": False, "transaction": 55, "input": "{}"}


# ---- the call-mode check ---------------------------------------------------------------------


def test_wrong_infer_mode_is_refused_before_the_plugin(async_host: aie.PluginHost,
                                                       sync_host: aie.PluginHost) -> None:
    for host, sync in ((async_host, True), (sync_host, False)):
        calls = _process_calls(host)
        with pytest.raises(aie.PluginCallError) as e:
            host.process(1, "echo:{}", sync=sync)
        assert e.value.retcode == 1207 == aie.RETCODES["WRONG_INFER_MODE"]
        assert _process_calls(host) == calls


def test_lowercase_async_mode_is_asynchronous(test_plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with _open(test_plugin, "sync", monkeypatch) as host:   # only "SYNC" is synchronous
        assert host.process(1, "echo:{}") == {}
        assert host.process_raw(1, "echo:{}", sync=True).retcode == 1207


# ---- the one-reply rule, stray replies, broken contracts -------------------------------------


def test_second_reply_is_a_violation(async_host: aie.PluginHost) -> None:
    assert async_host.process(1, 'twice:{"first": true}') == {"first": True}
    violations = async_host.contract_violations
    assert len(violations) == 1 and "second OnEvent" in violations[0]


def test_reply_for_unknown_request(async_host: aie.PluginHost) -> None:
    assert async_host.process(1, "stranger:{}") == {}
    assert any("never sent" in v for v in async_host.contract_violations)


def test_null_response_event(async_host: aie.PluginHost) -> None:
    assert async_host.process(1, "null-event:{}") == {}
    assert any("null response" in v for v in async_host.contract_violations)


def test_changed_transaction_id(async_host: aie.PluginHost) -> None:
    async_host.process(1, "wrong-transaction")
    assert any("transaction id" in v for v in async_host.contract_violations)


def test_sync_success_without_response(sync_host: aie.PluginHost) -> None:
    raw = sync_host.process_raw(1, "null-response")
    assert raw.retcode == 1002
    assert any("without a response" in v for v in sync_host.contract_violations)


def test_plugin_exception_is_contained(async_host: aie.PluginHost, sync_host: aie.PluginHost) -> None:
    for host in (async_host, sync_host):
        assert host.process_raw(1, "throw").retcode == -1
        assert any("kaboom" in v for v in host.contract_violations)
        assert host.process(1, "echo:{}") == {}   # still serving


def test_failing_async_process_returns_its_code(async_host: aie.PluginHost) -> None:
    raw = async_host.process_raw(1, "error-return")
    assert raw.retcode == 1700 and "without replying" in raw.host_error
    assert not async_host.contract_violations


def test_negative_result_length(async_host: aie.PluginHost) -> None:
    raw = async_host.process_raw(1, "negative")
    assert raw.retcode == 1006
    assert any("negative length" in v for v in async_host.contract_violations)


def test_output_length_without_data(async_host: aie.PluginHost) -> None:
    assert async_host.get_option(3, "no-data") == {}
    assert any("no data" in v for v in async_host.contract_violations)


# ---- waiting: late replies, timeouts, other threads, close ---------------------------------


def test_reply_from_another_thread(async_host: aie.PluginHost) -> None:
    assert async_host.process_raw(1, "later:200").data == b"later"
    assert not async_host.contract_violations


def test_async_timeout_then_late_reply(async_host: aie.PluginHost) -> None:
    start = time.monotonic()
    raw = async_host.process_raw(1, "never", timeout=0.2)
    assert raw.retcode == 1301 == aie.RETCODES["ASYNC_MSG_TIMEOUT"]
    assert time.monotonic() - start < 5
    with pytest.raises(aie.PluginCallError) as e:
        async_host.process(1, "later:400", timeout=0.1)
    assert e.value.retcode == 1301
    deadline = time.monotonic() + 10
    while async_host.late_replies < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert async_host.late_replies == 1
    assert not async_host.contract_violations   # late is not a violation


def test_sync_timeout(sync_host: aie.PluginHost) -> None:
    raw = sync_host.process_raw(1, "slow:500", timeout=0.1)
    assert raw.retcode == 1300 == aie.RETCODES["SYNC_MSG_TIMEOUT"]
    deadline = time.monotonic() + 10
    while sync_host.late_replies < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sync_host.late_replies == 1
    assert sync_host.process_raw(1, "slow:10").data == b"slow"


def test_bad_timeout(async_host: aie.PluginHost) -> None:
    for timeout in (-1.0, float("nan")):
        with pytest.raises(ValueError):
            async_host.process(1, "echo:{}", timeout=timeout)


def test_many_threads_one_host(async_host: aie.PluginHost, sync_host: aie.PluginHost) -> None:
    failures: list[str] = []

    def client(host: aie.PluginHost, worker: int) -> None:
        for i in range(40):
            payload = {"worker": worker, "i": i}
            message = f"later:{i % 3}" if i % 10 == 0 and not host.is_sync else "echo:" + json.dumps(payload)
            try:
                reply = host.process_raw(worker, message, timeout=30)
                expected = b"later" if message.startswith("later") else json.dumps(payload).encode()
                if reply.retcode != 0 or reply.data != expected:
                    failures.append(f"{message}: {reply}")
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(f"{message}: {exc!r}")

    threads = [threading.Thread(target=client, args=(host, w)) for host in (async_host, sync_host) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:5]
    assert not async_host.contract_violations and not sync_host.contract_violations


def test_close_waits_for_replies_in_flight(test_plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    host = _open(test_plugin, "ASYNC", monkeypatch)
    results: list[aie.RawReply] = []
    waiter = threading.Thread(target=lambda: results.append(host.process_raw(1, "later:300", timeout=30)))
    never = threading.Thread(target=lambda: results.append(host.process_raw(1, "never", timeout=30)))
    calls = _process_calls(host)
    waiter.start()
    never.start()
    deadline = time.monotonic() + 10
    while _process_calls(host) < calls + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    host.close()   # deletes the plugin, whose destructor delivers the pending reply first
    waiter.join(timeout=10)
    never.join(timeout=10)
    assert sorted((r.retcode, r.data) for r in results) == [(0, b"later"), (1201, b"")]
    assert not host.contract_violations
    assert host.process_raw(1, "echo:{}").retcode == 1201   # closed
    with pytest.raises(aie.PluginCallError) as e:
        host.prepare("x")
    assert e.value.retcode == 1201
    host.close()   # idempotent


def test_callback_after_close_is_counted(test_plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    host = _open(test_plugin, "ASYNC", monkeypatch)
    # Keeps the library mapped after the host's dlclose (ctypes never unloads), so that the
    # plugin's stray thread can still run and call back after its plugin was deleted. Opened after
    # the host, which makes the data channel it needs global.
    keep_mapped = ctypes.CDLL(test_plugin)
    assert host.process_raw(1, "detached-later:300", timeout=0.05).retcode == 1301
    host.close()
    deadline = time.monotonic() + 10
    while not host.contract_violations and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("after the plugin was deleted" in v for v in host.contract_violations)
    del keep_mapped


def test_ctrl_c_ends_the_wait(test_plugin: str) -> None:
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["TEST_PLUGIN_INFER_MODE"] = "ASYNC"
        from ohai import aie
        host = aie.PluginHost({test_plugin!r})
        print("waiting", flush=True)
        host.process(1, "never", timeout=120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "waiting"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in stderr


# ---- the 1 MiB limit and buffer ownership --------------------------------------------------


def test_message_limit_in(async_host: aie.PluginHost, sync_host: aie.PluginHost) -> None:
    for host in (async_host, sync_host):
        exactly = b"echo:" + b"x" * (MIB - 5)
        assert host.process_raw(1, exactly).data == exactly[5:]
        calls = _process_calls(host)
        raw = host.process_raw(1, exactly + b"x")
        assert raw.retcode == 1006 and "exceeds" in raw.host_error
        assert _process_calls(host) == calls   # never sent
    for call in (lambda: async_host.prepare(b"x" * (MIB + 1)),
                 lambda: async_host.set_option(1, b"x" * (MIB + 1)),
                 lambda: async_host.get_option(1, b"x" * (MIB + 1)),
                 lambda: async_host.release(1, b"x" * (MIB + 1))):
        with pytest.raises(aie.PluginCallError) as e:
            call()
        assert e.value.retcode == 1006
    assert not async_host.contract_violations


def test_message_limit_out(async_host: aie.PluginHost, sync_host: aie.PluginHost) -> None:
    for host in (async_host, sync_host):
        assert len(host.process_raw(1, f"sized:{MIB}").data) == MIB
        raw = host.process_raw(1, f"sized:{MIB + 1}")
        assert raw.retcode == 1006 and raw.data == b""
        assert any("exceeds" in v for v in host.contract_violations)
    assert len(async_host.prepare_raw(1, f"sized:{MIB}").data) == MIB
    assert async_host.prepare_raw(1, f"sized:{MIB + 1}").retcode == 1006
    assert async_host.get_option_raw(1, f"sized:{MIB + 1}").retcode == 1006


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _heap_in_use() -> int:
    libc = ctypes.CDLL(None)
    try:
        mallinfo2 = libc.mallinfo2
    except AttributeError:
        pytest.skip("no mallinfo2 (glibc >= 2.33) to observe the C heap")
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def test_host_frees_what_the_plugin_hands_over(async_host: aie.PluginHost, sync_host: aie.PluginHost) -> None:
    size = 512 * 1024
    calls = {
        "Prepare": lambda: async_host.prepare_raw(1, f"sized:{size}"),
        "GetOption": lambda: async_host.get_option_raw(1, f"sized:{size}"),
        "SyncProcess": lambda: sync_host.process_raw(1, f"sized:{size}"),
        "AsyncProcess": lambda: async_host.process_raw(1, f"sized:{size}"),
        "request messages": lambda: async_host.process_raw(1, b"echo:" + b"m" * size),
    }
    for name, call in calls.items():
        for _ in range(3):  # warm up: arenas, thread stacks, caches
            assert len(call().data) >= size - 5
        before = _heap_in_use()
        for _ in range(40):
            assert len(call().data) >= size - 5
        grown = _heap_in_use() - before
        assert grown < 8 * 2**20, f"{name}: the C heap grew by {grown} bytes over 40 calls of {size} bytes"


# ---- the command line ------------------------------------------------------------------------


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ohai", "aie", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, **(env or {})})


def test_cli_call(test_plugin: str, tmp_path: Path) -> None:
    r = _run_cli("call", "--library", test_plugin, "--model-dir", str(tmp_path), "--model", "m.gguf",
                 "generate", '{"prompt": "h\u00e9"}', env={"TEST_PLUGIN_INFER_MODE": "ASYNC"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"echo": {"op": "generate", "prompt": "h\u00e9"}, "model_dir": str(tmp_path)}
    r = _run_cli("call", "--library", test_plugin, "--model-dir", str(tmp_path), "--model", "m.gguf", "--sync",
                 "info", env={"TEST_PLUGIN_INFER_MODE": "SYNC"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["echo"] == {"op": "info"}


def test_cli_follow(test_plugin: str, tmp_path: Path) -> None:
    r = _run_cli("call", "--library", test_plugin, "--model-dir", str(tmp_path), "--model", "m.gguf", "--follow",
                 "stream_start", '{"prompt": "x"}', env={"TEST_PLUGIN_INFER_MODE": "ASYNC"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "piece1 piece2 piece3 \n"


def test_cli_errors(test_plugin: str, tmp_path: Path) -> None:
    common = ["--model-dir", str(tmp_path), "--model", "m.gguf"]
    for args, expected in [
        (["call", "--library", str(tmp_path / "nope.so"), *common, "info"], "1202"),
        (["call", "--library", test_plugin, *common, "info", "[1]"], "JSON object"),
        (["call", "--library", test_plugin, *common, "info", "{bad"], "not valid JSON"),
        (["call", "--library", test_plugin, *common, "info", '{"op": "x"}'], "op"),
        (["call", "--library", test_plugin, *common, "--follow", "info"], "--follow"),
        (["call", "--library", test_plugin, "--model-dir", str(tmp_path / "none"), "info"], "not a directory"),
    ]:
        r = _run_cli(*args, env={"TEST_PLUGIN_INFER_MODE": "ASYNC"})
        assert r.returncode == 1, (args, r.stdout)
        assert len(r.stderr.strip().splitlines()) == 1 and expected in r.stderr, (args, r.stderr)
    # The plugin's error body, as one line.
    r = _run_cli("call", "--library", test_plugin, *common, "fail", env={"TEST_PLUGIN_INFER_MODE": "ASYNC"})
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "ohai: error: AsyncProcess(fail): it broke (retcode 1700, boom)\n"


def test_cli_info_runs() -> None:
    r = _run_cli("info", "--json")
    report = json.loads(r.stdout)
    assert set(report) == {"async", "sync"}
    assert r.returncode == (0 if all("error" not in e for e in report.values()) else 1)
