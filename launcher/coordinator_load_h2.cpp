// Simulated workers' calls as plain HTTP/2 requests from nghttp2, the library behind curl's and
// h2load's HTTP/2: the same gRPC calls on the wire as kervan's workers make (a connection per
// worker, the same paths, headers, deadlines and messages; every answer parsed and every piece
// checked against its XXH3-64), at a fraction of the client CPU of gRPC's C++ stack. A lane is
// one thread with one epoll set over its workers' sockets. Plaintext only: `--client grpc` for TLS.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "core/xxh3_inline.h"
#include "core/error.h"
#include "launcher/coordinator_load_lane.h"

namespace kervan::load {

namespace v1 = coordinator::v1;
using grpc::StatusCode;

namespace {

// A lane looks at its sockets this often rather than sleeping in epoll until one is readable. On
// loopback the kernel wakes a sleeping reader from inside the writer's send(): a coordinator
// answering workers that sleep in epoll pays for waking each of them (an interrupt between the
// VM's cores: 5 us of coordinator CPU per RPC of the bench's mix, and 4 us of the workers'),
// which remote workers' network cards take instead. Polling adds at most this to a latency.
constexpr auto kPollInterval = std::chrono::microseconds(100);

// A call: its request as a gRPC message (a 5-byte prefix, then the protobuf bytes) and what has
// come back.
struct Stream {
  int worker = 0;
  bool fetch = false;
  Clock::time_point due;
  int32_t id = 0;
  uint64_t asked = 0;  // a fetch's bytes
  std::string request;
  size_t sent = 0;
  std::string response;  // the DATA frames' bytes: gRPC messages
  int grpc_status = -1;  // from the trailers; -1 while none came
  bool http_ok = false;  // ":status: 200"
};

struct Connection {
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    nghttp2_session_del(session);  // (its calls' Streams are gone by then: see break_connection)
    if (fd >= 0) ::close(fd);
  }

  int fd = -1;
  nghttp2_session* session = nullptr;
  std::string out;             // bytes nghttp2 produced that the socket has not taken yet
  bool writable_wait = false;  // EPOLLOUT asked for
  bool dirty = false;          // in H2Lane::dirty_
  bool broken = false;
  std::array<Stream*, 2> calls{};  // in flight: the heartbeat, the fetch
};

class H2Lane final : public Lane {
 public:
  H2Lane(Sim& s, int index, int lanes);

 protected:
  void start_call(int w, bool fetch, Clock::time_point due_at) override;
  void wait(Clock::time_point until) override;

 private:
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user);
  static int on_data(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                     void* user);
  static int on_close(nghttp2_session* session, int32_t stream_id, uint32_t error_code, void* user);
  static ssize_t read_request(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                              nghttp2_data_source* source, void*);

  void connect(int w);
  // Hands nghttp2's pending frames to the socket (what it does not take waits for EPOLLOUT).
  void flush(Connection& c);
  // The socket failed or closed, or the calls' deadline passed: its calls end with `code`.
  void break_connection(Connection& c, StatusCode code);
  // A call's status once its stream has closed; checks a fetch's pieces.
  StatusCode finish(const Stream& s, uint32_t error_code);
  void end_call(Connection& c, Stream* s, StatusCode code);
  // After each nghttp2 call on `c`: ends the calls whose streams it closed (answers, refusals
  // after a GOAWAY), and the connection once its session wants nothing more.
  void after_nghttp2(Connection& c);
  void read_from(Connection& c);

  struct EpollFd {
    int fd = -1;
    ~EpollFd() {
      if (fd >= 0) ::close(fd);
    }
  } epoll_;
  std::unique_ptr<nghttp2_session_callbacks, decltype(&nghttp2_session_callbacks_del)> callbacks_{
      nullptr, nghttp2_session_callbacks_del};
  std::vector<std::unique_ptr<Connection>> connections_;  // per worker; null for other lanes' workers
  // Streams that nghttp2 closed inside its last call (mem_recv or mem_send) on one connection:
  // recorded once it returns (record() may start the worker's next call, which must not happen
  // inside nghttp2's callbacks).
  std::vector<std::pair<Stream*, uint32_t>> closed_;
  std::vector<Connection*> dirty_;  // connections with frames to send
  // Calls of workers whose connection broke: recorded UNAVAILABLE by the next wait(), not at
  // once (a closed loop would start the next one from record(), and so on).
  std::vector<std::tuple<int, bool, Clock::time_point>> failed_;
  std::string authority_;
  v1::TokenData message_;  // every fetched message of the lane is parsed into this one
  v1::HeartbeatResponse heartbeat_response_;
  std::vector<char> read_buffer_ = std::vector<char>(256 << 10);
};

