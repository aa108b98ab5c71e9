#include "checkpoint/collective_text.h"

#include <algorithm>
#include <cstring>

namespace kervan {

std::vector<std::string> all_gather_text(Communicator& group, Backend& backend, const std::string& text) {
  const int n = group.size();
  Tensor length = backend.empty({1}, DType::I32), lengths = backend.empty({n}, DType::I32);
  const int32_t mine = static_cast<int32_t>(text.size());
  backend.copy_from_host(length, &mine);
  group.all_gather(lengths, length);
  const std::vector<int32_t> sizes = backend.to_host<int32_t>(lengths);
  // Bytes travel as int32 words, every rank's padded to the longest text.
  const int64_t words = std::max<int64_t>(1, (*std::max_element(sizes.begin(), sizes.end()) + 3) / 4);
  std::vector<int32_t> padded(words, 0);
  std::memcpy(padded.data(), text.data(), text.size());
  Tensor part = backend.empty({words}, DType::I32), all = backend.empty({n * words}, DType::I32);
  backend.copy_from_host(part, padded.data());
  group.all_gather(all, part);
  const std::vector<int32_t> bytes = backend.to_host<int32_t>(all);
  std::vector<std::string> out;
  for (int r = 0; r < n; ++r)
    out.emplace_back(reinterpret_cast<const char*>(bytes.data() + r * words), static_cast<size_t>(sizes[r]));
  return out;
}

}  // namespace kervan
