#pragma once
#include <fmt/format.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/async_unary_call.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include <functional>
#include <memory>

namespace kervan {

// The coordinator serves gRPC's asynchronous API: a few threads (CoordinatorServer) each take
// completed operations from a completion queue of their own and run them to the next operation,
// so an RPC is handled on the thread that polled its socket, without handing it to another
// thread (which, measured with `perf`, was most of what a callback-API coordinator spent).
//
// Every operation's tag is a CallTag; `ok` is gRPC's: false when the call or server is going away.
class CallTag {
 public:
  virtual ~CallTag() = default;
  virtual void proceed(bool ok) = 0;
};

// Parses a request from its raw bytes (the service parses requests itself, so a message that does
// not parse is INVALID_ARGUMENT rather than gRPC's INTERNAL).
template <class Msg>
bool parse_request(grpc::ByteBuffer* in, Msg* msg) {
  return grpc::SerializationTraits<Msg>::Deserialize(in, msg).ok();
}

// The answer to a unary call, finished exactly once: now, or later from another thread (the
// journal's, once a state change is on disk; the monitor's, for a rendezvous wait).
template <class Resp>
class Reply {
 public:
  Reply(grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder, CallTag* tag)
      : responder_(responder), tag_(tag) {}
  Resp response;

  void finish(const grpc::Status& s) {
    if (!s.ok()) return responder_->FinishWithError(s, tag_);
    grpc::ByteBuffer out;
    bool own = false;
    grpc::SerializationTraits<Resp>::Serialize(response, &out, &own);
    responder_->Finish(out, s, tag_);
  }
  // A response serialized ahead of time.
  void finish_raw(const grpc::ByteBuffer& out) { responder_->Finish(out, grpc::Status::OK, tag_); }

 private:
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder_;
  CallTag* tag_;
};

// One unary call of a method: waits for a request, answers it through `handle`, frees itself
// when the answer has gone out. Each matched call first puts a fresh one in its place, so the
// method keeps accepting calls on this queue. Every request's header is checked first
// (Service::check_header: token, protocol version, job).
template <class Service, class Req, class Resp>
class UnaryCall final : public CallTag {
 public:
  using Request = void (Service::*)(grpc::ServerContext*, grpc::ByteBuffer*,
                                    grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>*,
                                    grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  using Handle = std::function<void(const Req&, std::shared_ptr<Reply<Resp>>)>;

  static void start(Service& service, grpc::ServerCompletionQueue* cq, Request request, Handle handle) {
    auto* call = new UnaryCall(service, cq, request, std::move(handle));
    (service.*request)(&call->ctx_, &call->in_, &call->responder_, cq, cq, call);
  }

  void proceed(bool ok) override {
    if (answering_ || !ok) return delete this;  // the answer went out, or the server shuts down
    answering_ = true;
    start(service_, cq_, request_, handle_);
    auto reply = std::make_shared<Reply<Resp>>(&responder_, this);
    Req req;
    if (!parse_request(&in_, &req))
      return reply->finish(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       fmt::format("the request is not a valid {}", Req::descriptor()->name())));
    if (grpc::Status s = service_.check_header(req.header()); !s.ok()) return reply->finish(s);
    handle_(req, std::move(reply));
  }

 private:
  UnaryCall(Service& service, grpc::ServerCompletionQueue* cq, Request request, Handle handle)
      : service_(service), cq_(cq), request_(request), handle_(std::move(handle)) {}

  Service& service_;
  grpc::ServerCompletionQueue* cq_;
  Request request_;
  Handle handle_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer in_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_{&ctx_};
  bool answering_ = false;
};

}  // namespace kervan
