#include "launcher/prepare.h"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "datasets/llmc_token_file.h"

namespace kervan {

int run_prepare_bytes(const std::vector<std::string>& inputs, const std::string& out) {
  std::vector<uint16_t> tokens;
  for (const std::string& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UserError(path + ": cannot open input file");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw UserError(path + ": read failed");
    if (text.empty()) throw UserError(path + ": input file is empty");
    for (unsigned char c : text) tokens.push_back(c);
  }
  write_llmc_token_file(out, tokens);
  spdlog::info("wrote {} ({} byte tokens from {} files)", out, tokens.size(), inputs.size());
  return 0;
}

}  // namespace kervan
