// http::Router and the message helpers, without sockets.
#include <gtest/gtest.h>

#include "http/router.h"

namespace berth::http {
namespace {

Request Req(const std::string& method, const std::string& path) {
  Request r;
  r.method = method;
  r.path = path;
  return r;
}

TEST(HttpRouter, MatchesCapturesAndPrefersLiteralSegments) {
  Router router;
  std::string hit;
  router.Get("/api/v1/jobs/{id}",
             [&](const Request& q, Response&) { hit = "job " + q.Capture("id"); });
  router.Get("/api/v1/jobs/{id}/logs",
             [&](const Request& q, Response&) { hit = "logs " + q.Capture("id"); });
  router.Get("/api/v1/jobs/latest", [&](const Request&, Response&) { hit = "latest"; });
  router.Post("/api/v1/runs/{id}/{action}", [&](const Request& q, Response&) {
    hit = q.Capture("id") + "/" + q.Capture("action");
  });
  Response res;
  Request a = Req("GET", "/api/v1/jobs/42");
  router.Dispatch(a, res);
  EXPECT_EQ(hit, "job 42");
  Request b = Req("GET", "/api/v1/jobs/7/logs");
  router.Dispatch(b, res);
  EXPECT_EQ(hit, "logs 7");
  Request c = Req("GET", "/api/v1/jobs/latest");
  router.Dispatch(c, res);
  EXPECT_EQ(hit, "latest");
  Request d = Req("POST", "/api/v1/runs/run-3/retry");
  router.Dispatch(d, res);
  EXPECT_EQ(hit, "run-3/retry");
  // HEAD runs the GET route.
  Request h = Req("HEAD", "/api/v1/jobs/9");
  router.Dispatch(h, res);
  EXPECT_EQ(hit, "job 9");
  EXPECT_EQ(res.status, 200);
}

TEST(HttpRouter, UnknownPathIs404AndWrongMethodIs405WithJsonErrors) {
  Router router;
  router.Get("/api/v1/jobs", [](const Request&, Response&) {});
  router.Post("/api/v1/jobs", [](const Request&, Response&) {});
  Response res;
  Request a = Req("GET", "/api/v1/nothing");
  router.Dispatch(a, res);
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.headers.Get("content-type"), "application/json");
  EXPECT_EQ(
      res.body,
      "{\"error\":{\"code\":\"not_found\",\"message\":\"no route for GET /api/v1/nothing\"}}\n");
  // An empty capture or an extra segment does not match either.
  router.Get("/api/v1/jobs/{id}", [](const Request&, Response&) {});
  Response res2;
  Request e = Req("GET", "/api/v1/jobs/");
  router.Dispatch(e, res2);
  EXPECT_EQ(res2.status, 404);

  Response res3;
  Request b = Req("PUT", "/api/v1/jobs");
  router.Dispatch(b, res3);
  EXPECT_EQ(res3.status, 405);
  EXPECT_EQ(res3.headers.Get("Allow"), "GET, POST");
  EXPECT_NE(res3.body.find("\"code\":\"not_found\""), std::string::npos) << res3.body;
  EXPECT_NE(res3.body.find("no route for PUT /api/v1/jobs"), std::string::npos) << res3.body;
}

TEST(HttpMessage, HeadersAreCaseInsensitiveAndErrorsAreEscapedJson) {
  Headers h;
  h.Add("X-Berth-User", "alice");
  EXPECT_TRUE(h.Has("x-berth-user"));
  EXPECT_EQ(h.Get("X-BERTH-USER"), "alice");
  h.Set("x-berth-user", "bob");
  EXPECT_EQ(h.all().size(), 1u);
  EXPECT_EQ(h.Get("X-Berth-User"), "bob");
  EXPECT_EQ(
      ErrorBody("invalid_argument", "a \"quote\"\n\\"),
      "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"a \\\"quote\\\"\\u000a\\\\\"}}\n");
  std::string out;
  EXPECT_TRUE(PercentDecode("a%20b+c%2Fd", &out, true));
  EXPECT_EQ(out, "a b c/d");
  EXPECT_TRUE(PercentDecode("a+b", &out, false));
  EXPECT_EQ(out, "a+b");
  EXPECT_FALSE(PercentDecode("bad%2", &out, true));
  EXPECT_FALSE(PercentDecode("bad%zz", &out, true));
}

}  // namespace
}  // namespace berth::http
