#pragma once
#include <memory>
#include <string>

#include "datasets/format/corpus_manifest.h"

namespace kervan {

// The output folder of `kervan prepare`, before and after the build; each is called by one
// process only. manifest.json marks a complete corpus (corpus_manifest.h).
//
// kervan writes only into a folder it made: one that is new or empty, or that carries its marker
// (manifest.json of a complete corpus, or .prepare/ of an unfinished prepare); any other folder is
// refused (UserError) and left as it is.
//
// One prepare at a time: begin takes an exclusive lock (flock) on DIR/.kervan-prepare.lock, held
// until the object is gone; a second prepare into the same folder is refused naming the folder and
// the holder's pid. The lock file is removed when the prepare ends.
//
// A complete corpus is never taken apart before its replacement is complete: --overwrite builds
// the new corpus aside, in the sibling folder .NAME.kervan-overwrite (marked and locked like DIR),
// and finish swaps the two folders (an atomic exchange), then removes the old corpus's files. A
// failed rebuild (an error) leaves the old corpus as it was and removes the folder aside; a killed
// one leaves the folder aside too, and rerunning the same command resumes the rebuild there.
//
// Likewise a build into a new or empty --out that fails with an error leaves nothing behind (the
// folder goes if this prepare created it); one that resumed an unfinished prepare keeps its work,
// and so does one under mpirun (the other ranks may still be writing), for the rerun to resume.
class CorpusDir {
 public:
  // Checks and claims dir. complete() when it holds a complete corpus made for `request` (see
  // CorpusManifest::request) and !overwrite: nothing changed. A complete corpus made for another
  // request is refused unless overwrite. Otherwise build_dir() (dir itself, or the folder aside
  // when a complete corpus is being replaced) exists, carries the .prepare/ marker, and the
  // temporaries an interrupted run of kervan left there are gone.
  static std::unique_ptr<CorpusDir> begin(const std::string& dir, bool overwrite, const std::string& request);
  ~CorpusDir();
  CorpusDir(const CorpusDir&) = delete;
  CorpusDir& operator=(const CorpusDir&) = delete;

  bool complete() const { return complete_; }
  // Where the shards go.
  const std::string& build_dir() const { return build_dir_; }
  bool replacing() const { return build_dir_ != dir_; }

  // Removes shard files of ours ("train-*.kvs", "val-*.kvs", in this kervan-made folder) that the
  // manifest does not list (left by an interrupted run), writes the manifest, removes the unit
  // records (manifest.json marks the folder now); when replacing, swaps the new corpus in.
  void finish(const CorpusManifest& manifest);

  // Other processes (mpirun's ranks) write into build_dir() too: a failure does not undo the build
  // (they may still be writing; the rerun resumes it), as after a kill.
  void shared_with_other_processes() { fresh_ = false; }

  // The folder aside in which --overwrite builds the replacement of the corpus in `dir`.
  static std::string aside_dir(const std::string& dir);

  class Lock;

 private:
  CorpusDir() = default;
  std::string dir_, build_dir_;
  bool complete_ = false, finished_ = false;
  bool fresh_ = false;    // the build folder held no earlier work: a failed build is undone
  bool created_ = false;  // this prepare created --out
  std::unique_ptr<Lock> lock_, aside_lock_;
};

constexpr const char* kPrepareLockFile = ".kervan-prepare.lock";  // inside the corpus folder

}  // namespace kervan
