#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace kervan {

// The job's shared secret: every request to the coordinator carries it, and the coordinator
// compares it in constant time. It comes from the environment variable KERVAN_TOKEN, or from a
// token file (first line, surrounding whitespace dropped) that only its owner may read: a file
// readable by its group or by others is refused, since anyone who reads it joins the job.
class SharedSecret {
 public:
  // From `token_file` when given, else $KERVAN_TOKEN, else $KERVAN_TOKEN_FILE; nullopt when none
  // is set. A bad file (missing, readable by others, empty) is a UserError naming it.
  static std::optional<SharedSecret> find(const std::string& token_file);
  // Like find(), but a missing secret is a UserError that says how to give one.
  static SharedSecret require(const std::string& token_file, const std::string& who);
  static SharedSecret from_file(const std::string& path);
  explicit SharedSecret(std::string token);

  const std::string& token() const { return token_; }
  // Constant time in the contents (it compares SHA-256 digests, so the length leaks nothing either).
  bool matches(std::string_view offered) const;

 private:
  std::string token_;
  unsigned char digest_[32];
};

}  // namespace kervan
