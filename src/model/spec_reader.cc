#include "model/spec_reader.h"

#include <cctype>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <unordered_map>

#include "common/text.h"

namespace berth::model {
namespace {

// Thrown by BoundsCheck to stop the parser at the first bound passed.
struct BoundExceeded {
  std::string message;
};

// Counts a document's parser events against the bounds of limits.h before
// any node is built: yaml-cpp builds an alias as a shared node, and what then
// walks the tree (or converts it to JSON) expands every alias, so the
// expanded size is what must be bounded. Each anchor's expanded size and
// height are remembered, so an alias costs what its expansion would.
class BoundsCheck : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { Leaf(anchor, nullptr); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    Leaf(anchor, &value);
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t anchor) override {
    if (++aliases_ > kMaxAliases)
      Fail(Path() + ": more than " + std::to_string(kMaxAliases) + " aliases in the document");
    auto it = anchors_.find(anchor);
    Shape shape = it == anchors_.end() ? Shape{1, 0} : it->second;
    Count(shape.nodes);
    if (static_cast<int64_t>(stack_.size()) + shape.height > kMaxDepth)
      Fail(Path() + ": an alias nests deeper than " + std::to_string(kMaxDepth) + " levels");
    Child(shape.height, nullptr);
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(anchor, false);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(anchor, true);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Shape {
    int64_t nodes;   // with every alias expanded
    int64_t height;  // 0 for a scalar
  };
  struct Frame {
    bool is_map;
    YAML::anchor_t anchor;
    int64_t first;         // nodes_ before this collection
    int64_t height = 0;    // the highest child
    int64_t children = 0;  // map: keys and values alternate
    std::string key;       // map: the last key seen
    std::string path;
  };

  [[noreturn]] void Fail(const std::string& message) { throw BoundExceeded{message}; }

  void Count(int64_t n) {
    nodes_ += n;
    if (nodes_ > kMaxNodes)
      Fail(Path() + ": the document expands to more than " + std::to_string(kMaxNodes) +
           " nodes (counting every alias expanded)");
  }

  // The path of the node being read now ("spec.steps[2].name").
  std::string Path() const {
    if (stack_.empty()) return "document";
    const Frame& f = stack_.back();
    if (!f.is_map) return f.path + "[" + std::to_string(f.children) + "]";
    std::string key = EscapeForTerminal(f.key.size() > 64 ? f.key.substr(0, 64) + "..." : f.key);
    if (f.children % 2 == 0) return f.path.empty() ? "document" : f.path;  // at a key
    return f.path.empty() ? key : f.path + "." + key;
  }

  void Child(int64_t height, const std::string* scalar) {
    if (stack_.empty()) return;
    Frame& f = stack_.back();
    if (f.is_map && f.children % 2 == 0) f.key = scalar ? *scalar : std::string();
    f.height = std::max(f.height, height + 1);
    ++f.children;
  }

  void Leaf(YAML::anchor_t anchor, const std::string* value) {
    Count(1);
    if (value && !IsValidUtf8(*value)) {
      bool is_key = !stack_.empty() && stack_.back().is_map && stack_.back().children % 2 == 0;
      Fail(Path() + (is_key ? ": a key is not valid UTF-8" : ": is not valid UTF-8"));
    }
    if (anchor) anchors_[anchor] = Shape{1, 0};
    Child(0, value);
  }

  void Open(YAML::anchor_t anchor, bool is_map) {
    std::string path = stack_.empty() ? "" : Path();
    if (path == "document") path.clear();
    Count(1);
    if (static_cast<int>(stack_.size()) >= kMaxDepth)
      Fail((path.empty() ? "document" : path) + ": nests deeper than " + std::to_string(kMaxDepth) +
           " levels");
    stack_.push_back(Frame{is_map, anchor, nodes_ - 1, 0, 0, "", path});
  }

  void Close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.anchor) anchors_[f.anchor] = Shape{nodes_ - f.first, f.height};
    Child(f.height, nullptr);
  }

  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, Shape> anchors_;
  int64_t nodes_ = 0;
  int64_t aliases_ = 0;
};

