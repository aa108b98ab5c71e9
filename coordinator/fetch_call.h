#pragma once
#include <google/protobuf/arena.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/async_stream.h>
#include <grpcpp/support/byte_buffer.h>

#include <vector>

#include "coordinator/corpus_catalog.h"
#include "coordinator/rpc_calls.h"
#include "proto/coordinator.grpc.pb.h"

namespace kervan {

class CoordinatorService;

// One FetchTokens call: checks the request against the catalog and its limits, then streams its
// ranges from the catalog's memory maps as TokenData messages of up to 1 MiB: many small ranges
// (a batch's windows) share one message, a long range is cut into pieces. Each piece is written
// around the mapped bytes (a static slice: no copy into a protobuf string), with their XXH3-64.
// The last message goes out with the call's status in one operation. The request is parsed into
// an arena in the call's own memory, and a message's piece heads share one buffer, so a batch's
// fetch allocates a handful of times instead of about fifty.
class FetchCall final : public CallTag {
 public:
  // A piece of a range in the next message: `n` mapped bytes at `data`.
  struct Piece {
    uint32_t range;
    uint64_t offset;
    const char* data;
    size_t n;
  };

  static void start(CoordinatorService& service, const CorpusCatalog& catalog,
                    grpc::ServerCompletionQueue* cq);
  void proceed(bool ok) override;

 private:
  enum class State { kWaiting, kWriting, kFinishing };
  FetchCall(CoordinatorService& service, const CorpusCatalog& catalog, grpc::ServerCompletionQueue* cq);
  // The request's checks: a refusal's status, or OK with split_ set.
  grpc::Status check();
  // Writes the next message (the last one with the status), or the status alone.
  void write_next();
  // buffer_ = pieces_ as a TokenData message.
  void write_pieces();
  void finish(const grpc::Status& s);

  CoordinatorService& service_;
  const CorpusCatalog& catalog_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer in_;
  grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_{&ctx_};
  State state_ = State::kWaiting;
  // A batch's request (16 ranges, the header) fits the first block: no allocation to parse it.
  alignas(8) char arena_block_[2048];
  google::protobuf::Arena arena_;
  coordinator::v1::FetchRequest* req_;  // on arena_
  const CorpusCatalog::Split* split_ = nullptr;
  size_t range_ = 0;
  uint64_t done_ = 0;
  std::vector<Piece> pieces_;  // of the next message
  std::vector<grpc::Slice> slices_;
  grpc::ByteBuffer buffer_;
};

}  // namespace kervan
