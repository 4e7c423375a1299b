#include "model_directory.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>

#include "request_json.h"

namespace ohai::aie {

namespace {

using wire::ErrorKind;
using wire::WireError;

std::string real_path(const std::string & path, int & error) {
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf) == nullptr) {
        error = errno;
        return {};
    }
    error = 0;
    return buf;
}

bool has_dotdot_component(const std::string & name) {
    size_t start = 0;
    while (start <= name.size()) {
        size_t end = name.find('/', start);
        if (end == std::string::npos) end = name.size();
        if (name.compare(start, end - start, "..") == 0 && end - start == 2) return true;
        start = end + 1;
    }
    return false;
}

}  // namespace

std::string resolve_model_path(const std::string & model_dir, const std::string & name) {
    if (name.empty()) throw WireError(ErrorKind::InvalidRequest, "\"model\" is empty");
    if (name.find('\0') != std::string::npos) throw WireError(ErrorKind::InvalidRequest, "\"model\" contains a NUL character");
    if (name.size() > PATH_MAX) throw WireError(ErrorKind::InvalidRequest, "\"model\" is too long");
    if (name[0] == '/') throw WireError(ErrorKind::ModelOutsideDir, "\"model\" must be relative to the model directory, not an absolute path");
    if (has_dotdot_component(name)) throw WireError(ErrorKind::ModelOutsideDir, "\"model\" must not contain \"..\"");
    int error = 0;
    const std::string dir = real_path(model_dir, error);
    if (dir.empty())
        throw WireError(ErrorKind::ModelNotFound, "the model directory " + model_dir + " cannot be opened: " + std::strerror(error));
    const std::string path = real_path(dir + "/" + name, error);
    if (path.empty()) {
        if (error == ENOENT || error == ENOTDIR)
            throw WireError(ErrorKind::ModelNotFound, "no model \"" + name + "\" in the model directory");
        throw WireError(ErrorKind::ModelNotFound, "the model \"" + name + "\" cannot be opened: " + std::strerror(error));
    }
    // realpath followed every symlink: the result must still be below the directory.
    if (path == dir) throw WireError(ErrorKind::ModelNotFound, "the model \"" + name + "\" is not a regular file");
    const std::string prefix = dir == "/" ? dir : dir + "/";
    if (path.compare(0, prefix.size(), prefix) != 0)
        throw WireError(ErrorKind::ModelOutsideDir, "the model \"" + name + "\" leads outside the model directory");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        throw WireError(ErrorKind::ModelNotFound, "the model \"" + name + "\" is not a regular file");
    return path;
}

}  // namespace ohai::aie
