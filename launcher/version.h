#pragma once

namespace kervan {

// The release (CMake's project version) and the git commit the binary was built from
// (`git describe --dirty`), as `kervan --version` prints them and checkpoints record them.
const char* kervan_version();
const char* kervan_git_commit();

}  // namespace kervan