// "HOST:PORT", "[V6]:PORT".
std::pair<std::string, std::string> split_address(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size())
    throw UserError("bench coordinator: '" + address + "' is not HOST:PORT");
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, address.substr(colon + 1)};
}

H2Lane::H2Lane(Sim& s, int index, int lanes) : Lane(s), authority_(s.opt.address) {
  if (std::getenv("KERVAN_TLS_CA"))
    throw UserError(
        "bench coordinator: --client h2 speaks plaintext HTTP/2; with TLS (KERVAN_TLS_CA) use "
        "--client grpc");
  epoll_.fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_.fd < 0) throw EnvironmentError("epoll_create1", "bench coordinator", std::strerror(errno));
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) throw std::bad_alloc();
  callbacks_.reset(callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_close);
  connections_.resize(static_cast<size_t>(s.opt.workers));
  for (int w = index; w < s.opt.workers; w += lanes) connect(w);
}

void H2Lane::connect(int w) {
  const auto [host, port] = split_address(sim.opt.address);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int err = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); err != 0)
    throw EnvironmentError("getaddrinfo", sim.opt.address, gai_strerror(err));
  auto c = std::make_unique<Connection>();
  int error = 0;
  for (const addrinfo* a = found; a && c->fd < 0; a = a->ai_next) {
    c->fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd >= 0 && ::connect(c->fd, a->ai_addr, a->ai_addrlen) != 0)
      error = errno, ::close(c->fd), c->fd = -1;
  }
  ::freeaddrinfo(found);
  if (c->fd < 0)
    throw EnvironmentError("connect", "the coordinator at " + sim.opt.address, std::strerror(error));
  const int one = 1;
  ::setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as gRPC sets it
  if (nghttp2_session_client_new(&c->session, callbacks_.get(), this) != 0) throw std::bad_alloc();
  // Windows large enough that a 1 MiB message never waits for a WINDOW_UPDATE.
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                             {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 8 << 20}};
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 64 << 20);
  Connection& conn = *c;
  connections_[static_cast<size_t>(w)] = std::move(c);
  flush(conn);  // the preface and settings, while the socket still blocks
  if (conn.broken)
    throw EnvironmentError("connect", "the coordinator at " + sim.opt.address,
                           "it closed the connection at once");
  if (::fcntl(conn.fd, F_SETFL, ::fcntl(conn.fd, F_GETFL) | O_NONBLOCK) != 0)
    throw EnvironmentError("fcntl(O_NONBLOCK)", "bench coordinator", std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &conn;
  if (::epoll_ctl(epoll_.fd, EPOLL_CTL_ADD, conn.fd, &ev) != 0)
    throw EnvironmentError("epoll_ctl", "bench coordinator", std::strerror(errno));
}

