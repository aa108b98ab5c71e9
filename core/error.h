#pragma once
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace kervan {

// What a `kervan` command exits with. Each kind of failure has its own code, so a script (or
// Slurm's requeue logic) can tell a mistake to fix from a machine to retry on.
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,     // a bug in kervan (KERVAN_CHECK failed, an unexpected exception)
  kExitUser = 2,         // UserError: the user's input is wrong
  kExitNumerical = 3,    // training stopped by a numerical fault (non-finite loss or gradient)
  kExitEnvironment = 4,  // EnvironmentError: MPI, I/O, a collective that timed out
};

// A mistake the user can fix (bad config, missing or corrupt file, shapes that do not fit).
// The message names the file (or the config key) and what is wrong; exit code 2.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The environment failed, not the input: an MPI call, a write to a full disk, a collective that
// never completed (later: CUDA, gRPC). The message names the call and the resource it acted on
// ("MPI_Allreduce on the data-parallel group (world ranks 0, 1): ..."); exit code 4.
class EnvironmentError : public std::runtime_error {
 public:
  EnvironmentError(const std::string& call, const std::string& resource, const std::string& detail)
      : std::runtime_error(call + " on " + resource + ": " + detail) {}
  // A message already written in full ("PATH: write failed: No space left on device").
  explicit EnvironmentError(const std::string& message) : std::runtime_error(message) {}
};

// Whether a failed file operation's errno is the machine's doing (a full disk or quota, an I/O
// error, memory or file descriptors exhausted) rather than the user's (no permission, no such
// folder, a read-only file system, a name too long, a file where a folder should be).
inline bool is_environment_errno(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EIO:
    case EFBIG:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case EAGAIN:  // (a thread or process the system cannot create now)
    case ESTALE:
    case ETIMEDOUT:
      return true;
    default:
      return false;
  }
}

// The one way a failed file operation is reported, "PATH: WHAT: strerror(err)": an
// EnvironmentError (exit 4) when the machine failed (is_environment_errno), else a UserError
// (exit 2). Every read and write of kervan's files goes through it, so a full disk is exit 4 in
// every command and a permission mistake exit 2.
[[noreturn]] inline void throw_io_error(const std::string& path, const std::string& what, int err) {
  const std::string message = path + ": " + what + ": " + std::strerror(err);
  if (is_environment_errno(err)) throw EnvironmentError(message);
  throw UserError(message);
}

// Internal invariant; failing it is a bug in kervan, not in the user's input (exit code 1).
#define KERVAN_CHECK(cond, msg)                                                                      \
  do {                                                                                               \
    if (!(cond))                                                                                     \
      throw std::logic_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + (msg)); \
  } while (0)

}  // namespace kervan