std::string Describe(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "null";
  if (n.IsMap()) return "a map";
  if (n.IsSequence()) return "a list";
  const std::string& v = n.Scalar();
  return "\"" + (v.size() > 80 ? TruncateUtf8(v, 80) + "..." : v) + "\"";
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool ParseNumber(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace

bool SpecReader::Has(const std::string& key) const {
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

std::string SpecReader::ChildPath(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

SpecReader SpecReader::Child(const std::string& key) {
  known_.insert(key);
  if (!node_.IsMap()) return SpecReader(YAML::Node(YAML::NodeType::Null), ChildPath(key));
  YAML::Node n = node_[key];
  if (!n.IsDefined()) n = YAML::Node(YAML::NodeType::Null);
  return SpecReader(n, ChildPath(key));
}

Status SpecReader::Error(const std::string& key, const std::string& reason) const {
  return InvalidArgument((key.empty() ? path_ : ChildPath(key)) + ": " + reason);
}

Status SpecReader::String(const std::string& key, std::string* out, bool required) {
  known_.insert(key);
  if (!Has(key)) return required ? Error(key, "is required") : Status::Ok();
  const YAML::Node n = node_[key];
  if (!n.IsScalar()) return Error(key, "must be a string, got " + Describe(n));
  *out = n.Scalar();
  return Status::Ok();
}

Status SpecReader::Int(const std::string& key, int64_t* out, bool required) {
  known_.insert(key);
  if (!Has(key)) return required ? Error(key, "is required") : Status::Ok();
  const YAML::Node n = node_[key];
  double v;
  if (!n.IsScalar() || !ParseNumber(n.Scalar(), &v) || v != std::floor(v) || std::fabs(v) > 9e15)
    return Error(key, "must be an integer, got " + Describe(n));
  *out = static_cast<int64_t>(v);
  return Status::Ok();
}

Status SpecReader::Bool(const std::string& key, bool* out) {
  known_.insert(key);
  if (!Has(key)) return Status::Ok();
  const YAML::Node n = node_[key];
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "yes") {
      *out = true;
      return Status::Ok();
    }
    if (s == "false" || s == "False" || s == "no") {
      *out = false;
      return Status::Ok();
    }
  }
  return Error(key, "must be true or false, got " + Describe(n));
}

Status SpecReader::StringList(const std::string& key, std::vector<std::string>* out) {
  known_.insert(key);
  if (!Has(key)) return Status::Ok();
  const YAML::Node n = node_[key];
  if (n.IsScalar()) {  // a single string is a one-element list
    *out = {n.Scalar()};
    return Status::Ok();
  }
  if (!n.IsSequence()) return Error(key, "must be a list of strings, got " + Describe(n));
  out->clear();
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar())
      return Error(key + "[" + std::to_string(i) + "]", "must be a string, got " + Describe(n[i]));
    out->push_back(n[i].Scalar());
  }
  return Status::Ok();
}

Status SpecReader::StringMap(const std::string& key, std::map<std::string, std::string>* out) {
  known_.insert(key);
  if (!Has(key)) return Status::Ok();
  const YAML::Node n = node_[key];
  if (n.IsMap()) {
    for (const auto& kv : n) {
      std::string k = kv.first.Scalar();
      if (!kv.second.IsScalar())
        return Error(key + "." + k, "must be a string, got " + Describe(kv.second));
      (*out)[k] = kv.second.Scalar();
    }
    return Status::Ok();
  }
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) {
      std::string p = key + "[" + std::to_string(i) + "]";
      const YAML::Node e = n[i];
      if (!e.IsMap() || !e["name"].IsDefined() || !e["name"].IsScalar())
        return Error(p, "must be {name: ..., value: ...}");
      for (const auto& kv : e) {
        std::string k = kv.first.Scalar();
        if (k != "name" && k != "value") return Error(p + "." + k, "unknown field");
      }
      std::string v;
      if (e["value"].IsDefined() && !e["value"].IsNull()) {
        if (!e["value"].IsScalar()) return Error(p + ".value", "must be a string");
        v = e["value"].Scalar();
      }
      (*out)[e["name"].Scalar()] = v;
    }
    return Status::Ok();
  }
  return Error(key, "must be a map of strings, got " + Describe(n));
}

