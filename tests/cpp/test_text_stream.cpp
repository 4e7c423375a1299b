// TextStream: UTF-8 never split, stop strings never shown, held-back text flushed at the end.
#include <cstdint>
#include <random>
#include <string>

#include "check.h"
#include "text_stream.h"

using ohai::TextStream;

static void utf8_is_never_split() {
    TextStream s({});
    const std::string euro = "\xE2\x82\xAC";   // "€" in three bytes, fed one at a time
    CHECK(s.push(euro.substr(0, 1)).empty());
    CHECK(s.push(euro.substr(1, 1)).empty());
    CHECK(s.push(euro.substr(2, 1)) == euro);
    CHECK(s.push("a") == "a");
    CHECK(s.text() == euro + "a");
}

static void stop_string_is_cut() {
    TextStream s({"END"});
    std::string out;
    out += s.push("hello E");
    CHECK(out == "hello ");             // "E" might start "END": held back
    out += s.push("N");
    CHECK(out == "hello ");
    out += s.push("Dmore");
    CHECK(s.stopped());
    CHECK(out == "hello ");
    CHECK(s.text() == "hello ");
    CHECK(s.push("x").empty());
}

static void false_alarm_is_released() {
    TextStream s({"END"});
    std::string out = s.push("E");
    out += s.push("x");
    CHECK(out == "Ex");
    CHECK(!s.stopped());
}

static void flush_sanitizes() {
    TextStream s({});
    CHECK(s.push("ok\xE2\x82").size() == 2);
    CHECK(s.flush().empty());   // an unfinished character at the end is dropped
    TextStream bad({});
    CHECK(bad.push("a\xFF") == "a\xEF\xBF\xBD");   // a byte that can never start a character is replaced
    CHECK(ohai::utf8_sanitize("a\xFFz") == "a\xEF\xBF\xBDz");
    CHECK(ohai::utf8_complete_prefix("ab\xF0\x9F\x98") == 2);
    CHECK(ohai::utf8_complete_prefix("ab\xF0\x9F\x98\x80") == 6);
}

// An independent validator: decodes code points arithmetically and checks they are minimal,
// not surrogates and at most U+10FFFF.
static bool reference_valid_utf8(const std::string & s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto b0 = static_cast<uint8_t>(s[i]);
        size_t len;
        uint32_t cp;
        if (b0 < 0x80) { len = 1; cp = b0; }
        else if ((b0 >> 5) == 0x6) { len = 2; cp = b0 & 0x1F; }
        else if ((b0 >> 4) == 0xE) { len = 3; cp = b0 & 0x0F; }
        else if ((b0 >> 3) == 0x1E) { len = 4; cp = b0 & 0x07; }
        else return false;
        if (i + len > s.size()) return false;
        for (size_t k = 1; k < len; ++k) {
            const auto b = static_cast<uint8_t>(s[i + k]);
            if ((b >> 6) != 0x2) return false;
            cp = (cp << 6) | (b & 0x3F);
        }
        const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

// Every 1-, 2- and 3-byte string, and random longer ones: sanitized output is always valid, and
// valid input comes back unchanged (surrogates, overlong forms, > U+10FFFF are what slipped through).
static void sanitize_agrees_with_reference() {
    std::string s;
    for (int a = 0; a < 256; ++a) {
        for (int b = 0; b < 256; ++b) {
            for (int c = -1; c < 256; ++c) {
                s.clear();
                s += static_cast<char>(a);
                s += static_cast<char>(b);
                if (c >= 0) s += static_cast<char>(c);
                const std::string out = ohai::utf8_sanitize(s);
                CHECK(reference_valid_utf8(out));
                CHECK(reference_valid_utf8(s) == (out == s));
            }
        }
    }
    std::mt19937 rng(42);
    for (int round = 0; round < 200000; ++round) {
        s.assign(1 + rng() % 8, '\0');
        for (auto & ch : s) ch = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 0x80 + rng() % 0x78);
        if (rng() % 2) s[0] = static_cast<char>(0xE0 + rng() % 0x15);
        const std::string out = ohai::utf8_sanitize(s);
        CHECK(reference_valid_utf8(out));
        CHECK(reference_valid_utf8(s) == (out == s));
    }
}

// Random bytes fed in random pieces: everything a stream emits is valid UTF-8, and a valid text
// comes out exactly as it went in, however it was split.
static void stream_output_is_always_valid() {
    std::mt19937 rng(7);
    const std::string valid = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF";
    for (int round = 0; round < 20000; ++round) {
        std::string input;
        if (round % 2) {
            input = valid;
        } else {
            input.assign(rng() % 24, '\0');
            for (auto & ch : input) ch = static_cast<char>(rng() % 256);
        }
        TextStream stream({});
        std::string out;
        for (size_t i = 0; i < input.size();) {
            const size_t n = 1 + rng() % 4;
            out += stream.push(input.substr(i, n));
            i += n;
        }
        out += stream.flush();
        CHECK(reference_valid_utf8(out));
        if (round % 2) CHECK(out == valid);
    }
}

int main() {
    sanitize_agrees_with_reference();
    stream_output_is_always_valid();
    utf8_is_never_split();
    stop_string_is_cut();
    false_alarm_is_released();
    flush_sanitizes();
    return finish("test_text_stream");
}
