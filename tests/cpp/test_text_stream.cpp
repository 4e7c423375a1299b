// TextStream: UTF-8 never split, stop strings never shown, held-back text flushed at the end.
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

int main() {
    utf8_is_never_split();
    stop_string_is_cut();
    false_alarm_is_released();
    flush_sanitizes();
    return finish("test_text_stream");
}
