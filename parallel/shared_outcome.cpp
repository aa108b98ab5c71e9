#include "parallel/shared_outcome.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace kervan {

void run_on_root_and_share_outcome(Communicator& group, Backend& be, const std::function<void()>& work) {
  int32_t kind = kExitOk;
  std::string message;
  if (group.rank() == 0) {
    try {
      work();
    } catch (const UserError& e) {
      kind = kExitUser;
      message = e.what();
    } catch (const EnvironmentError& e) {
      kind = kExitEnvironment;
      message = e.what();
    } catch (const std::exception& e) {
      kind = kExitInternal;
      message = e.what();
    }
  }
  if (group.size() > 1) {
    // {kind, message length}, then the message packed into int32 words.
    Tensor head = be.empty({2}, DType::I32);
    const int32_t h[2] = {kind, static_cast<int32_t>(message.size())};
    be.copy_from_host(head, h);
    group.broadcast(head, 0);
    const std::vector<int32_t> got = be.to_host<int32_t>(head);
    kind = got[0];
    if (got[1] > 0) {
      std::vector<int32_t> words((got[1] + 3) / 4, 0);
      std::memcpy(words.data(), message.data(), message.size());
      Tensor body = be.empty({static_cast<int64_t>(words.size())}, DType::I32);
      be.copy_from_host(body, words.data());
      group.broadcast(body, 0);
      words = be.to_host<int32_t>(body);
      message.assign(reinterpret_cast<const char*>(words.data()), got[1]);
    }
  }
  switch (kind) {
    case kExitOk:
      return;
    case kExitUser:
      throw UserError(message);
    case kExitEnvironment:
      throw EnvironmentError("verification", "rank 0 of this node", message);
    default:
      throw std::runtime_error(message);
  }
}

}  // namespace kervan
