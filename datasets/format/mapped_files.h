#pragma once
#include <cstddef>
#include <string>

namespace kervan {

// The files kervan has memory-mapped, so that a SIGBUS (the kernel's answer to reading a page of a
// mapped file that was truncated after it was mapped) ends the process with one line naming the
// file instead of a bare "Bus error". The first registration installs the handler.
//
// The handler prints "kervan: error: PATH: the file was truncated or replaced while kervan was
// reading it ..." and exits with code 2; a SIGBUS outside every registered mapping is re-raised
// with the default action.
void register_mapping(const void* begin, size_t bytes, const std::string& path);
void unregister_mapping(const void* begin);

}  // namespace kervan
