// Pipeline templates ({{...}}) and `when` conditions (model/pipeline.h).
#include <cctype>
#include <cstdlib>

#include "model/limits.h"
#include "model/pipeline.h"

namespace berth::model {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// A tiny recursive-descent evaluator for `when`.
class CondParser {
 public:
  explicit CondParser(const std::string& s) : s_(s) {}
  Result<bool> Parse() {
    auto v = Or();
    if (!v.ok()) return v;
    Skip();
    if (i_ != s_.size())
      return InvalidArgument("unexpected \"" + s_.substr(i_) + "\" in condition \"" + s_ + "\"");
    return v;
  }

 private:
  void Skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool Eat(const std::string& tok) {
    Skip();
    if (s_.compare(i_, tok.size(), tok) == 0) {
      i_ += tok.size();
      return true;
    }
    return false;
  }
  Result<bool> Or() {
    ASSIGN_OR_RETURN(bool v, And());
    while (Eat("||")) {
      ASSIGN_OR_RETURN(bool w, And());
      v = v || w;
    }
    return v;
  }
  Result<bool> And() {
    ASSIGN_OR_RETURN(bool v, Not());
    while (Eat("&&")) {
      ASSIGN_OR_RETURN(bool w, Not());
      v = v && w;
    }
    return v;
  }
  // Nesting of ! and ( ), bounded so that the recursion is.
  struct Nest {
    explicit Nest(int& depth) : depth_(depth) { ++depth_; }
    ~Nest() { --depth_; }
    int& depth_;
  };
  Status TooDeep() const {
    return InvalidArgument("condition \"" + (s_.size() > 80 ? s_.substr(0, 80) + "..." : s_) +
                           "\" nests ! or ( deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  Result<bool> Not() {
    Skip();
    if (i_ < s_.size() && s_[i_] == '!' && (i_ + 1 >= s_.size() || s_[i_ + 1] != '=')) {
      ++i_;
      Nest nest(depth_);
      if (depth_ > kMaxDepth) return TooDeep();
      ASSIGN_OR_RETURN(bool v, Not());
      return !v;
    }
    return Cmp();
  }
  Result<std::string> Atom() {
    Skip();
    if (i_ >= s_.size()) return InvalidArgument("condition \"" + s_ + "\" ends early");
    char q = s_[i_];
    if (q == '"' || q == '\'') {
      size_t end = s_.find(q, i_ + 1);
      if (end == std::string::npos)
        return InvalidArgument("unterminated quote in condition \"" + s_ + "\"");
      std::string v = s_.substr(i_ + 1, end - i_ - 1);
      i_ = end + 1;
      return v;
    }
    size_t start = i_;
    while (i_ < s_.size() && !std::isspace(static_cast<unsigned char>(s_[i_])) &&
           std::string("()<>=!&|").find(s_[i_]) == std::string::npos)
      ++i_;
    if (i_ == start)
      return InvalidArgument("expected a value at \"" + s_.substr(start) + "\" in condition \"" +
                             s_ + "\"");
    return s_.substr(start, i_ - start);
  }
  static bool Truthy(const std::string& v) {
    return !(v.empty() || v == "false" || v == "0" || v == "False");
  }
  static std::optional<double> Num(const std::string& v) {
    if (v.empty()) return std::nullopt;
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (*end) return std::nullopt;
    return d;
  }
  Result<bool> Cmp() {
    Skip();
    if (Eat("(")) {
      Nest nest(depth_);
      if (depth_ > kMaxDepth) return TooDeep();
      ASSIGN_OR_RETURN(bool v, Or());
      if (!Eat(")")) return InvalidArgument("missing ) in condition \"" + s_ + "\"");
      return v;
    }
    ASSIGN_OR_RETURN(std::string a, Atom());
    static const char* kOps[] = {"==", "!=", "<=", ">=", "<", ">"};
    for (const char* op : kOps) {
      if (!Eat(op)) continue;
      ASSIGN_OR_RETURN(std::string b, Atom());
      std::string o = op;
      auto x = Num(a), y = Num(b);
      int c = (x && y) ? (*x < *y ? -1 : *x > *y ? 1 : 0) : a.compare(b) < 0 ? -1 : a == b ? 0 : 1;
      if (o == "==") return c == 0;
      if (o == "!=") return c != 0;
      if (o == "<=") return c <= 0;
      if (o == ">=") return c >= 0;
      if (o == "<") return c < 0;
      return c > 0;
    }
    return Truthy(a);
  }
  const std::string& s_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

std::vector<std::string> TemplateRefs(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string::npos) {
    size_t end = text.find("}}", pos + 2);
    if (end == std::string::npos) break;
    out.push_back(Trim(text.substr(pos + 2, end - pos - 2)));
    pos = end + 2;
  }
  return out;
}

Result<std::string> Substitute(
    const std::string& text,
    const std::function<std::optional<std::string>(const std::string&)>& lookup) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) break;
    size_t end = text.find("}}", open + 2);
    if (end == std::string::npos) return InvalidArgument("unterminated {{ in \"" + text + "\"");
    out += text.substr(pos, open - pos);
    std::string name = Trim(text.substr(open + 2, end - open - 2));
    auto v = lookup(name);
    if (!v) return InvalidArgument("undefined reference {{" + name + "}}");
    out += *v;
    pos = end + 2;
  }
  out += text.substr(pos);
  return out;
}

Result<bool> EvaluateCondition(const std::string& expr) { return CondParser(expr).Parse(); }

}  // namespace berth::model
