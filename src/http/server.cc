#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "http/server_io.h"

namespace berth::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using Proto = net::generic::stream_protocol;
using Strand = net::strand<net::io_context::executor_type>;
using Socket = net::basic_stream_socket<Proto, Strand>;
using Acceptor = net::basic_socket_acceptor<Proto, Strand>;
using NativeRequest = bhttp::request<bhttp::string_body>;

namespace {

std::string Reason(int status) {
  return std::string(bhttp::obsolete_reason(bhttp::int_to_status(status)));
}

// "HTTP/1.1 STATUS REASON", the headers, and Content-Length or chunked.
std::string Head(const Response& res, std::optional<size_t> length, bool chunked, bool close) {
  std::string h = "HTTP/1.1 " + std::to_string(res.status) + " " + Reason(res.status) + "\r\n";
  for (const auto& [k, v] : res.headers.all()) h += k + ": " + v + "\r\n";
  if (length) h += "Content-Length: " + std::to_string(*length) + "\r\n";
  if (chunked) h += "Transfer-Encoding: chunked\r\n";
  if (close) h += "Connection: close\r\n";
  return h + "\r\n";
}

Peer PeerOf(int fd, Peer::Kind kind, const std::string& unix_path) {
  Peer p;
  p.kind = kind;
  if (kind == Peer::Kind::kUnix) {
    p.address = unix_path;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      p.has_credentials = true;
      p.uid = cred.uid;
      p.gid = cred.gid;
      p.pid = cred.pid;
    }
    return p;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
  char text[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    p.address = std::string(text) + ":" + std::to_string(ntohs(a->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    p.address = "[" + std::string(text) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return p;
}

// Splits the request target into the decoded path and query parameters.
bool ParseTarget(std::string_view target, Request* r) {
  size_t q = target.find('?');
  if (!PercentDecode(target.substr(0, q), &r->path, false)) return false;
  if (q == std::string_view::npos) return true;
  std::string_view rest = target.substr(q + 1);
  size_t hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    std::string k, v;
    if (!PercentDecode(kv.substr(0, eq), &k, true)) return false;
    if (eq != std::string_view::npos && !PercentDecode(kv.substr(eq + 1), &v, true)) return false;
    r->query.emplace_back(std::move(k), std::move(v));
  }
  return true;
}

}  // namespace

struct Conn;

struct Server::Impl {
  Impl(ServerOptions o, ServerHandler h) : opt(std::move(o)), handler(std::move(h)) {}

  ServerOptions opt;
  ServerHandler handler;
  std::atomic<bool> stopping{false};
  bool started = false, stopped = false;
  std::mutex mu;  // conns, streams
  std::condition_variable streams_cv;
  std::set<Conn*> conns;
  int streams = 0;
  struct Listener {
    std::unique_ptr<Acceptor> acceptor;
    Peer::Kind kind;
    std::string path;  // Unix
    dev_t dev = 0;
    ino_t ino = 0;
  };
  // Declared after what connections touch when they are destroyed: the
  // io_context destroys pending handlers (and their connections) first.
  net::io_context ioc;
  std::vector<Listener> listeners;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard;
  std::unique_ptr<net::thread_pool> workers;
  std::vector<std::thread> io_threads;

  void Accept(Listener& l);
  void OnAccept(Socket s, const Listener& l);
  bool TakeStreamSlot() {
    std::lock_guard<std::mutex> g(mu);
    if (streams >= opt.max_streams) return false;
    ++streams;
    return true;
  }
  void ReleaseStreamSlot() {
    std::lock_guard<std::mutex> g(mu);
    --streams;
    streams_cv.notify_all();
  }
};

// One client connection. Async reads and writes run on its strand; a
// long-lived response moves it to a stream thread, which uses the socket
// alone (no async operation is pending meanwhile) and hands it back.
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(Server::Impl* s, Socket sock, Peer p)
      : srv(s), sock(std::move(sock)), timer(this->sock.get_executor()), peer(std::move(p)) {
    fd = this->sock.native_handle();
    std::lock_guard<std::mutex> g(srv->mu);
    srv->conns.insert(this);
  }
  ~Conn() {
    std::lock_guard<std::mutex> g(srv->mu);
    srv->conns.erase(this);
  }

  Server::Impl* srv;
  Socket sock;
  net::steady_timer timer;
  uint64_t timer_gen = 0;
  bool timed_out = false;
  Peer peer;
  int fd = -1;
  beast::flat_buffer buf;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser;
  NativeRequest native;    // the head of the request being served (WebSocket handshakes)
  std::string head, body;  // the reply being written
  bool close_after = false;

  void Arm(int ms) {
    uint64_t gen = ++timer_gen;
    timed_out = false;
    timer.expires_after(std::chrono::milliseconds(ms));
    timer.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (ec || gen != self->timer_gen) return;
      self->timed_out = true;
      beast::error_code ig;
      self->sock.cancel(ig);
    });
  }
  void Disarm() {
    ++timer_gen;
    timer.cancel();
  }

  void ReadNext() {
    if (srv->stopping) return Close();
    parser.emplace();
    parser->header_limit(static_cast<uint32_t>(srv->opt.max_header_bytes));
    parser->body_limit(srv->opt.max_body_bytes);
    Arm(srv->opt.read_timeout_ms);
    bhttp::async_read_header(sock, buf, *parser,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->OnReadError(ec);
                               self->OnHeader();
                             });
  }

  void OnHeader() {
    const auto& h = parser->get();
    auto expect = h.find(bhttp::field::expect);
    if (expect != h.end() &&
        EqualsIgnoreCase(std::string_view(expect->value().data(), expect->value().size()),
                         "100-continue") &&
        !parser->is_done()) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(sock, net::buffer(kContinue),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser->is_done()) return OnRequest();
    bhttp::async_read(sock, buf, *parser,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->OnRequest();
                      });
  }

  void OnReadError(beast::error_code ec) {
    bool got_some = parser && parser->got_some();
    Disarm();
    if (ec == bhttp::error::body_limit)
      return ReplyErrorAndClose(413, "invalid_argument",
                                "request body is larger than " + Size(srv->opt.max_body_bytes));
    if (ec == bhttp::error::header_limit)
      return ReplyErrorAndClose(
          431, "invalid_argument",
          "request header fields are larger than " + Size(srv->opt.max_header_bytes));
    if (timed_out) {
      if (got_some)
        return ReplyErrorAndClose(408, "invalid_argument", "the request did not arrive in time");
      return Close();
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
      return ReplyErrorAndClose(400, "invalid_argument", "malformed HTTP request: " + ec.message());
    Close();
  }

  static std::string Size(size_t n) {
    if (n % (1u << 20) == 0) return std::to_string(n >> 20) + " MiB";
    if (n % (1u << 10) == 0) return std::to_string(n >> 10) + " KiB";
    return std::to_string(n) + " bytes";
  }

  void OnRequest() {
    Disarm();
    native = parser->release();
    auto req = std::make_shared<Request>();
    req->method = std::string(native.method_string());
    req->target = std::string(native.target());
    if (!ParseTarget(req->target, req.get()))
      return ReplyErrorAndClose(400, "invalid_argument",
                                "malformed request target (a bad %-escape)");
    for (const auto& f : native)
      req->headers.Add(std::string(f.name_string()), std::string(f.value()));
    req->body = std::move(native.body());
    req->peer = peer;
    bool keep_alive = native.keep_alive();
    net::post(*srv->workers,
              [self = shared_from_this(), req, keep_alive] { self->Serve(*req, keep_alive); });
  }

  // On a worker thread.
  void Serve(Request& req, bool keep_alive) {
    Response res;
    try {
      srv->handler(req, res);
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", req.method, req.path, e.what());
      res = Response();
      SetError(res, 500, "internal", e.what());
    } catch (...) {
      spdlog::error("{} {}: unknown exception", req.method, req.path);
      res = Response();
      SetError(res, 500, "internal", "unknown exception");
    }
    if (res.long_lived()) return StartLongLived(std::move(res), keep_alive);
    bool close = !keep_alive || srv->stopping;
    std::string h = Head(res,
                         res.status >= 200 && res.status != 204 && res.status != 304
                             ? std::optional<size_t>(res.body.size())
                             : std::nullopt,
                         false, close);
    bool head_only = req.method == "HEAD";
    net::post(sock.get_executor(),
              [self = shared_from_this(), h = std::move(h),
               b = head_only ? std::string() : std::move(res.body),
               close]() mutable { self->Write(std::move(h), std::move(b), close); });
  }

  void Write(std::string h, std::string b, bool close) {
    head = std::move(h);
    body = std::move(b);
    close_after = close;
    std::array<net::const_buffer, 2> bufs = {net::buffer(head), net::buffer(body)};
    Arm(srv->opt.write_timeout_ms);
    net::async_write(sock, bufs, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->Disarm();
      if (ec) return self->Close();
      if (self->close_after) return self->Linger();
      self->ReadNext();
    });
  }

  void ReplyErrorAndClose(int status, const std::string& code, const std::string& message) {
    Response res;
    SetError(res, status, code, message);
    std::string h = Head(res, res.body.size(), false, true);
    Write(std::move(h), std::move(res.body), true);
  }

  // Closes after the reply: stop sending, then read and drop what the
  // client still sends (a body we refused) for a while, so that it reads
  // the reply instead of a reset.
  void Linger() {
    beast::error_code ig;
    sock.shutdown(net::socket_base::shutdown_send, ig);
    Arm(2000);
    DrainSome(0);
  }
  void DrainSome(size_t drained) {
    if (drained > 4 * srv->opt.max_body_bytes) return Close();
    auto scratch = std::make_shared<std::array<char, 65536>>();
    sock.async_read_some(net::buffer(*scratch), [self = shared_from_this(), scratch, drained](
                                                    beast::error_code ec, size_t n) {
      if (ec) return self->Close();
      self->DrainSome(drained + n);
    });
  }

  void Close() {
    Disarm();
    {
      std::lock_guard<std::mutex> g(srv->mu);
      fd = -1;
    }
    beast::error_code ig;
    sock.shutdown(net::socket_base::shutdown_both, ig);
    sock.close(ig);
  }

  void StartLongLived(Response res, bool keep_alive);
  void RunLongLived(Response& res, bool keep_alive);
};

