#pragma once

namespace kervan {

// What every checkpoint records about the binary that wrote it: the kervan release (the CMake
// project version) and the git commit it was built from ("<sha>", "<sha>-dirty" when tracked files
// had changes, "unknown" outside a git checkout). Generated at build time by cmake/build_info.cmake.
const char* kervan_version();
const char* kervan_git_commit();

}  // namespace kervan
