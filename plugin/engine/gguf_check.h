// Validates a GGUF file before llama.cpp sees it, so that a bad file becomes an error message
// instead of an abort inside llama.cpp or ggml, at load or at the first decode.
#pragma once

#include <string>

namespace ohai {

// Throws Error(ModelLoad) naming what is wrong: missing file, a directory, an empty or truncated
// file, bad magic/version, a corrupt key/value or tensor table, tensor data out of bounds;
// hyperparameter values llama.cpp or ggml would assert on (non-finite or negative epsilons and rope
// values, head counts and sizes that do not fit together or whose products overflow 32 bits, counts
// larger than any tensor in the file, a context length of 0, a vocab_size that disagrees with the
// token list); tensor types no CPU kernel takes for the tensor's role (gguf_roles.h); and, for the
// llama architecture, tensor shapes that differ from what the hyperparameters imply.
void check_gguf_file(const std::string & path);

}  // namespace ohai
