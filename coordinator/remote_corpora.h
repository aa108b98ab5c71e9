#pragma once
#include <memory>
#include <string>
#include <vector>

#include "coordinator/coordinator_client.h"
#include "coordinator/token_cache.h"
#include "datasets/loader/token_source.h"

namespace kervan {

// The corpora a coordinator serves, as the loader's token sources: each split's tokens are
// fetched into one TokenCache as the loader asks for them. The manifest is fetched once; the
// coordinator verified every shard, so the worker reads none of them itself.
class RemoteCorpora {
 public:
  RemoteCorpora(std::shared_ptr<CoordinatorClient> client, TokenCache::Options cache);

  // The served corpora's names, in the coordinator's order.
  std::vector<std::string> names() const;
  // A split of the corpus served as `name` (a UserError naming the coordinator and the
  // corpus when there is no such corpus or split, or its tokenizer does not fit the model).
  std::unique_ptr<TokenSource> open(const std::string& name, const std::string& split, int64_t model_vocab);

  TokenCache& cache() { return *cache_; }
  const coordinator::v1::ManifestResponse& manifest() const { return manifest_; }

 private:
  std::shared_ptr<CoordinatorClient> client_;
  coordinator::v1::ManifestResponse manifest_;
  std::shared_ptr<TokenCache> cache_;
};

}  // namespace kervan
