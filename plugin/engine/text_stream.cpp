#include "text_stream.h"

#include <algorithm>

namespace ohai {
namespace {

// Expected length of a UTF-8 sequence from its lead byte; 0 for a byte that cannot lead.
size_t utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

// Whether `c` may follow lead byte `lead` as its second byte (Unicode table 3-7): this is what
// rules out overlong forms (E0 80.., F0 80..), UTF-16 surrogates (ED A0..) and code points
// above U+10FFFF (F4 90..); later bytes are plain continuation bytes.
bool valid_second(unsigned char lead, unsigned char c) {
    switch (lead) {
        case 0xE0: return c >= 0xA0 && c <= 0xBF;
        case 0xED: return c >= 0x80 && c <= 0x9F;
        case 0xF0: return c >= 0x90 && c <= 0xBF;
        case 0xF4: return c >= 0x80 && c <= 0x8F;
        default:   return c >= 0x80 && c <= 0xBF;
    }
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Number of bytes of s[i..] that form a valid prefix of one UTF-8 sequence (up to its full length).
size_t valid_prefix(const std::string & s, size_t i, size_t need) {
    size_t k = 1;
    for (; k < need && i + k < s.size(); ++k) {
        const unsigned char c = static_cast<unsigned char>(s[i + k]);
        if (k == 1 ? !valid_second(static_cast<unsigned char>(s[i]), c) : !is_continuation(c)) break;
    }
    return k;
}

}  // namespace

size_t utf8_complete_prefix(const std::string & s) {
    // Only the last (up to) 3 bytes can belong to an unfinished character; hold them back only
    // while they can still become a valid one.
    const size_t n = s.size();
    for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
        const size_t i = n - back;
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (is_continuation(c)) continue;
        const size_t need = utf8_seq_len(c);
        return (need > back && valid_prefix(s, i, need) == back) ? i : n;
    }
    return n;
}

std::string utf8_sanitize(const std::string & s) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        const size_t need = utf8_seq_len(static_cast<unsigned char>(s[i]));
        if (need > 0 && i + need <= s.size() && valid_prefix(s, i, need) == need) {
            out.append(s, i, need);
            i += need;
        } else {
            out += "\xEF\xBF\xBD";   // U+FFFD for each byte that does not start a valid character
            ++i;
        }
    }
    return out;
}

TextStream::TextStream(std::vector<std::string> stop) {
    for (auto & s : stop) {
        if (s.empty()) continue;
        max_stop_len_ = std::max(max_stop_len_, s.size());
        stop_.push_back(std::move(s));
    }
}

std::string TextStream::push(const std::string & piece) {
    if (stopped_) return {};
    pending_ += piece;

    // A stop string may straddle what was emitted and what is pending only if we emitted
    // part of it, which the hold-back below prevents; so searching `pending_` suffices.
    size_t cut = std::string::npos;
    for (const auto & s : stop_) cut = std::min(cut, pending_.find(s));
    if (cut != std::string::npos) {
        stopped_ = true;
        std::string out = utf8_sanitize(pending_.substr(0, cut));
        pending_.clear();
        emitted_ += out;
        return out;
    }

    // Hold back a tail that could still grow into a stop string, and any unfinished character.
    size_t safe = pending_.size();
    for (const auto & s : stop_) {
        for (size_t k = std::min(s.size() - 1, pending_.size()); k > 0; --k) {
            if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
                safe = std::min(safe, pending_.size() - k);
                break;
            }
        }
    }
    safe = std::min(safe, utf8_complete_prefix(pending_.substr(0, safe)));
    std::string out = utf8_sanitize(pending_.substr(0, safe));
    pending_.erase(0, safe);
    emitted_ += out;
    return out;
}

std::string TextStream::flush() {
    if (stopped_) return {};
    // A character cut off by the token limit is dropped, not shown as U+FFFD.
    std::string out = utf8_sanitize(pending_.substr(0, utf8_complete_prefix(pending_)));
    pending_.clear();
    emitted_ += out;
    return out;
}

}  // namespace ohai
