#include "datasets/prepare/corpus_dir.h"

#include <filesystem>
#include <set>

#include "core/error.h"
#include "datasets/prepare/unit_record.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

// The names `kervan prepare` gives the files it writes in its folder (only ever applied inside a
// folder that carries kervan's marker, see begin_corpus_dir).
bool is_shard_name(const std::string& name) {
  return (name.starts_with("train-") || name.starts_with("val-")) && name.ends_with(".kvs");
}
bool is_our_temporary(const std::string& name) {
  if (!name.ends_with(".tmp")) return false;
  const std::string base = name.substr(0, name.size() - 4);
  return is_shard_name(base) || base == CorpusManifest::kFileName;
}

template <class Pred>
void remove_files_named(const fs::path& folder, Pred pred) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec))
    if (e.is_regular_file(ec) && pred(e.path().filename().string())) fs::remove(e.path(), ec);
}

bool is_empty_dir(const std::string& dir) {
  std::error_code ec;
  return fs::is_empty(dir, ec) && !ec;
}

}  // namespace

bool begin_corpus_dir(const std::string& dir, bool overwrite, const std::string& request) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw UserError(dir +
                    ": --out exists and is not a folder (a corpus is a folder; `--out X.bin` writes an llm.c "
                    "token file, with --tokenizer bytes only)");
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw UserError(dir + ": cannot create the output folder: " + ec.message());
  const std::string manifest = dir + "/" + CorpusManifest::kFileName;
  const std::string records = dir + "/" + kUnitRecordDir;
  const bool complete = fs::exists(manifest), unfinished = fs::is_directory(records);
  // kervan writes only into a folder it made: new or empty, or marked by its manifest or its
  // records of an unfinished prepare. Anything else holds someone else's files.
  if (!complete && !unfinished && !is_empty_dir(dir))
    throw UserError(
        dir + ": --out is a folder with other files in it, not a kervan corpus (no " +
        CorpusManifest::kFileName + ", no " + kUnitRecordDir +
        "/ of an unfinished prepare); kervan writes only into a new or empty folder or one it made");
  if (complete && !overwrite) {
    const CorpusManifest m = read_corpus_manifest(dir);
    if (m.request == request) return true;
    throw UserError(dir + ": already holds a complete corpus made " +
                    (m.request.empty() ? std::string("by an older kervan") : "from other inputs or options") +
                    (m.created_by.empty() ? "" : " (" + m.created_by + ")") +
                    "; --overwrite replaces it, or choose another --out");
  }
  if (complete) {  // --overwrite: the old corpus goes, starting with the manifest that marks it complete
    const CorpusManifest old = read_corpus_manifest(dir);
    fs::create_directories(records, ec);  // still ours if this is interrupted
    fs::remove(manifest);
    for (const auto& [split, shards] : old.splits)
      for (const ShardEntry& s : shards) fs::remove(dir + "/" + s.file, ec);
  }
  fs::create_directories(records, ec);  // the marker: this folder is kervan's
  if (ec) throw UserError(records + ": cannot create: " + ec.message());
  remove_files_named(dir, is_our_temporary);
  remove_files_named(records, [](const std::string& n) { return n.ends_with(".tmp"); });
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
