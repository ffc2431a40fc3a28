// Routes requests to handlers by method and path pattern. A pattern is a
// path whose segments are literals or `{name}` captures ("/api/v1/jobs/{id}
// /logs" without the space); a capture matches one non-empty segment,
// percent-decoded, in Request::captures. When several patterns match, the
// one with more literal segments wins. No match: 404; the path matches but
// not the method: 405 with an Allow header. Both with a JSON error body
// (http::ErrorBody, code "not_found").
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "http/message.h"

namespace berth::http {

using Handler = std::function<void(const Request&, Response&)>;

class Router {
 public:
  void Add(std::string method, const std::string& pattern, Handler handler);
  void Get(const std::string& pattern, Handler h) { Add("GET", pattern, std::move(h)); }
  void Post(const std::string& pattern, Handler h) { Add("POST", pattern, std::move(h)); }
  void Put(const std::string& pattern, Handler h) { Add("PUT", pattern, std::move(h)); }
  void Delete(const std::string& pattern, Handler h) { Add("DELETE", pattern, std::move(h)); }

  // Finds the route for `req` (filling its captures) and runs it. HEAD runs
  // the GET route (the server sends no body).
  void Dispatch(Request& req, Response& res) const;

 private:
  struct Segment {
    std::string text;
    bool capture = false;
  };
  struct Route {
    std::string method;
    std::vector<Segment> segments;
    int literals = 0;
    Handler handler;
  };
  static bool Match(const Route& r, const std::vector<std::string>& parts,
                    std::map<std::string, std::string>* captures);
  std::vector<Route> routes_;
};

}  // namespace berth::http
