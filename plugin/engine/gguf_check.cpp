#include "gguf_check.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "ggml.h"
#include "ohai/error.h"

namespace ohai {
namespace {

// GGUF value types (gguf spec): 0..12.
enum : uint32_t { T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL,
                  T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64, T_COUNT };

size_t scalar_size(uint32_t type) {
    switch (type) {
        case T_UINT8: case T_INT8: case T_BOOL: return 1;
        case T_UINT16: case T_INT16: return 2;
        case T_UINT32: case T_INT32: case T_FLOAT32: return 4;
        case T_UINT64: case T_INT64: case T_FLOAT64: return 8;
        default: return 0;
    }
}

[[noreturn]] void fail(const std::string & path, const std::string & why) {
    throw Error(ErrorCode::ModelLoad, "invalid GGUF file '" + path + "': " + why);
}

bool is_integer(uint32_t type) {
    switch (type) {
        case T_UINT8: case T_INT8: case T_UINT16: case T_INT16: case T_UINT32: case T_INT32:
        case T_UINT64: case T_INT64: case T_BOOL: return true;
        default: return false;
    }
}

// The metadata values llama.cpp asserts on (instead of returning an error).
struct Metadata {
    std::unordered_map<std::string, int64_t> integers;
    std::unordered_map<std::string, std::string> strings;

    const int64_t * integer(const std::string & key) const {
        auto it = integers.find(key);
        return it == integers.end() ? nullptr : &it->second;
    }
};

// Mirrors the GGML_ASSERTs in llama.cpp's hyperparameter and vocabulary loading (build 0c1e570),
// which abort the process on out-of-range values in an otherwise well-formed file.
void check_hyperparameters(const std::string & path, const Metadata & meta) {
    auto arch_it = meta.strings.find("general.architecture");
    if (arch_it == meta.strings.end()) return;   // llama.cpp reports this one itself
    const std::string arch = arch_it->second + ".";
    auto get = [&](const char * name, int64_t fallback) {
        const int64_t * v = meta.integer(arch + name);
        return v ? *v : fallback;
    };
    const int64_t * layers = meta.integer(arch + "block_count");
    if (layers && (*layers <= 0 || *layers > 512)) fail(path, "block_count " + std::to_string(*layers) + " is out of range");
    const int64_t n_layer = layers ? *layers : 0;
    if (get("nextn_predict_layers", 0) < 0 || get("nextn_predict_layers", 0) > n_layer)
        fail(path, "nextn_predict_layers is out of range");
    const int64_t experts = get("expert_count", 0), used = get("expert_used_count", 0);
    const int64_t groups = get("expert_group_count", 0), groups_used = get("expert_group_used_count", 0);
    if (experts < 0 || experts > 1024) fail(path, "expert_count is out of range");
    if (used < 0 || used > experts) fail(path, "expert_used_count is out of range");
    if (experts > 0) {
        if (used == 0) fail(path, "expert_used_count must be positive when there are experts");
        if (groups < 0 || groups >= experts) fail(path, "expert_group_count is out of range");
        if (groups > 1 && (experts % groups != 0 || groups_used <= 0 || groups_used >= groups))
            fail(path, "expert groups are inconsistent");
    } else if (groups != 0) {
        fail(path, "expert_group_count without experts");
    }
    auto scaling = meta.strings.find(arch + "rope.scaling.type");
    if (scaling != meta.strings.end()) {
        static const char * known[] = {"none", "linear", "yarn", "longrope"};
        if (std::find(std::begin(known), std::end(known), scaling->second) == std::end(known))
            fail(path, "unknown rope.scaling.type '" + scaling->second + "'");
    }
}

struct FileCloser { void operator()(FILE * f) const { std::fclose(f); } };

// Sequential reader that never reads past the end of the file.
class Reader {
public:
    Reader(const std::string & path, FILE * f, uint64_t size) : path_(path), f_(f), size_(size) {}

