#pragma once
#include <string>
#include <vector>

namespace kervan {

// Checks on the paths a command reads and writes, so that a bad path ends in one clear UserError
// naming it, never in a hang (a FIFO opened for reading blocks until someone writes), a crash, or
// an input overwritten by an output.

// `path` must exist and be a regular file (require_file), a folder (require_dir) or either;
// symlinks are followed. `what` names the role in the message ("data.path", "config file", ...).
void require_file(const std::string& path, const std::string& what);
void require_dir(const std::string& path, const std::string& what);
// Either of the two (a corpus folder or a token file, say).
void require_file_or_dir(const std::string& path, const std::string& what);

// Whether a and b name the same file or folder (device and inode; false when either is missing).
bool same_file(const std::string& a, const std::string& b);
// Whether `path` is `dir` or lies inside it (by file identity, through symlinks).
bool inside(const std::string& path, const std::string& dir);

// Refuses a list of input files (or folders) in which one appears twice (the same path, a folder and a
// file in it, or a symbolic link to another input): it would be read, and counted, twice. The
// UserError names how each was given (`given[i]`, e.g. "in the folder data"; by default "as PATH")
// and the file's canonical path. `what` names the role ("input file").
void refuse_repeated_files(const std::vector<std::string>& files, const std::string& what,
                           const std::vector<std::string>& given = {});

// Refuses an output that is one of the run's inputs, or lies inside an input folder: writing it
// would destroy what the run reads.
void refuse_output_over_input(const std::string& output, const std::string& what,
                              const std::vector<std::string>& inputs);

}  // namespace kervan