void Conn::StartLongLived(Response res, bool keep_alive) {
  if (!srv->TakeStreamSlot()) {
    spdlog::warn("refused a stream: {} are open (the limit)", srv->opt.max_streams);
    net::post(sock.get_executor(), [self = shared_from_this()] {
      self->ReplyErrorAndClose(503, "unavailable", "too many open streams; try again later");
    });
    return;
  }
  auto self = shared_from_this();
  std::thread([self, res = std::move(res), keep_alive]() mutable {
    Server::Impl* srv = self->srv;
    self->RunLongLived(res, keep_alive);
    self.reset();
    srv->ReleaseStreamSlot();
  }).detach();
}

void Conn::RunLongLived(Response& res, bool keep_alive) {
  RawIo io(fd, &srv->stopping, srv->opt.write_timeout_ms);
  bool reuse = false;
  if (res.stream) {
    res.headers.Set("Content-Type", res.headers.Get("Content-Type", "text/event-stream"));
    bool close = !keep_alive;
    if (io.Write(Head(res, std::nullopt, true, close))) {
      ChunkWriter w(&io);
      res.stream(w);
      reuse = w.ok() && io.Write("0\r\n\r\n") && !close && !srv->stopping;
    }
  } else if (res.takeover) {
    if (res.status == 200 && native.method() != bhttp::verb::connect) res.status = 101;
    if (io.Write(Head(res, std::nullopt, false, false))) {
      std::string early(static_cast<const char*>(buf.data().data()), buf.size());
      buf.consume(buf.size());
      RawTunnel t(&io, std::move(early));
      res.takeover(t);
    }
  } else if (res.websocket) {
    RunWebSocket(std::move(sock), native, res.websocket, &srv->stopping);
    std::lock_guard<std::mutex> g(srv->mu);
    fd = -1;  // closed with the WebSocket
    return;
  }
  if (reuse) {
    net::post(sock.get_executor(), [self = shared_from_this()] { self->ReadNext(); });
  } else if (sock.is_open()) {
    net::post(sock.get_executor(), [self = shared_from_this()] { self->Close(); });
  }
}