void H2Lane::start_call(int w, bool fetch, Clock::time_point due_at) {
  Connection& c = *connections_[static_cast<size_t>(w)];
  if (c.broken) return failed_.push_back({w, fetch, due_at});
  auto s = std::make_unique<Stream>();
  s->worker = w;
  s->fetch = fetch;
  s->due = due_at;
  const google::protobuf::MessageLite* req = &heartbeat_request(w);
  if (fetch) {
    const v1::FetchRequest& f = fetch_request(w);
    for (const v1::TokenRange& r : f.ranges()) s->asked += r.length();
    req = &f;
  }
  const size_t n = req->ByteSizeLong();
  s->request.resize(5 + n);
  s->request[0] = 0;  // not compressed
  for (int i = 0; i < 4; ++i) s->request[1 + i] = static_cast<char>((n >> (24 - 8 * i)) & 0xff);
  req->SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(s->request.data() + 5));

  const auto nv = [](const char* name, const std::string_view value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), std::strlen(name),
                      value.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
  };
  const nghttp2_nv headers[] = {
      nv(":method", "POST"),
      nv(":scheme", "http"),
      nv(":path", fetch ? "/kervan.coordinator.v1.Coordinator/FetchTokens"
                        : "/kervan.coordinator.v1.Coordinator/Heartbeat"),
      nv(":authority", authority_),
      nv("te", "trailers"),
      nv("content-type", "application/grpc"),
      nv("grpc-timeout", "30S"),  // kCallDeadline, as a worker's CoordinatorClient sets
      nv("user-agent", "kervan-bench-h2"),
  };
  nghttp2_data_provider body{};
  body.source.ptr = s.get();
  body.read_callback = read_request;
  s->id = nghttp2_submit_request(c.session, nullptr, headers, std::size(headers), &body, s.get());
  if (s->id < 0) return failed_.push_back({w, fetch, due_at});
  c.calls[fetch] = s.release();  // until its stream closes
  if (!c.dirty) c.dirty = true, dirty_.push_back(&c);
}

ssize_t H2Lane::read_request(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                             nghttp2_data_source* source, void*) {
  auto* s = static_cast<Stream*>(source->ptr);
  const size_t n = std::min(length, s->request.size() - s->sent);
  std::memcpy(buf, s->request.data() + s->sent, n);
  s->sent += n;
  if (s->sent == s->request.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

int H2Lane::on_header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void*) {
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!s) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") s->http_ok = v == "200";
  if (n == "grpc-status") s->grpc_status = std::atoi(std::string(v).c_str());
  return 0;
}

int H2Lane::on_data(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                    void*) {
  if (auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id)))
    s->response.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int H2Lane::on_close(nghttp2_session* session, int32_t stream_id, uint32_t error_code, void* user) {
  if (auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id)))
    static_cast<H2Lane*>(user)->closed_.emplace_back(s, error_code);
  return 0;
}