Status SpecReader::Milli(const std::string& key, int64_t* out) {
  known_.insert(key);
  if (!Has(key)) return Status::Ok();
  const YAML::Node n = node_[key];
  if (!n.IsScalar()) return Error(key, "must be a number, got " + Describe(n));
  auto r = ParseMilli(n.Scalar());
  if (!r.ok()) return Error(key, r.status().message());
  *out = *r;
  return Status::Ok();
}

Status SpecReader::Memory(const std::string& key, MiB* out) {
  known_.insert(key);
  if (!Has(key)) return Status::Ok();
  const YAML::Node n = node_[key];
  if (!n.IsScalar()) return Error(key, "must be a quantity like 512Mi or 16Gi, got " + Describe(n));
  auto r = ParseMemory(n.Scalar());
  if (!r.ok()) return Error(key, r.status().message());
  *out = *r;
  return Status::Ok();
}

Status SpecReader::Duration(const std::string& key, DurationMs* out) {
  known_.insert(key);
  if (!Has(key)) return Status::Ok();
  const YAML::Node n = node_[key];
  if (!n.IsScalar()) return Error(key, "must be a duration like 90s or 2h, got " + Describe(n));
  auto r = ParseDuration(n.Scalar());
  if (!r.ok()) return Error(key, r.status().message());
  *out = *r;
  return Status::Ok();
}

Status SpecReader::Seconds(const std::string& key, DurationMs* out, bool allow_negative) {
  known_.insert(key);
  if (!Has(key)) return Status::Ok();
  const YAML::Node n = node_[key];
  double v;
  if (!n.IsScalar() || !ParseNumber(n.Scalar(), &v) || v != std::floor(v))
    return Error(key, "must be a whole number of seconds, got " + Describe(n));
  if (v < 0) {
    if (allow_negative) {
      *out = -1;
      return Status::Ok();
    }
    return Error(key, "must be >= 0, got " + n.Scalar());
  }
  if (v * 1000 > static_cast<double>(kMaxDuration))
    return Error(key, "is too long: " + n.Scalar() + " seconds, the most is " +
                          std::to_string(kMaxDuration / kSecond) + " (" + kMaxDurationText + ")");
  *out = static_cast<DurationMs>(v) * kSecond;
  return Status::Ok();
}

Status SpecReader::CheckNoUnknown() const {
  if (!node_.IsMap()) return Status::Ok();
  for (const auto& kv : node_) {
    std::string k = kv.first.Scalar();
    if (known_.count(k)) continue;
    // The closest known name; ties go to the longest common prefix.
    std::string hint;
    size_t best = 3, best_prefix = 0;
    for (const auto& cand : known_) {
      size_t d = EditDistance(k, cand);
      size_t prefix = 0;
      while (prefix < k.size() && prefix < cand.size() && k[prefix] == cand[prefix]) ++prefix;
      if (d < best || (d == best && !hint.empty() && prefix > best_prefix)) {
        best = d;
        best_prefix = prefix;
        hint = cand;
      }
    }
    std::string reason = "unknown field";
    if (!hint.empty()) reason += " (did you mean \"" + hint + "\"?)";
    return Error(k, reason);
  }
  return Status::Ok();
}

Result<YAML::Node> LoadYamlBounded(const std::string& text, const std::string& what) {
  if (text.size() > kMaxDocumentBytes)
    return InvalidArgument(what + ": is " + std::to_string(text.size()) + " bytes, the most is " +
                           std::to_string(kMaxDocumentBytes >> 20) + " MiB");
  try {
    {
      std::istringstream in(text);
      YAML::Parser parser(in);
      BoundsCheck check;
      parser.HandleNextDocument(check);
    }
    return YAML::Load(text);
  } catch (const BoundExceeded& e) {
    if (what == "document") return InvalidArgument(e.message);
    // A file: its name first ("berthd.yaml: scheduler.options: ...").
    return InvalidArgument(
        what + (e.message.rfind("document", 0) == 0 ? e.message.substr(8) : ": " + e.message));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(
        (what == "document" ? "malformed YAML/JSON" : what + ": malformed YAML") + " at line " +
        std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1) + ": " +
        e.msg);
  }
}

