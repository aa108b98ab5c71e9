#pragma once
#include <string>
#include <vector>

namespace kervan {

// `kervan prepare --tokenizer bytes`: concatenates text files into one llm.c token file with one
// token per byte (vocabulary 256). Written atomically.
int run_prepare_bytes(const std::vector<std::string>& inputs, const std::string& out);

}  // namespace kervan