Server::Server(ServerOptions options, ServerHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() { Stop(); }

bool Server::stopping() const { return impl_->stopping; }

Result<int> Server::ListenTcp(const std::string& host, int port) {
  std::string where = host + ":" + std::to_string(port);
  beast::error_code ec;
  net::ip::address addr = net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) {
    net::ip::tcp::resolver resolver(impl_->ioc);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty())
      return IoError("cannot listen on " + where + ": cannot resolve " + host + ": " +
                     ec.message());
    addr = results.begin()->endpoint().address();
  }
  Proto::endpoint ep{net::ip::tcp::endpoint(addr, static_cast<unsigned short>(port))};
  auto a = std::make_unique<Acceptor>(net::make_strand(impl_->ioc));
  a->open(ep.protocol(), ec);
  if (!ec) ::fcntl(a->native_handle(), F_SETFD, FD_CLOEXEC);  // Asio does not set it
  // SO_REUSEADDR (restart over TIME_WAIT connections) but not SO_REUSEPORT,
  // with which a second daemon would bind the same port: a port in use fails.
  if (!ec) a->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a->bind(ep, ec);
  if (!ec) a->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::string why = ec.message();
    if (ec == net::error::address_in_use)
      why += " (another process listens on port " + std::to_string(port) + ")";
    return IoError("cannot listen on " + where + ": " + why);
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(a->native_handle(), reinterpret_cast<sockaddr*>(&ss), &len);
  int bound = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  impl_->listeners.push_back({std::move(a), Peer::Kind::kTcp, "", 0, 0});
  return bound;
}

