#include "coordinator/fetch_call.h"

#include "coordinator/coordinator_service.h"
#include "coordinator/xxh3_inline.h"

namespace kervan {

namespace v1 = coordinator::v1;
using grpc::StatusCode;

namespace {
constexpr size_t kMessageBytes = 1 << 20;  // token data per streamed message
}  // namespace

void FetchCall::start(CoordinatorService& service, const CorpusCatalog& catalog,
                      grpc::ServerCompletionQueue* cq) {
  auto* call = new FetchCall(service, catalog, cq);
  service.RequestFetchTokens(&call->ctx_, &call->in_, &call->writer_, cq, cq, call);
}

void FetchCall::proceed(bool ok) {
  switch (state_) {
    case State::kWaiting: {
      if (!ok) return delete this;  // the server shuts down
      start(service_, catalog_, cq_);
      const grpc::Status s = check();
      if (!s.ok()) return finish(s);
      return write_next();
    }
    case State::kWriting:
      if (!ok) return finish(grpc::Status(StatusCode::CANCELLED, "the client went away"));
      return write_next();
    case State::kFinishing:
      delete this;
      return;
  }
}

grpc::Status FetchCall::check() {
  if (!parse_request(&in_, &req_))
    return grpc::Status(StatusCode::INVALID_ARGUMENT, "the request is not a valid FetchRequest");
  if (grpc::Status s = service_.check_header(req_.header()); !s.ok()) return s;
  split_ = catalog_.split(req_.corpus(), req_.split());
  if (!split_)
    return grpc::Status(StatusCode::INVALID_ARGUMENT,
                        fmt::format("fetch: no split '{}' in corpus {}", req_.split(), req_.corpus()));
  const v1::ManifestResponse& limits = catalog_.manifest();
  if (static_cast<uint32_t>(req_.ranges_size()) > limits.max_fetch_ranges())
    return grpc::Status(StatusCode::RESOURCE_EXHAUSTED,
                        fmt::format("fetch: {} ranges, at most {} per request", req_.ranges_size(),
                                    limits.max_fetch_ranges()));
  uint64_t total = 0;
  for (const v1::TokenRange& r : req_.ranges()) {
    if (r.shard() >= split_->shards.size())
      return grpc::Status(StatusCode::INVALID_ARGUMENT,
                          fmt::format("fetch: no shard {} in split '{}'", r.shard(), req_.split()));
    const TokenShard& shard = *split_->shards[r.shard()];
    const uint64_t size = shard.token_count() * shard.token_bytes();
    if (r.offset() > size || r.length() > size - r.offset())
      return grpc::Status(StatusCode::INVALID_ARGUMENT,
                          fmt::format("fetch: bytes [{}, +{}) are outside shard {} ({} token bytes)",
                                      r.offset(), r.length(), r.shard(), size));
    total += r.length();
  }
  if (total > limits.max_fetch_bytes())
    return grpc::Status(
        StatusCode::RESOURCE_EXHAUSTED,
        fmt::format("fetch: {} bytes asked for, at most {} per request", total, limits.max_fetch_bytes()));
  return grpc::Status::OK;
}

void FetchCall::write_next() {
  slices_.clear();
  size_t message_bytes = 0;
  const auto ranges = static_cast<size_t>(req_.ranges_size());
  const auto skip_done = [&] {  // past the ranges that are sent in full
    while (range_ < ranges && done_ == req_.ranges(static_cast<int>(range_)).length()) ++range_, done_ = 0;
  };
  skip_done();
  while (range_ < ranges && message_bytes < kMessageBytes) {
    const v1::TokenRange& r = req_.ranges(static_cast<int>(range_));
    const uint64_t offset = r.offset() + done_;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kMessageBytes - message_bytes, r.length() - done_));
    const char* data = static_cast<const char*>(split_->shards[r.shard()]->token_data()) + offset;
    add_piece(static_cast<uint32_t>(range_), offset, data, n);
    done_ += n;
    message_bytes += n;
    skip_done();
  }
  if (slices_.empty()) return finish(grpc::Status::OK);
  buffer_ = grpc::ByteBuffer(slices_.data(), slices_.size());
  if (range_ < ranges) {
    state_ = State::kWriting;
    writer_.Write(buffer_, this);
  } else {
    state_ = State::kFinishing;
    writer_.WriteAndFinish(buffer_, grpc::WriteOptions(), grpc::Status::OK, this);
  }
}

// TokenData.chunks (field 1) holding a TokenChunk in protobuf wire format: range (1), offset (2),
// checksum (4), then the data (3) as a slice of its own.
void FetchCall::add_piece(uint32_t range, uint64_t offset, const char* data, size_t n) {
  std::string chunk;
  const auto varint = [](std::string& s, uint64_t v) {
    while (v >= 0x80) s += static_cast<char>((v & 0x7f) | 0x80), v >>= 7;
    s += static_cast<char>(v);
  };
  chunk += static_cast<char>(1 << 3 | 0);
  varint(chunk, range);
  chunk += static_cast<char>(2 << 3 | 0);
  varint(chunk, offset);
  chunk += static_cast<char>(4 << 3 | 1);
  const uint64_t sum = XXH3_64bits(data, n);
  chunk.append(reinterpret_cast<const char*>(&sum), 8);  // fixed64, little-endian
  chunk += static_cast<char>(3 << 3 | 2);
  varint(chunk, n);
  std::string head(1, static_cast<char>(1 << 3 | 2));
  varint(head, chunk.size() + n);
  head += chunk;
  slices_.emplace_back(head.data(), head.size());  // copied into the slice
  slices_.emplace_back(data, n, grpc::Slice::STATIC_SLICE);
}

void FetchCall::finish(const grpc::Status& s) {
  state_ = State::kFinishing;
  writer_.Finish(s, this);
}

}  // namespace kervan
