// http::Server on real sockets: keep-alive, Unix sockets with the caller's
// credentials, size caps and read timeouts, streams in their own pool,
// connection limits, and connections taken over (WebSocket, CONNECT and
// Upgrade tunnels).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "http/server.h"
#include "raw_client.h"

namespace berth::http {
namespace {

using namespace testing;
using namespace std::chrono_literals;

template <typename F>
bool WaitFor(F f, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/berth-http-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

// A server on a free loopback port with a few test routes.
struct TestServer {
  explicit TestServer(ServerOptions opt = {}, std::function<void(Router&)> more = {}) {
    router.Get("/healthz",
               [](const Request&, Response& res) { res.SetContent("ok\n", "text/plain"); });
    router.Post("/echo", [](const Request& q, Response& res) {
      res.SetContent(q.body, "text/plain");
      res.headers.Set("X-Query-A", q.Param("a"));
      res.headers.Set("X-User", q.Header("x-berth-user"));
    });
    router.Get("/peer", [](const Request& q, Response& res) {
      res.SetContent(std::to_string(q.peer.kind == Peer::Kind::kUnix) + " " +
                         std::to_string(q.peer.has_credentials) + " " + std::to_string(q.peer.uid) +
                         " " + std::to_string(q.peer.gid) + " " + std::to_string(q.peer.pid) + " " +
                         q.peer.address,
                     "text/plain");
    });
    router.Get("/stream", [this](const Request&, Response& res) {
      res.stream = [this](StreamWriter& w) {
        ++open_streams;
        w.Write("data: hello\n\n");
        while (w.Open()) std::this_thread::sleep_for(10ms);
        --open_streams;
      };
    });
    if (more) more(router);
    server =
        std::make_unique<Server>(opt, [this](Request& q, Response& r) { router.Dispatch(q, r); });
    auto p = server->ListenTcp("127.0.0.1", 0);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    port = p.ok() ? *p : 0;
  }
  void Start() { ASSERT_TRUE(server->Start().ok()); }
  Router router;
  std::unique_ptr<Server> server;
  int port = 0;
  std::atomic<int> open_streams{0};
};

TEST(HttpServer, KeepAliveServesManyRequestsOnOneConnection) {
  TestServer s;
  s.Start();
  int fd = ConnectTcp(s.port);
  ASSERT_GE(fd, 0);
  std::string carry;
  for (int i = 0; i < 3; ++i) {
    std::string body = "body " + std::to_string(i);
    ASSERT_TRUE(SendAll(
        fd, "POST /echo?a=x%20y&b=2 HTTP/1.1\r\nHost: t\r\nx-BERTH-user: al\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body));
    auto r = ReadReply(fd, &carry);
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, body);
    EXPECT_EQ(r->headers["x-query-a"], "x y");
    EXPECT_EQ(r->headers["x-user"], "al");
    EXPECT_EQ(r->headers.count("connection"), 0u);
  }
  // Two pipelined requests: both answered, in order.
  ASSERT_TRUE(
      SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto a = ReadReply(fd, &carry);
  auto b = ReadReply(fd, &carry);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 404);
  EXPECT_EQ(b->headers["content-type"], "application/json");
  ::close(fd);
}

TEST(HttpServer, UnixSocketGivesTheCallersKernelCredentials) {
  TempDir dir;
  std::string path = dir.path + "/api.sock";
  TestServer s;
  ASSERT_TRUE(s.server->ListenUnix(path, 0666).ok());
  s.Start();
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  auto r = Fetch(ConnectUnix(path), "GET", "/peer");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "1 1 " + std::to_string(::getuid()) + " " + std::to_string(::getgid()) + " " +
                         std::to_string(::getpid()) + " " + path);
  // Over TCP: no credentials, the remote address.
  auto t = Fetch(ConnectTcp(s.port), "GET", "/peer");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->body.rfind("0 0 ", 0), 0u) << t->body;
  EXPECT_NE(t->body.find(" 127.0.0.1:"), std::string::npos) << t->body;

  // Another server may not take a socket that answers...
  TestServer other;
  Status taken = other.server->ListenUnix(path, 0600);
  EXPECT_FALSE(taken.ok());
  EXPECT_NE(taken.message().find("another process listens on it"), std::string::npos)
      << taken.message();
  // ...nor a path that is not a socket.
  std::ofstream(dir.path + "/file") << "x";
  Status file = other.server->ListenUnix(dir.path + "/file", 0600);
  EXPECT_NE(file.message().find("is not a socket"), std::string::npos) << file.message();
  // Stop removes the socket file.
  s.server->Stop();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(HttpServer, AStaleSocketFileIsReplaced) {
  TempDir dir;
  std::string path = dir.path + "/api.sock";
  {  // A socket file nobody listens on any more.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ::close(fd);
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  TestServer s;
  Status st = s.server->ListenUnix(path, 0600);
  ASSERT_TRUE(st.ok()) << st.ToString();
  s.Start();
  auto r = Fetch(ConnectUnix(path), "GET", "/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServer, ATakenPortIsAnErrorNamingIt) {
  TestServer a;
  TestServer b;
  auto again = b.server->ListenTcp("127.0.0.1", a.port);
  ASSERT_FALSE(again.ok());
  std::string want = "127.0.0.1:" + std::to_string(a.port) +
                     ": Address already in use (another process listens on port " +
                     std::to_string(a.port) + ")";
  EXPECT_NE(again.status().message().find(want), std::string::npos) << again.status().message();
}

TEST(HttpServer, BodyAndHeaderCapsAnswer413And431) {
  ServerOptions opt;
  opt.max_body_bytes = 1024;
  opt.max_header_bytes = 2048;
  TestServer s(opt);
  s.Start();
  auto big = Fetch(ConnectTcp(s.port), "POST", "/echo", std::string(1025, 'x'));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(big->body,
            "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"request body is larger than 1 "
            "KiB\"}}\n");
  auto fits = Fetch(ConnectTcp(s.port), "POST", "/echo", std::string(1024, 'x'));
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 200);
  // A chunked body past the cap is refused too.
  int fd = ConnectTcp(s.port);
  std::string chunk(800, 'y');
  ASSERT_TRUE(
      SendAll(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n" +
                      chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n"));
  std::string carry;
  auto chunked = ReadReply(fd, &carry);
  ::close(fd);
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 413);
  auto header =
      Fetch(ConnectTcp(s.port), "GET", "/healthz", "", "X-Big: " + std::string(3000, 'h') + "\r\n");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->status, 431);
  EXPECT_NE(header->body.find("larger than 2 KiB"), std::string::npos) << header->body;
  auto garbage = Fetch(ConnectTcp(s.port), "GET", "/a b c");
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->status, 400);
  EXPECT_NE(garbage->body.find("malformed HTTP request"), std::string::npos) << garbage->body;
}

TEST(HttpServer, ASlowRequestIsCutOffWhileOthersAreServed) {
  ServerOptions opt;
  opt.read_timeout_ms = 300;
  opt.workers = 2;
  TestServer s(opt);
  s.Start();
  // Many slow clients, each sending a header line and then nothing.
  std::vector<int> slow;
  for (int i = 0; i < 50; ++i) {
    int fd = ConnectTcp(s.port);
    ASSERT_GE(fd, 0);
    SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n");
    slow.push_back(fd);
  }
  auto ok = Fetch(ConnectTcp(s.port), "GET", "/healthz");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto start = std::chrono::steady_clock::now();
  for (int fd : slow) {
    std::string carry;
    auto r = ReadReply(fd, &carry, 3000);
    ASSERT_TRUE(r) << "a slow client was not cut off";
    EXPECT_EQ(r->status, 408);
    ::close(fd);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  // An idle keep-alive connection is closed after the same time.
  int idle = ConnectTcp(s.port);
  std::string buf;
  EXPECT_EQ(RecvSome(idle, &buf, 3000), 0) << buf;
  ::close(idle);
}

TEST(HttpServer, HundredOpenStreamsDoNotStarveOtherRequests) {
  ServerOptions opt;
  opt.workers = 8;  // far fewer than the streams
  TestServer s(opt);
  s.Start();
  std::vector<int> streams;
  for (int i = 0; i < 100; ++i) {
    int fd = ConnectTcp(s.port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
    streams.push_back(fd);
  }
  for (int fd : streams) {
    std::string carry;
    auto r = ReadReply(fd, &carry);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->headers["transfer-encoding"], "chunked");
    EXPECT_EQ(r->headers["content-type"], "text/event-stream");
    while (carry.find("data: hello") == std::string::npos) ASSERT_GT(RecvSome(fd, &carry, 5000), 0);
  }
  EXPECT_EQ(s.open_streams.load(), 100);
  for (int i = 0; i < 20; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto r = Fetch(ConnectTcp(s.port), "GET", "/healthz", "", "", 1000);
    ASSERT_TRUE(r) << "/healthz did not answer within 1 s with 100 streams open";
    EXPECT_EQ(r->status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  }
  // A stream ends when its client goes away.
  for (int fd : streams) ::close(fd);
  EXPECT_TRUE(WaitFor([&] { return s.open_streams.load() == 0; }, 5s)) << s.open_streams.load();
}

TEST(HttpServer, StreamsAndConnectionsAreBounded) {
  ServerOptions opt;
  opt.max_streams = 2;
  opt.max_connections = 4;
  TestServer s(opt);
  s.Start();
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    int fd = ConnectTcp(s.port);
    SendAll(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    fds.push_back(fd);
  }
  int refused = 0;
  for (int fd : fds) {
    std::string carry;
    auto r = ReadReply(fd, &carry);
    ASSERT_TRUE(r);
    if (r->status == 503) {
      ++refused;
      EXPECT_NE(r->body.find("too many open streams"), std::string::npos) << r->body;
    }
  }
  EXPECT_EQ(refused, 1);
  // 2 streams + 1 more connection = 3 open; the 5th connection is refused.
  int fourth = ConnectTcp(s.port);
  ASSERT_TRUE(WaitFor(
      [&] { return Fetch(ConnectTcp(s.port), "GET", "/healthz").value_or(Reply{}).status == 503; },
      5s));
  ::close(fourth);
  for (int fd : fds) ::close(fd);
  EXPECT_TRUE(WaitFor(
      [&] { return Fetch(ConnectTcp(s.port), "GET", "/healthz").value_or(Reply{}).status == 200; },
      5s));
}

TEST(HttpServer, StopEndsOpenStreamsPromptly) {
  TestServer s;
  s.Start();
  int fd = ConnectTcp(s.port);
  SendAll(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(WaitFor([&] { return s.open_streams.load() == 1; }, 5s));
  auto start = std::chrono::steady_clock::now();
  s.server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(s.open_streams.load(), 0);
  std::string buf;
  while (RecvSome(fd, &buf, 2000) > 0) {
  }
  EXPECT_EQ(RecvSome(fd, &buf, 100), 0);  // closed
  ::close(fd);
}

TEST(HttpServer, WebSocketRouteEchoes) {
  TestServer s({}, [](Router& r) {
    r.Get("/ws", [](const Request&, Response& res) {
      res.websocket = [](WebSocket& ws) {
        std::string msg;
        bool binary = false;
        while (ws.Read(&msg, &binary)) ws.Write("echo: " + msg, binary);
      };
    });
  });
  s.Start();
  namespace net = boost::asio;
  namespace websocket = boost::beast::websocket;
  net::io_context ioc;
  net::ip::tcp::socket sock(ioc);
  sock.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(s.port)});
  websocket::stream<net::ip::tcp::socket> ws(std::move(sock));
  ws.handshake("127.0.0.1", "/ws");
  for (const std::string msg : {"one", "two"}) {
    ws.text(true);
    ws.write(net::buffer(msg));
    boost::beast::flat_buffer b;
    ws.read(b);
    EXPECT_EQ(boost::beast::buffers_to_string(b.data()), "echo: " + msg);
    EXPECT_TRUE(ws.got_text());
  }
  ws.close(websocket::close_code::normal);
  // A plain GET of a WebSocket route is refused.
  auto plain = Fetch(ConnectTcp(s.port), "GET", "/ws");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 400);
}

// A TCP echo server on a free port, for the tunnel tests.
struct EchoServer {
  EchoServer() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd, 8);
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread = std::thread([this] {
      int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      for (ssize_t n; (n = ::recv(c, buf, sizeof(buf), 0)) > 0;) SendAll(c, std::string(buf, n));
      ::close(c);
    });
  }
  ~EchoServer() {
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    thread.join();
  }
  int fd, port;
  std::thread thread;
};

// Routes that tunnel to 127.0.0.1:PORT: CONNECT (as a proxy does) and an
// Upgrade of GET /tunnel/{port}.
void TunnelRoutes(Router& r) {
  auto tunnel_to = [](int port) {
    return [port](Tunnel& t) {
      int fd = ConnectTcp(port);
      if (fd < 0) return;
      Splice(t, fd);
      ::close(fd);
    };
  };
  r.Add("CONNECT", "{authority}", [tunnel_to](const Request& q, Response& res) {
    std::string a = q.Capture("authority");
    if (a.rfind("127.0.0.1:", 0) != 0)
      return SetError(res, 403, "invalid_argument", "loopback only");
    res.takeover = tunnel_to(std::stoi(a.substr(10)));
  });
  r.Get("/tunnel/{port}", [tunnel_to](const Request& q, Response& res) {
    if (!EqualsIgnoreCase(q.Header("Upgrade"), "raw-tcp"))
      return SetError(res, 426, "invalid_argument", "Upgrade: raw-tcp is required");
    res.status = 101;
    res.headers.Set("Upgrade", "raw-tcp");
    res.headers.Set("Connection", "Upgrade");
    res.takeover = tunnel_to(std::stoi(q.Capture("port")));
  });
}

void ExpectEchoes(int fd, std::string* carry) {
  for (const std::string msg : {"ping 1\n", "ping 2 and more\n"}) {
    ASSERT_TRUE(SendAll(fd, msg));
    while (carry->size() < msg.size()) ASSERT_GT(RecvSome(fd, carry, 5000), 0);
    EXPECT_EQ(*carry, msg);
    carry->clear();
  }
}

TEST(HttpServer, ConnectTunnelsToATcpServer) {
  EchoServer echo;
  TestServer s({}, TunnelRoutes);
  s.Start();
  int fd = ConnectTcp(s.port);
  std::string target = "127.0.0.1:" + std::to_string(echo.port);
  ASSERT_TRUE(SendAll(fd, "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"));
  std::string carry;
  auto r = ReadReply(fd, &carry);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ExpectEchoes(fd, &carry);
  ::close(fd);
  auto refused = Fetch(ConnectTcp(s.port), "CONNECT", "10.0.0.1:22");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
}

TEST(HttpServer, UpgradeHandsTheConnectionToTheRoute) {
  EchoServer echo;
  TestServer s({}, TunnelRoutes);
  s.Start();
  int fd = ConnectTcp(s.port);
  // The first bytes of the tunnel ride in the same packet as the request.
  ASSERT_TRUE(SendAll(
      fd, "GET /tunnel/" + std::to_string(echo.port) +
              " HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: raw-tcp\r\n\r\nearly\n"));
  std::string carry;
  auto r = ReadReply(fd, &carry);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(r->headers["upgrade"], "raw-tcp");
  while (carry.size() < 6) ASSERT_GT(RecvSome(fd, &carry, 5000), 0);
  EXPECT_EQ(carry, "early\n");
  carry.clear();
  ExpectEchoes(fd, &carry);
  ::close(fd);
}

}  // namespace
}  // namespace berth::http
