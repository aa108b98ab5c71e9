#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace kervan {

// `kervan corpus verify DIR`: checks every shard against the manifest and its checksum and prints
// one JSON line of counts. `kervan corpus cat DIR [--split train|val|all]`: prints the documents
// back as text, each followed by a line "<|endoftext|>" (the .txt input convention).
class CorpusCommand {
 public:
  explicit CorpusCommand(CLI::App& app);
  CorpusCommand(const CorpusCommand&) = delete;
  CorpusCommand& operator=(const CorpusCommand&) = delete;

  bool selected() const { return verify_->parsed() || cat_->parsed(); }
  int run() const;

 private:
  CLI::App* verify_;
  CLI::App* cat_;
  std::string dir_, split_ = "all";
};

}  // namespace kervan
