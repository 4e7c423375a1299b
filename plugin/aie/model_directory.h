// ohai — models are loaded only from the plugin's model directory.
//
// ai_engine performs no permission check, so every app reaching the plugin could otherwise make
// the system service open any file the service can read.
#pragma once

#include <string>

namespace ohai::aie {

// The canonical path of the regular file `name` (a file name or a path relative to `model_dir`).
// Throws WireError: InvalidRequest (empty, NUL), ModelOutsideDir (absolute, a ".." component, or a
// symlink whose target leaves the directory), ModelNotFound (missing, not a regular file, or the
// directory itself missing).
std::string resolve_model_path(const std::string & model_dir, const std::string & name);

}  // namespace ohai::aie
