#include "launcher/text_codec.h"

#include "datasets/tokenizer/tokenizer_files.h"

namespace kervan {

TextCodec::TextCodec(const std::string& tokenizer) : name_(tokenizer) {
  if (name_ != "bytes" && name_ != "none") bpe_ = load_bpe_tokenizer(name_);
}

std::vector<int32_t> TextCodec::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  if (bpe_) {
    for (const uint32_t id : bpe_->encode(text)) ids.push_back(static_cast<int32_t>(id));
  } else if (name_ == "bytes") {
    for (const unsigned char c : text) ids.push_back(c);
  }
  return ids;
}

int64_t TextCodec::vocab_size() const {
  if (bpe_) return static_cast<int64_t>(bpe_->vocab_size());
  return name_ == "bytes" ? 257 : 0;
}

int64_t TextCodec::eot() const {
  if (bpe_) return bpe_->special_id("<|endoftext|>");
  return name_ == "bytes" ? 256 : -1;
}

std::string TextCodec::decode(const std::vector<int32_t>& ids) const {
  // Ids the tokenizer lacks (the model's vocabulary may be larger) are shown as <|id:N|>.
  std::string out;
  std::vector<uint32_t> run;  // consecutive ids the BPE tokenizer knows, decoded together
  auto flush = [&] {
    if (!run.empty()) out += bpe_->decode(run);
    run.clear();
  };
  for (const int32_t id : ids) {
    if (bpe_ && id >= 0 && bpe_->has_id(static_cast<uint32_t>(id))) {
      run.push_back(static_cast<uint32_t>(id));
      continue;
    }
    if (bpe_) flush();
    if (name_ == "bytes" && id >= 0 && id < 256)
      out += static_cast<char>(id);
    else if (name_ == "bytes" && id == 256)
      out += "<|endoftext|>";
    else if (name_ == "none")
      out += std::to_string(id) + " ";
    else
      out += "<|id:" + std::to_string(id) + "|>";
  }
  if (bpe_) flush();
  return out;
}

}  // namespace kervan
