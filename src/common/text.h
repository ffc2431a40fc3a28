// Text from outside: UTF-8 checks and terminal-safe printing.
#pragma once

#include <string>
#include <string_view>

namespace berth {

// Whether `s` is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool IsValidUtf8(std::string_view s);

// `s` with what could move a terminal's cursor, change its colours or retitle
// it written out instead: C0 controls (except tab), DEL and C1 controls become
// \n, \r, \e or \xNN / \u{NN}; malformed UTF-8 bytes become \xNN. Printable
// text, including non-ASCII and backslashes, is kept as it is (so escaping
// twice changes nothing: errors from berthd arrive escaped already).
std::string EscapeForTerminal(std::string_view s);

// The longest prefix of `s` of at most `max_bytes` bytes that ends on a UTF-8
// character boundary.
std::string TruncateUtf8(std::string_view s, size_t max_bytes);

}  // namespace berth
