#include "cli/table.h"

#include <algorithm>

#include "common/text.h"

namespace berth::cli {

namespace {

// Terminal columns a cell takes: one per character (UTF-8 continuation bytes
// take none; wide characters are rare in names and counted as one).
size_t Width(const std::string& s) {
  size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}

}  // namespace

void Table::Print(std::ostream& out) const {
  // Cells come from users (names, commands, messages): escaped, so that no
  // control character reaches the terminal, and tabs too (they break columns).
  auto escape = [](const std::vector<std::string>& r) {
    std::vector<std::string> e;
    for (const auto& cell : r) {
      std::string x = EscapeForTerminal(cell);
      for (size_t p = 0; (p = x.find('\t', p)) != std::string::npos;) x.replace(p, 1, "\\t");
      e.push_back(std::move(x));
    }
    return e;
  };
  std::vector<std::string> headers = escape(headers_);
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : rows_) rows.push_back(escape(r));
  std::vector<size_t> w(headers.size(), 0);
  for (size_t i = 0; i < headers.size(); ++i) w[i] = Width(headers[i]);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], Width(r[i]));
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t i = 0; i < w.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : "";
      s += cell;
      if (i + 1 < w.size()) s += std::string(w[i] - Width(cell) + 2, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  line(headers);
  for (const auto& r : rows) line(r);
}

}  // namespace berth::cli
