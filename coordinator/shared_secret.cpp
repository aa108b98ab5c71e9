#include "coordinator/shared_secret.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace kervan {

namespace {

std::string trimmed(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

SharedSecret::SharedSecret(std::string token) : token_(std::move(token)) {
  if (token_.empty()) throw UserError("the coordinator token is empty");
  SHA256(reinterpret_cast<const unsigned char*>(token_.data()), token_.size(), digest_);
}

SharedSecret SharedSecret::from_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw UserError(path + ": cannot read the token file: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw UserError(path + ": the token file is not a regular file");
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw UserError(path + ": the token file is accessible by others (mode " + mode +
                    "); make it private with chmod 600");
  }
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) throw UserError(path + ": cannot read the token file (empty?)");
  line = trimmed(line);
  if (line.empty()) throw UserError(path + ": the token file's first line is empty");
  return SharedSecret(line);
}

std::optional<SharedSecret> SharedSecret::find(const std::string& token_file) {
  if (!token_file.empty()) return from_file(token_file);
  if (const char* t = std::getenv("KERVAN_TOKEN"); t && *t) return SharedSecret(t);
  if (const char* f = std::getenv("KERVAN_TOKEN_FILE"); f && *f) return from_file(f);
  return std::nullopt;
}

SharedSecret SharedSecret::require(const std::string& token_file, const std::string& who) {
  if (std::optional<SharedSecret> s = find(token_file)) return *s;
  throw UserError(
      who +
      " needs the job's shared secret: set KERVAN_TOKEN, or KERVAN_TOKEN_FILE / --token-file to a "
      "file only you can read (chmod 600)");
}

bool SharedSecret::matches(std::string_view offered) const {
  unsigned char d[32];
  SHA256(reinterpret_cast<const unsigned char*>(offered.data()), offered.size(), d);
  return CRYPTO_memcmp(d, digest_, sizeof d) == 0;
}

}  // namespace kervan
