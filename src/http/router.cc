#include "http/router.h"

#include <set>

namespace berth::http {
namespace {

// Splits "/a/b/c" into {"a", "b", "c"}; the root "/" into {}. A trailing
// slash gives a last empty segment, which no capture matches.
std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t i = path.empty() || path[0] != '/' ? 0 : 1;
  if (i == path.size()) return out;
  while (true) {
    size_t slash = path.find('/', i);
    out.push_back(path.substr(i, slash == std::string::npos ? std::string::npos : slash - i));
    if (slash == std::string::npos) break;
    i = slash + 1;
  }
  return out;
}

}  // namespace

void Router::Add(std::string method, const std::string& pattern, Handler handler) {
  Route r;
  r.method = std::move(method);
  for (std::string& part : SplitPath(pattern)) {
    Segment s;
    if (part.size() > 2 && part.front() == '{' && part.back() == '}') {
      s.capture = true;
      s.text = part.substr(1, part.size() - 2);
    } else {
      s.text = std::move(part);
      ++r.literals;
    }
    r.segments.push_back(std::move(s));
  }
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

bool Router::Match(const Route& r, const std::vector<std::string>& parts,
                   std::map<std::string, std::string>* captures) {
  if (r.segments.size() != parts.size()) return false;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Segment& s = r.segments[i];
    if (s.capture) {
      if (parts[i].empty()) return false;
      if (captures) (*captures)[s.text] = parts[i];
    } else if (s.text != parts[i]) {
      return false;
    }
  }
  return true;
}

void Router::Dispatch(Request& req, Response& res) const {
  // Request::path is decoded already; captures are matched on the decoded
  // segments (a "%2F" in a capture is a slash the pattern never splits on,
  // which is fine for ids and names).
  std::vector<std::string> parts = SplitPath(req.path);
  const Route* best = nullptr;
  std::set<std::string> allowed;
  for (const Route& r : routes_) {
    if (!Match(r, parts, nullptr)) continue;
    if (r.method != req.method && !(req.method == "HEAD" && r.method == "GET")) {
      allowed.insert(r.method);
      continue;
    }
    if (!best || r.literals > best->literals) best = &r;
  }
  if (best) {
    req.captures.clear();
    Match(*best, parts, &req.captures);
    best->handler(req, res);
    return;
  }
  std::string what = "no route for " + req.method + " " + req.path;
  if (allowed.empty()) return SetError(res, 404, "not_found", what);
  std::string allow;
  for (const std::string& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
  SetError(res, 405, "not_found", what + " (" + req.path + " allows " + allow + ")");
  res.headers.Set("Allow", allow);
}

}  // namespace berth::http
