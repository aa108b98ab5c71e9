#include "datasets/prepare/corpus_dir.h"

#include <filesystem>
#include <set>

#include "core/error.h"
#include "datasets/prepare/unit_record.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

// The names `kervan prepare` gives shards.
bool is_shard_name(const std::string& name) {
  return (name.starts_with("train-") || name.starts_with("val-")) && name.ends_with(".kvs");
}

template <class Pred>
void remove_files_named(const fs::path& folder, Pred pred) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec))
    if (pred(e.path().filename().string())) fs::remove(e.path(), ec);
}

}  // namespace

bool begin_corpus_dir(const std::string& dir, bool overwrite) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw UserError(dir + ": cannot create the output folder: " + ec.message());
  const std::string manifest = dir + "/" + CorpusManifest::kFileName;
  const std::string records = dir + "/" + kUnitRecordDir;
  const bool complete = fs::exists(manifest);
  if (complete && !overwrite) return true;
  const auto is_tmp = [](const std::string& n) { return n.ends_with(".tmp"); };
  if (complete) {  // --overwrite: the old corpus goes
    fs::remove(manifest);
    remove_files_named(dir, is_shard_name);
    fs::remove_all(records, ec);
  }
  remove_files_named(dir, is_tmp);
  if (fs::is_directory(records)) remove_files_named(records, is_tmp);
  return false;
}

void finish_corpus_dir(const std::string& dir, const CorpusManifest& manifest) {
  std::set<std::string> listed;
  for (const auto& [split, shards] : manifest.splits)
    for (const ShardEntry& s : shards) listed.insert(s.file);
  remove_files_named(dir, [&](const std::string& n) { return is_shard_name(n) && !listed.contains(n); });
  write_corpus_manifest(dir, manifest);
  std::error_code ec;
  fs::remove_all(dir + "/" + kUnitRecordDir, ec);
}

}  // namespace kervan
