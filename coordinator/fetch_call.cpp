#include "coordinator/fetch_call.h"

#include <cstring>

#include "coordinator/coordinator_service.h"
#include "core/xxh3_inline.h"

namespace kervan {

namespace v1 = coordinator::v1;
using grpc::StatusCode;

namespace {

constexpr size_t kMessageBytes = 1 << 20;  // token data per streamed message

// The protobuf wire format's pieces.
uint8_t* put_varint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) *p++ = static_cast<uint8_t>((v & 0x7f) | 0x80), v >>= 7;
  *p++ = static_cast<uint8_t>(v);
  return p;
}
// A TokenChunk's bytes before its data: range (1), offset (2), checksum (4), the data's tag and
// length (3); at most 1 + 5 + 1 + 10 + 1 + 8 + 1 + 10.
constexpr size_t kMaxChunkHead = 37;

// How far the prefetches run ahead of the checksums (about half the L2 cache of current x86).
constexpr uint64_t kPrefetchBytes = 256 << 10;

// Asks the memory for the pieces' bytes, cache line by cache line, up to a byte budget. A batch's
// windows lie at random places of a corpus much larger than the caches: hashed one after another,
// each window's first miss (and its page-table walk) waits for the one before. Asked for ahead,
// the misses overlap (`perf`: 35 -> 29 us of coordinator CPU per RPC of the bench's mix, about
// what the checksums cost when the bytes are cached).
class Prefetcher {
 public:
  explicit Prefetcher(const std::vector<FetchCall::Piece>& pieces) : pieces_(pieces) {}
  // Prefetches until `bytes` bytes have been asked for in all.
  void until(uint64_t bytes) {
    while (asked_ < bytes && piece_ < pieces_.size()) {
      const FetchCall::Piece& p = pieces_[piece_];
      const auto first = reinterpret_cast<uintptr_t>(p.data) & ~uintptr_t{63};
      const auto end = reinterpret_cast<uintptr_t>(p.data) + p.n;
      for (; first + line_ < end && asked_ < bytes; line_ += 64, asked_ += 64)
        __builtin_prefetch(reinterpret_cast<const char*>(first + line_));
      if (first + line_ >= end) ++piece_, line_ = 0;
    }
  }

 private:
  const std::vector<FetchCall::Piece>& pieces_;
  size_t piece_ = 0;
  uintptr_t line_ = 0;  // into pieces_[piece_], from its first cache line
  uint64_t asked_ = 0;
};

google::protobuf::ArenaOptions arena_options(char* block, size_t size) {
  google::protobuf::ArenaOptions o;
  o.initial_block = block;
  o.initial_block_size = size;
  return o;
}

}  // namespace

FetchCall::FetchCall(CoordinatorService& service, const CorpusCatalog& catalog,
                     grpc::ServerCompletionQueue* cq)
    : service_(service),
      catalog_(catalog),
      cq_(cq),
      arena_(arena_options(arena_block_, sizeof arena_block_)),
      req_(google::protobuf::Arena::CreateMessage<v1::FetchRequest>(&arena_)) {}

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
  if (!parse_request(&in_, req_))
    return grpc::Status(StatusCode::INVALID_ARGUMENT, "the request is not a valid FetchRequest");
  if (grpc::Status s = service_.check_header(req_->header()); !s.ok()) return s;
  split_ = catalog_.split(req_->corpus(), req_->split());
  if (!split_)
    return grpc::Status(StatusCode::INVALID_ARGUMENT,
                        fmt::format("fetch: no split '{}' in corpus {}", req_->split(), req_->corpus()));
  const v1::ManifestResponse& limits = catalog_.manifest();
  if (static_cast<uint32_t>(req_->ranges_size()) > limits.max_fetch_ranges())
    return grpc::Status(StatusCode::RESOURCE_EXHAUSTED,
                        fmt::format("fetch: {} ranges, at most {} per request", req_->ranges_size(),
                                    limits.max_fetch_ranges()));
  uint64_t total = 0;
  for (const v1::TokenRange& r : req_->ranges()) {
    if (r.shard() >= split_->shards.size())
      return grpc::Status(StatusCode::INVALID_ARGUMENT,
                          fmt::format("fetch: no shard {} in split '{}'", r.shard(), req_->split()));
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
  pieces_.clear();
  size_t message_bytes = 0;
  const auto ranges = static_cast<size_t>(req_->ranges_size());
  const auto skip_done = [&] {  // past the ranges that are sent in full
    while (range_ < ranges && done_ == req_->ranges(static_cast<int>(range_)).length()) ++range_, done_ = 0;
  };
  skip_done();
  while (range_ < ranges && message_bytes < kMessageBytes) {
    const v1::TokenRange& r = req_->ranges(static_cast<int>(range_));
    const uint64_t offset = r.offset() + done_;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kMessageBytes - message_bytes, r.length() - done_));
    const char* data = static_cast<const char*>(split_->shards[r.shard()]->token_data()) + offset;
    pieces_.push_back({static_cast<uint32_t>(range_), offset, data, n});
    done_ += n;
    message_bytes += n;
    skip_done();
  }
  if (pieces_.empty()) return finish(grpc::Status::OK);
  write_pieces();
  if (range_ < ranges) {
    state_ = State::kWriting;
    writer_.Write(buffer_, this);
  } else {
    state_ = State::kFinishing;
    writer_.WriteAndFinish(buffer_, grpc::WriteOptions(), grpc::Status::OK, this);
  }
}

// The message as TokenData in protobuf wire format: each piece a TokenChunk (field 1) whose head
// (its length, range, offset, checksum and the data's tag and length) goes into one buffer shared
// by the message's pieces, and whose data is a static slice of the mapped shard, not copied.
void FetchCall::write_pieces() {
  grpc::Slice heads(grpc_slice_malloc(pieces_.size() * (1 + 10 + kMaxChunkHead)), grpc::Slice::STEAL_REF);
  uint8_t* const base = const_cast<uint8_t*>(heads.begin());
  uint8_t* p = base;
  slices_.clear();
  Prefetcher prefetch(pieces_);
  uint64_t hashed = 0;
  for (const Piece& piece : pieces_) {
    prefetch.until(hashed + kPrefetchBytes);
    hashed += piece.n;
    uint8_t chunk[kMaxChunkHead];
    uint8_t* c = chunk;
    *c++ = 1 << 3 | 0;
    c = put_varint(c, piece.range);
    *c++ = 2 << 3 | 0;
    c = put_varint(c, piece.offset);
    *c++ = 4 << 3 | 1;
    const uint64_t sum = XXH3_64bits(piece.data, piece.n);
    std::memcpy(c, &sum, 8);  // fixed64, little-endian
    c += 8;
    *c++ = 3 << 3 | 2;
    c = put_varint(c, piece.n);
    const size_t chunk_head = static_cast<size_t>(c - chunk);
    uint8_t* const head = p;
    *p++ = 1 << 3 | 2;
    p = put_varint(p, chunk_head + piece.n);
    std::memcpy(p, chunk, chunk_head);
    p += chunk_head;
    slices_.push_back(heads.sub(static_cast<size_t>(head - base), static_cast<size_t>(p - base)));
    slices_.emplace_back(piece.data, piece.n, grpc::Slice::STATIC_SLICE);
  }
  buffer_ = grpc::ByteBuffer(slices_.data(), slices_.size());
}

void FetchCall::finish(const grpc::Status& s) {
  state_ = State::kFinishing;
  writer_.Finish(s, this);
}

}  // namespace kervan
