#pragma once
#include <cstdint>

namespace kervan {

// The coordinator protocol's version (coordinator.proto). A new major version breaks old peers
// (the server refuses them by name); a new minor version only adds fields.
constexpr uint32_t kProtocolMajor = 1;
constexpr uint32_t kProtocolMinor = 0;

}  // namespace kervan