StatusCode H2Lane::finish(const Stream& s, uint32_t error_code) {
  if (error_code != NGHTTP2_NO_ERROR || !s.http_ok || s.grpc_status < 0) return StatusCode::UNAVAILABLE;
  if (s.grpc_status != 0) return static_cast<StatusCode>(s.grpc_status);
  uint64_t left = s.asked;  // bytes asked for and not yet received
  const auto* p = reinterpret_cast<const uint8_t*>(s.response.data());
  const uint8_t* const end = p + s.response.size();
  int messages = 0;
  while (end - p >= 5) {
    const uint32_t n = uint32_t{p[1]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 8 | p[4];
    if (p[0] != 0 || n > static_cast<size_t>(end - p - 5)) return StatusCode::INTERNAL;  // compressed or cut
    p += 5;
    messages++;
    if (!s.fetch) {
      if (!heartbeat_response_.ParseFromArray(p, static_cast<int>(n))) return StatusCode::INTERNAL;
    } else {
      if (!message_.ParseFromArray(p, static_cast<int>(n))) return StatusCode::INTERNAL;
      // As a worker's CoordinatorClient::fetch does: every piece against its XXH3-64.
      for (const v1::TokenChunk& piece : message_.chunks()) {
        if (XXH3_64bits(piece.data().data(), piece.data().size()) != piece.checksum())
          return StatusCode::DATA_LOSS;
        left -= std::min<uint64_t>(left, piece.data().size());
      }
    }
    p += n;
  }
  if (p != end || (s.fetch ? left > 0 : messages != 1)) return StatusCode::DATA_LOSS;
  return StatusCode::OK;
}

void H2Lane::end_call(Connection& c, Stream* s, StatusCode code) {
  c.calls[s->fetch] = nullptr;
  const int w = s->worker;
  const bool fetch = s->fetch;
  const Clock::time_point due_at = s->due;
  delete s;
  record(w, fetch, due_at, code);  // may start the worker's next call
}

void H2Lane::break_connection(Connection& c, StatusCode code) {
  c.broken = true;
  for (Stream* s : c.calls)
    if (s) {
      nghttp2_session_set_stream_user_data(c.session, s->id, nullptr);
      end_call(c, s, code);
    }
  if (c.fd >= 0) ::epoll_ctl(epoll_.fd, EPOLL_CTL_DEL, c.fd, nullptr);
}

void H2Lane::flush(Connection& c) {
  if (c.broken) return;
  for (;;) {  // everything nghttp2 has, in one buffer: one send for a call's frames
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(c.session, &data);
    if (n <= 0) {
      after_nghttp2(c);
      if (n < 0 && !c.broken) break_connection(c, StatusCode::INTERNAL);
      if (c.broken) return;
      break;
    }
    c.out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  size_t done = 0;
  while (done < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + done, c.out.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return break_connection(c, StatusCode::UNAVAILABLE);
  }
  c.out.erase(0, done);
  if (const bool want = !c.out.empty(); want != c.writable_wait) {
    c.writable_wait = want;
    epoll_event ev{};
    ev.events = want ? EPOLLIN | EPOLLOUT : EPOLLIN;
    ev.data.ptr = &c;
    ::epoll_ctl(epoll_.fd, EPOLL_CTL_MOD, c.fd, &ev);
  }
}

void H2Lane::read_from(Connection& c) {
  const ssize_t n = ::recv(c.fd, read_buffer_.data(), read_buffer_.size(), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) return break_connection(c, StatusCode::UNAVAILABLE);
  const ssize_t read = nghttp2_session_mem_recv(
      c.session, reinterpret_cast<const uint8_t*>(read_buffer_.data()), static_cast<size_t>(n));
  after_nghttp2(c);
  if (read < 0 && !c.broken) break_connection(c, StatusCode::INTERNAL);
  flush(c);  // WINDOW_UPDATEs, the SETTINGS ack, the next calls of this worker
}

void H2Lane::after_nghttp2(Connection& c) {
  for (const auto& [s, error_code] : std::exchange(closed_, {})) end_call(c, s, finish(*s, error_code));
  if (!c.broken && !nghttp2_session_want_read(c.session) && !nghttp2_session_want_write(c.session))
    break_connection(c, StatusCode::UNAVAILABLE);
}

void H2Lane::wait(Clock::time_point until) {
  for (const auto& [w, fetch, due_at] : std::exchange(failed_, {}))
    record(w, fetch, due_at, StatusCode::UNAVAILABLE);
  for (Connection* c : std::exchange(dirty_, {})) {  // (a flush may start calls: a new list)
    c->dirty = false;
    flush(*c);
  }
  const Clock::time_point now = Clock::now();
  // After the timed window the lane waits only for answers, up to the calls' deadline.
  const Clock::time_point give_up = sim.end + kCallDeadline;
  if (until == Clock::time_point::max() && now >= give_up) {
    for (auto& c : connections_)
      if (c && !c->broken) break_connection(*c, StatusCode::DEADLINE_EXCEEDED);
    return;
  }
  epoll_event events[64];
  const timespec now_only{0, 0};
  const int n = ::epoll_pwait2(epoll_.fd, events, 64, &now_only, nullptr);
  if (n < 0 && errno != EINTR)
    throw EnvironmentError("epoll_pwait2", "bench coordinator", std::strerror(errno));
  if (n <= 0) {  // nothing yet: a nap, off the sockets' wait queues (see kPollInterval)
    const auto nap = std::max<Clock::duration>(
        Clock::duration::zero(), std::min<Clock::duration>(kPollInterval, std::min(until, give_up) - now));
    const timespec t{0, static_cast<long>(std::chrono::nanoseconds(nap).count())};
    ::nanosleep(&t, nullptr);
    return;
  }
  for (int i = 0; i < n; ++i) {
    auto& c = *static_cast<Connection*>(events[i].data.ptr);
    if (c.broken) continue;
    if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
      read_from(c);
    else if (events[i].events & EPOLLOUT)
      flush(c);
  }
}

}  // namespace

std::unique_ptr<Lane> make_h2_lane(Sim& sim, int index, int lanes) {
  return std::make_unique<H2Lane>(sim, index, lanes);
}

}  // namespace kervan::load
