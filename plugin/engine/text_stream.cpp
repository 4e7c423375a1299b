#include "text_stream.h"

#include <algorithm>

namespace ohai {
namespace {

// Expected length of a UTF-8 sequence from its lead byte; 0 for a byte that cannot lead.
size_t utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return c >= 0xC2 ? 2 : 0;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return c <= 0xF4 ? 4 : 0;
    return 0;
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

size_t utf8_complete_prefix(const std::string & s) {
    // Only the last (up to) 3 bytes can belong to an unfinished character.
    const size_t n = s.size();
    for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
        const unsigned char c = static_cast<unsigned char>(s[n - back]);
        if (is_continuation(c)) continue;
        const size_t need = utf8_seq_len(c);
        return (need > back) ? n - back : n;
    }
    return n;
}

std::string utf8_sanitize(const std::string & s) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        const size_t need = utf8_seq_len(c);
        bool ok = need > 0 && i + need <= s.size();
        for (size_t k = 1; ok && k < need; ++k) ok = is_continuation(static_cast<unsigned char>(s[i + k]));
        if (ok) {
            out.append(s, i, need);
            i += need;
        } else {
            out += "\xEF\xBF\xBD";
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