    uint64_t offset() const { return offset_; }
    uint64_t remaining() const { return size_ - offset_; }

    void read(void * dst, uint64_t n, const char * what) {
        if (n > remaining()) fail(path_, std::string("truncated while reading ") + what);
        if (n && std::fread(dst, 1, n, f_) != n) fail(path_, std::string("read error at ") + what);
        offset_ += n;
    }
    template <typename T> T get(const char * what) { T v; read(&v, sizeof v, what); return v; }

    void skip(uint64_t n, const char * what) {
        if (n > remaining()) fail(path_, std::string("truncated while reading ") + what);
        if (std::fseek(f_, static_cast<long>(n), SEEK_CUR) != 0) fail(path_, "seek failed");
        offset_ += n;
    }

    std::string string(const char * what) {
        uint64_t len = get<uint64_t>(what);
        if (len > remaining()) fail(path_, std::string("corrupt string length in ") + what);
        std::string s(len, '\0');
        read(s.data(), len, what);
        return s;
    }

private:
    std::string path_;
    FILE * f_;
    uint64_t size_;
    uint64_t offset_ = 0;
};

int64_t read_integer(Reader & r, uint32_t type) {
    switch (type) {
        case T_UINT8: case T_BOOL: return r.get<uint8_t>("value");
        case T_INT8:   return r.get<int8_t>("value");
        case T_UINT16: return r.get<uint16_t>("value");
        case T_INT16:  return r.get<int16_t>("value");
        case T_UINT32: return r.get<uint32_t>("value");
        case T_INT32:  return r.get<int32_t>("value");
        case T_INT64:  return r.get<int64_t>("value");
        default: {
            const uint64_t v = r.get<uint64_t>("value");
            return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
        }
    }
}

}  // namespace

void check_gguf_file(const std::string & path) {
    struct stat st {};
    if (path.empty()) throw Error(ErrorCode::ModelLoad, "no model path given");
    if (::stat(path.c_str(), &st) != 0) throw Error(ErrorCode::ModelLoad, "model file not found: '" + path + "'");
    if (S_ISDIR(st.st_mode)) throw Error(ErrorCode::ModelLoad, "model path is a directory, not a GGUF file: '" + path + "'");
    if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::ModelLoad, "model path is not a regular file: '" + path + "'");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size == 0) throw Error(ErrorCode::ModelLoad, "model file is empty: '" + path + "'");

    std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f) throw Error(ErrorCode::ModelLoad, "cannot open model file '" + path + "': " + std::strerror(errno));
    Reader r(path, f.get(), size);

    char magic[4] = {};
    if (size < 4) fail(path, "file too small to be GGUF");
    r.read(magic, 4, "magic");
    if (std::memcmp(magic, "GGUF", 4) != 0) fail(path, "not a GGUF file (bad magic)");
    const uint32_t version = r.get<uint32_t>("version");
    if (version < 2 || version > 3) fail(path, "unsupported GGUF version " + std::to_string(version));
    const uint64_t n_tensors = r.get<uint64_t>("tensor count");
    const uint64_t n_kv = r.get<uint64_t>("key/value count");
    // Each entry takes at least a few bytes, so the counts are bounded by the file size.
    if (n_kv > r.remaining() / 12) fail(path, "corrupt key/value count " + std::to_string(n_kv));
    if (n_tensors > r.remaining() / 24) fail(path, "corrupt tensor count " + std::to_string(n_tensors));

    uint64_t alignment = 32;
    Metadata meta;
    for (uint64_t i = 0; i < n_kv; ++i) {
        const std::string key = r.string("key");
        const uint32_t type = r.get<uint32_t>("value type");
        if (type >= T_COUNT) fail(path, "corrupt value type " + std::to_string(type) + " for key '" + key + "'");
        if (type == T_STRING) {
            meta.strings[key] = r.string(key.c_str());
        } else if (type == T_ARRAY) {
            const uint32_t elem = r.get<uint32_t>("array type");
            const uint64_t count = r.get<uint64_t>("array length");
            if (elem == T_STRING) {
                if (count > r.remaining() / 8) fail(path, "corrupt array length for key '" + key + "'");
                const bool vocabulary = key == "tokenizer.ggml.tokens";
                std::unordered_set<std::string> seen;
                for (uint64_t j = 0; j < count; ++j) {
                    std::string s = r.string(key.c_str());
                    // llama.cpp asserts that token strings are unique.
                    if (vocabulary && !seen.insert(std::move(s)).second) fail(path, "duplicate token in the vocabulary");
                }
            } else {
                const size_t es = scalar_size(elem);
                if (es == 0) fail(path, "unsupported array element type for key '" + key + "'");
                if (count > r.remaining() / es) fail(path, "corrupt array length for key '" + key + "'");
                if (is_integer(elem) && count <= 4096) {
                    int64_t max_value = 0;
                    for (uint64_t j = 0; j < count; ++j) max_value = std::max(max_value, read_integer(r, elem));
                    meta.integers[key] = max_value;   // per-layer arrays: the largest entry is what matters
                } else {
                    r.skip(count * es, key.c_str());
                }
            }
        } else if (is_integer(type)) {
            const int64_t v = read_integer(r, type);
            meta.integers[key] = v;
            if (key == "general.alignment") {
                if (v <= 0 || v > (1 << 20) || (v & (v - 1)) != 0) fail(path, "general.alignment is not a power of two");
                alignment = static_cast<uint64_t>(v);
            }
        } else {
            r.skip(scalar_size(type), key.c_str());
        }
    }
    check_hyperparameters(path, meta);

    struct TensorSpan { uint64_t offset, bytes; };
    std::unique_ptr<TensorSpan[]> spans(new TensorSpan[n_tensors ? n_tensors : 1]);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        const std::string name = r.string("tensor name");
        const uint32_t n_dims = r.get<uint32_t>("tensor dims");
        if (n_dims == 0 || n_dims > GGML_MAX_DIMS) fail(path, "tensor '" + name + "' has " + std::to_string(n_dims) + " dimensions");
        int64_t ne[GGML_MAX_DIMS] = {1, 1, 1, 1};
        uint64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            ne[d] = r.get<int64_t>("tensor shape");
            if (ne[d] <= 0 || static_cast<uint64_t>(ne[d]) > size * 64 || n_elements > size * 64 / static_cast<uint64_t>(ne[d]))
                fail(path, "tensor '" + name + "' has a corrupt shape");
            n_elements *= static_cast<uint64_t>(ne[d]);
        }
        const uint32_t type = r.get<uint32_t>("tensor type");
        if (type >= GGML_TYPE_COUNT) fail(path, "tensor '" + name + "' has unknown type " + std::to_string(type));
        const int64_t block = ggml_blck_size(static_cast<ggml_type>(type));
        const size_t type_size = ggml_type_size(static_cast<ggml_type>(type));
        if (block <= 0 || type_size == 0) fail(path, "tensor '" + name + "' has unsupported type " + std::to_string(type));
        if (ne[0] % block != 0) fail(path, "tensor '" + name + "' row size is not a multiple of its block size");
        const uint64_t offset = r.get<uint64_t>("tensor offset");
        if (offset % alignment != 0) fail(path, "tensor '" + name + "' has a misaligned data offset");
        spans[i] = {offset, n_elements / static_cast<uint64_t>(block) * type_size};
    }

    const uint64_t data_start = (r.offset() + alignment - 1) / alignment * alignment;
    if (n_tensors > 0 && data_start > size) fail(path, "truncated: no tensor data");
    const uint64_t data_size = size - std::min(size, data_start);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        if (spans[i].offset > data_size || spans[i].bytes > data_size - spans[i].offset)
            fail(path, "truncated: tensor data extends past the end of the file (" + std::to_string(size) + " bytes)");
    }
}

}  // namespace ohai