Status Server::ListenUnix(const std::string& path, mode_t mode) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path))
    return InvalidArgument("unix socket " + path + ": the path must be 1 to " +
                           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return FailedPrecondition("unix socket " + path + ": the path exists and is not a socket");
    if (SocketAnswers(path))
      return FailedPrecondition("unix socket " + path + ": another process listens on it");
    ::unlink(path.c_str());  // left by a process that is gone
  }
  beast::error_code ec;
  Proto::endpoint ep{net::local::stream_protocol::endpoint(path)};
  auto a = std::make_unique<Acceptor>(net::make_strand(impl_->ioc));
  a->open(ep.protocol(), ec);
  if (!ec) ::fcntl(a->native_handle(), F_SETFD, FD_CLOEXEC);  // Asio does not set it
  if (!ec) a->bind(ep, ec);
  if (!ec && ::chmod(path.c_str(), mode) != 0) ec.assign(errno, beast::system_category());
  if (!ec) a->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return IoError("cannot listen on unix socket " + path + ": " + ec.message());
  ::lstat(path.c_str(), &st);
  impl_->listeners.push_back({std::move(a), Peer::Kind::kUnix, path, st.st_dev, st.st_ino});
  return Status::Ok();
}

void Server::Impl::Accept(Listener& l) {
  l.acceptor->async_accept(net::make_strand(ioc), [this, &l](beast::error_code ec, Socket s) {
    if (stopping || ec == net::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: try again shortly rather
      // than spin or stop listening; say so at most once a second.
      static std::atomic<int64_t> last_warned{0};
      int64_t now = MonotonicNanos() / 1'000'000'000;
      if (last_warned.exchange(now) != now) spdlog::warn("accept failed: {}", ec.message());
      auto t = std::make_shared<net::steady_timer>(ioc, std::chrono::milliseconds(50));
      t->async_wait([this, &l, t](beast::error_code) {
        if (!stopping) Accept(l);
      });
      return;
    }
    OnAccept(std::move(s), l);
    Accept(l);
  });
}

void Server::Impl::OnAccept(Socket s, const Listener& l) {
  size_t open;
  {
    std::lock_guard<std::mutex> g(mu);
    open = conns.size();
  }
  int fd = s.native_handle();
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // no child of berthd keeps a connection open
  if (open >= static_cast<size_t>(opt.max_connections) || stopping) {
    static const std::string kBusy = [] {
      std::string b = ErrorBody("unavailable", "too many open connections; try again later");
      return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
             "application/json\r\nContent-Length: " +
             std::to_string(b.size()) + "\r\nConnection: close\r\n\r\n" + b;
    }();
    (void)!::send(fd, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    beast::error_code ig;
    s.close(ig);
    return;
  }
  if (l.kind == Peer::Kind::kTcp) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  auto c = std::make_shared<Conn>(this, std::move(s), PeerOf(fd, l.kind, l.path));
  net::dispatch(c->sock.get_executor(), [c] { c->ReadNext(); });
}

Status Server::Start() {
  Impl& m = *impl_;
  if (m.started) return FailedPrecondition("http server: already started");
  if (m.listeners.empty()) return FailedPrecondition("http server: nothing to listen on");
  m.started = true;
  m.guard.emplace(m.ioc.get_executor());
  m.workers = std::make_unique<net::thread_pool>(std::max(1, m.opt.workers));
  for (auto& l : m.listeners) m.Accept(l);
  for (int i = 0; i < std::max(1, m.opt.io_threads); ++i)
    m.io_threads.emplace_back([&m] { m.ioc.run(); });
  return Status::Ok();
}

void Server::Stop() {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  m.stopped = true;
  m.stopping = true;
  for (auto& l : m.listeners) {
    Acceptor* a = l.acceptor.get();
    net::post(a->get_executor(), [a] {
      beast::error_code ig;
      a->close(ig);
    });
  }
  auto shut_all = [&m] {
    std::lock_guard<std::mutex> g(m.mu);
    for (Conn* c : m.conns)
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
  };
  shut_all();
  {
    std::unique_lock<std::mutex> g(m.mu);
    while (m.streams > 0) {
      // A stream may have started after the first shutdown: end it too.
      for (Conn* c : m.conns)
        if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
      m.streams_cv.wait_for(g, std::chrono::milliseconds(100));
    }
  }
  m.workers->join();
  shut_all();
  m.guard.reset();
  m.ioc.stop();
  for (auto& t : m.io_threads) t.join();
  for (auto& l : m.listeners) {
    struct stat st {};
    if (l.kind == Peer::Kind::kUnix && ::lstat(l.path.c_str(), &st) == 0 && st.st_dev == l.dev &&
        st.st_ino == l.ino)
      ::unlink(l.path.c_str());
  }
}

}  // namespace berth::http
