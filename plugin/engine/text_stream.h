// Turns generated token pieces into text that is safe to hand out as it comes:
// no piece splits a UTF-8 character, and no piece shows (part of) a stop string.
#pragma once

#include <string>
#include <vector>

namespace ohai {

class TextStream {
public:
    explicit TextStream(std::vector<std::string> stop);

    // Adds a token's bytes; returns the text that became safe to emit (may be empty).
    std::string push(const std::string & piece);
    // True once a stop string appeared; the text before it has been emitted.
    bool stopped() const { return stopped_; }
    // Emits what was held back (at the end of generation): an unfinished last character is
    // dropped, invalid UTF-8 becomes U+FFFD.
    std::string flush();
    // All text emitted so far.
    const std::string & text() const { return emitted_; }

private:
    std::vector<std::string> stop_;
    size_t max_stop_len_ = 0;
    std::string pending_;   // generated but not emitted yet
    std::string emitted_;
    bool stopped_ = false;
};

// Length of the longest prefix of `s` that does not end inside a UTF-8 character.
size_t utf8_complete_prefix(const std::string & s);
// `s` with invalid UTF-8 sequences replaced by U+FFFD.
std::string utf8_sanitize(const std::string & s);

}  // namespace ohai
