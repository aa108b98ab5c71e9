#include "launcher/text_codec.h"

#include "datasets/tokenizer_files.h"

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

std::string TextCodec::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  if (bpe_) {
    std::vector<uint32_t> known;
    for (const int32_t id : ids)
      if (bpe_->has_id(static_cast<uint32_t>(id))) known.push_back(static_cast<uint32_t>(id));
    return bpe_->decode(known);
  }
  for (const int32_t id : ids) {
    if (name_ == "bytes")
      out += id < 256 ? std::string(1, static_cast<char>(id)) : std::string("<|endoftext|>");
    else
      out += std::to_string(id) + " ";
  }
  return out;
}

}  // namespace kervan