Result<YAML::Node> ParseDocument(const std::string& text) {
  ASSIGN_OR_RETURN(YAML::Node root, LoadYamlBounded(text));
  if (!root.IsDefined() || root.IsNull()) return InvalidArgument("document is empty");
  if (!root.IsMap()) return InvalidArgument("document must be a map with apiVersion and kind");
  return root;
}

nlohmann::json YamlToJson(const YAML::Node& n) {
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& x : n) a.push_back(YamlToJson(x));
    return a;
  }
  if (n.IsMap()) {
    nlohmann::json o = nlohmann::json::object();
    for (const auto& kv : n) o[kv.first.Scalar()] = YamlToJson(kv.second);
    return o;
  }
  if (n.IsScalar()) return n.Scalar();
  return nullptr;
}

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

Result<int64_t> ParseMilli(const std::string& s) {
  std::string t = s;
  double scale = 1000.0;
  if (!t.empty() && t.back() == 'm') {
    t.pop_back();
    scale = 1.0;
  }
  double v;
  if (!ParseNumber(t, &v)) return InvalidArgument("must be a number, got \"" + s + "\"");
  if (v < 0) return InvalidArgument("must be >= 0, got " + s);
  double milli = v * scale;
  if (std::fabs(milli - std::round(milli)) > 1e-6)
    return InvalidArgument("must be a multiple of 0.001, got " + s);
  if (milli > 1e12) return InvalidArgument("is too large: " + s);
  return static_cast<int64_t>(std::llround(milli));
}

Result<MiB> ParseMemory(const std::string& s) {
  size_t i = 0;
  while (i < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == '-'))
    ++i;
  std::string num = s.substr(0, i), unit = s.substr(i);
  double v;
  if (!ParseNumber(num, &v))
    return InvalidArgument("must be a quantity like 512Mi or 16Gi, got \"" + s + "\"");
  if (v < 0) return InvalidArgument("must be >= 0, got " + s);
  double mib;
  if (unit.empty() || unit == "Mi" || unit == "M" || unit == "MiB")
    mib = v;
  else if (unit == "Ki" || unit == "K" || unit == "KiB")
    mib = v / 1024.0;
  else if (unit == "Gi" || unit == "G" || unit == "GiB")
    mib = v * 1024.0;
  else if (unit == "Ti" || unit == "T" || unit == "TiB")
    mib = v * 1024.0 * 1024.0;
  else
    return InvalidArgument("unknown unit \"" + unit + "\" in \"" + s + "\" (use Ki, Mi, Gi or Ti)");
  if (mib > 1e12) return InvalidArgument("is too large: " + s);
  return static_cast<MiB>(std::ceil(mib));
}

Result<DurationMs> ParseDuration(const std::string& s) {
  auto too_long = [&] {
    return InvalidArgument("is too long: \"" + s + "\", the most is " + kMaxDurationText);
  };
  double plain;
  if (ParseNumber(s, &plain)) {
    if (plain < 0) return InvalidArgument("must be >= 0, got " + s);
    if (plain * 1000 > static_cast<double>(kMaxDuration)) return too_long();
    return static_cast<DurationMs>(std::llround(plain * 1000));
  }
  double total = 0;
  size_t i = 0;
  bool any = false;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    size_t k = j;
    while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
    double v;
    if (j == i || k == j || !ParseNumber(s.substr(i, j - i), &v))
      return InvalidArgument("must be a duration like 90s, 15m, 2h or 1h30m, got \"" + s + "\"");
    std::string u = s.substr(j, k - j);
    double mult;
    if (u == "ms")
      mult = 1;
    else if (u == "s")
      mult = kSecond;
    else if (u == "m")
      mult = kMinute;
    else if (u == "h")
      mult = kHour;
    else if (u == "d")
      mult = 24 * kHour;
    else
      return InvalidArgument("unknown unit \"" + u + "\" in \"" + s + "\" (use ms, s, m, h or d)");
    total += v * mult;  // v >= 0: only digits and '.'
    if (total > static_cast<double>(kMaxDuration)) return too_long();
    any = true;
    i = k;
  }
  if (!any) return InvalidArgument("must be a duration like 90s or 2h, got \"" + s + "\"");
  return static_cast<DurationMs>(std::llround(total));
}

}  // namespace berth::model
