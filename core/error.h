#pragma once
#include <stdexcept>
#include <string>

namespace kervan {

// A mistake the user can fix (bad config, missing or corrupt file, shapes that do not fit).
// The launcher prints its message once and exits with code 2; everything else is a bug.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Internal invariant; failing it is a bug in kervan, not in the user's input.
#define KERVAN_CHECK(cond, msg)                                                           \
  do {                                                                                    \
    if (!(cond))                                                                          \
      throw std::logic_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + \
                             (msg));                                                      \
  } while (0)

}  // namespace kervan
