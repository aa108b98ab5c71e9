#include "coordinator/remote_corpora.h"

#include <algorithm>

#include "core/error.h"
#include "datasets/format/corpus_manifest.h"

namespace kervan {

namespace v1 = coordinator::v1;

namespace {

// A served split's token stream, backed by the token cache: stream ranges become byte ranges of
// the shards, which the cache makes resident.
class RemoteTokenStore final : public TokenStore {
 public:
  RemoteTokenStore(std::shared_ptr<TokenCache> cache, int split, const v1::SplitInfo& info)
      : cache_(std::move(cache)), split_(split) {
    starts_.push_back(0);
    for (int i = 0; i < info.shards_size(); ++i) {
      const v1::ShardInfo& s = info.shards(i);
      spans_.push_back({cache_->data(split_, static_cast<uint32_t>(i)), s.token_bytes(), s.tokens()});
      starts_.push_back(starts_.back() + s.tokens());
    }
  }

  std::vector<TokenSpan> spans() const override { return spans_; }
  void require(std::span<const StreamRange> ranges) override { cache_->require(split_, byte_ranges(ranges)); }
  void prefetch(std::span<const StreamRange> ranges) override {
    cache_->prefetch(split_, byte_ranges(ranges));
  }

 private:
  std::vector<ByteRange> byte_ranges(std::span<const StreamRange> ranges) const {
    std::vector<ByteRange> out;
    for (const StreamRange& r : ranges) {
      uint64_t pos = r.first, end = r.first + r.count;
      size_t s = std::upper_bound(starts_.begin(), starts_.end(), pos) - starts_.begin() - 1;
      while (pos < end && s < spans_.size()) {
        const uint64_t take = std::min(end, starts_[s + 1]) - pos;
        if (take > 0) {
          const uint64_t b = spans_[s].token_bytes;
          out.push_back({static_cast<uint32_t>(s), (pos - starts_[s]) * b, (pos - starts_[s] + take) * b});
        }
        pos += take;
        ++s;
      }
    }
    return out;
  }

  std::shared_ptr<TokenCache> cache_;
  int split_;
  std::vector<TokenSpan> spans_;
  std::vector<uint64_t> starts_;
};

}  // namespace

RemoteCorpora::RemoteCorpora(std::shared_ptr<CoordinatorClient> client, TokenCache::Options cache)
    : client_(std::move(client)), manifest_(client_->manifest()) {
  cache_ = std::make_shared<TokenCache>(std::move(cache), client_, manifest_.max_fetch_bytes(),
                                        manifest_.max_fetch_ranges());
}

std::vector<std::string> RemoteCorpora::names() const {
  std::vector<std::string> out;
  for (const v1::CorpusInfo& c : manifest_.corpora()) out.push_back(c.name());
  return out;
}

std::unique_ptr<TokenSource> RemoteCorpora::open(const std::string& name, const std::string& split,
                                                 int64_t model_vocab) {
  const std::string label = "coordinator " + client_->address() + " corpus '" + name + "'";
  for (int c = 0; c < manifest_.corpora_size(); ++c) {
    const v1::CorpusInfo& corpus = manifest_.corpora(c);
    if (corpus.name() != name) continue;
    std::vector<std::string> splits;
    const v1::SplitInfo* info = nullptr;
    for (const v1::SplitInfo& s : corpus.splits()) {
      splits.push_back(s.name());
      if (s.name() == split) info = &s;
    }
    if (!info) throw UserError(label + ": the corpus has no '" + split + "' split");
    std::vector<std::string> files;
    std::vector<uint64_t> bytes;
    for (const v1::ShardInfo& s : info->shards()) {
      if (s.token_bytes() != 2 && s.token_bytes() != 4)
        throw UserError(label + ": shard " + s.file() + " has " + std::to_string(s.token_bytes()) +
                        "-byte tokens");
      files.push_back(s.file());
      bytes.push_back(s.tokens() * s.token_bytes());
    }
    const int id =
        cache_->add_split(static_cast<uint32_t>(c), split,
                          name + "-" + checksum_hex(corpus.fingerprint()) + "/" + split, files, bytes);
    const v1::TokenizerInfo& t = corpus.tokenizer();
    return std::make_unique<TokenSource>(
        label, split, TokenizerIdentity{t.name(), t.vocab_size(), t.eot_id(), t.sha256()}, splits,
        std::make_unique<RemoteTokenStore>(cache_, id, *info), model_vocab);
  }
  std::string served;
  for (const std::string& n : names()) served += (served.empty() ? "" : ", ") + n;
  throw UserError(label + ": no such corpus (served: " + served + ")");
}

}  // namespace kervan
