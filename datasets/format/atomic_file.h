#pragma once
#include <initializer_list>
#include <string>
#include <string_view>

namespace kervan {

// Writes a whole file so that readers see either the old file or the complete new one, never a
// part: the bytes go to "PATH.tmp", which is fsynced and then renamed over PATH. A failure
// removes the temporary file and is a UserError naming the file.
void write_file_atomically(const std::string& path, std::string_view text);
// The same for a file made of several pieces, written one after the other (no copy into one string).
void write_file_atomically(const std::string& path, std::initializer_list<std::string_view> pieces);

}  // namespace kervan
