#include "datasets/prepare/document_tokenizer.h"

#include "core/error.h"
#include "datasets/tokenizer/tokenizer_files.h"

namespace kervan {

DocumentTokenizer DocumentTokenizer::load(const std::string& name_or_dir) {
  DocumentTokenizer t;
  if (name_or_dir == "bytes") {
    t.identity_ = {"bytes", 257, 256, ""};
    return t;
  }
  t.bpe_ = std::make_shared<const BpeTokenizer>(load_bpe_tokenizer(name_or_dir));
  const std::string dir = name_or_dir == "gpt2" ? tokenizer_data_dir() + "/gpt2" : name_or_dir;
  const int64_t eot = t.bpe_->special_id("<|endoftext|>");
  if (eot < 0) throw UserError(dir + "/encoder.json: the vocabulary has no <|endoftext|> token to end documents with");
  t.identity_ = {name_or_dir, t.bpe_->vocab_size(), static_cast<uint64_t>(eot),
                 sha256_file_hex(dir + "/encoder.json") + ":" + sha256_file_hex(dir + "/vocab.bpe")};
  return t;
}

void DocumentTokenizer::encode(std::string_view text, BpeTokenizer::Cache& cache, std::vector<uint32_t>& out) const {
  if (!bpe_) {
    const size_t at = out.size();
    out.resize(at + text.size());
    for (size_t i = 0; i < text.size(); ++i) out[at + i] = static_cast<unsigned char>(text[i]);
  } else {
    bpe_->encode_ordinary(text, cache, out);
  }
  out.push_back(static_cast<uint32_t>(identity_.eot_id));
}

}  // namespace kervan
