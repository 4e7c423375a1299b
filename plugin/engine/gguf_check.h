// Validates a GGUF file's structure before llama.cpp sees it, so that a bad file
// becomes an error message instead of an abort inside llama.cpp.
#pragma once

#include <string>

namespace ohai {

// Throws Error(ModelLoad) naming what is wrong: missing file, a directory, an empty or
// truncated file, bad magic/version, a corrupt key/value or tensor table, tensor data out of bounds.
void check_gguf_file(const std::string & path);

}  // namespace ohai
