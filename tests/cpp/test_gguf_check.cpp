// check_gguf_file: bad files give ohai::Error(ModelLoad) with a reason, never a crash.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "check.h"
#include "gguf_check.h"
#include "ohai/error.h"

static std::string write_file(const std::string & name, const std::vector<uint8_t> & bytes) {
    const std::string path = std::string(P_tmpdir) + "/ohai_test_" + name;
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    return path;
}

static std::string error_of(const std::string & path) {
    try {
        ohai::check_gguf_file(path);
    } catch (const ohai::Error & e) {
        CHECK(e.code() == ohai::ErrorCode::ModelLoad);
        return e.what();
    }
    return "";
}

template <typename T> static void put(std::vector<uint8_t> & b, T v) {
    const auto * p = reinterpret_cast<const uint8_t *>(&v);
    b.insert(b.end(), p, p + sizeof v);
}

static std::vector<uint8_t> header(uint64_t n_tensors, uint64_t n_kv) {
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, 3);
    put<uint64_t>(b, n_tensors);
    put<uint64_t>(b, n_kv);
    return b;
}

int main() {
    CHECK(error_of("/nonexistent/model.gguf").find("not found") != std::string::npos);
    CHECK(error_of(P_tmpdir).find("directory") != std::string::npos);
    CHECK(error_of(write_file("empty.gguf", {})).find("empty") != std::string::npos);
    CHECK(error_of(write_file("magic.gguf", {'N', 'O', 'P', 'E', 0, 0, 0, 0})).find("bad magic") != std::string::npos);

    auto huge_kv = header(0, uint64_t(1) << 60);
    CHECK(error_of(write_file("kvcount.gguf", huge_kv)).find("key/value count") != std::string::npos);

    auto bad_string = header(0, 1);
    put<uint64_t>(bad_string, uint64_t(1) << 40);   // key length far past the end
    bad_string.resize(bad_string.size() + 64, 0);
    CHECK(error_of(write_file("string.gguf", bad_string)).find("corrupt string length") != std::string::npos);

    auto one_tensor = header(1, 0);
    put<uint64_t>(one_tensor, 1);
    one_tensor.push_back('w');
    put<uint32_t>(one_tensor, 2);         // 2 dims
    put<int64_t>(one_tensor, 32);
    put<int64_t>(one_tensor, 4);
    put<uint32_t>(one_tensor, 0);         // F32
    put<uint64_t>(one_tensor, 0);         // offset
    CHECK(error_of(write_file("truncated.gguf", one_tensor)).find("truncated") != std::string::npos);

    auto bad_type = one_tensor;
    bad_type[bad_type.size() - 12] = 200;  // tensor type byte
    CHECK(error_of(write_file("type.gguf", bad_type)).find("unknown type") != std::string::npos);

    auto ok = one_tensor;
    ok.resize((ok.size() + 31) / 32 * 32 + 32 * 4 * 4, 0);
    CHECK(error_of(write_file("ok.gguf", ok)).empty());
    return finish("test_gguf_check");
}
