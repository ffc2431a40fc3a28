#include "controllers/controller.h"

namespace berth::controllers {

Status ControllerSet::StartAll() {
  for (; started_ < all_.size(); ++started_) {
    Controller& c = *all_[started_];
    Status st = c.Start();
    if (!st.ok()) {
      StopAll();
      return Status(st.code(), std::string(c.Name()) + " controller: " + st.message());
    }
  }
  return Status::Ok();
}

void ControllerSet::StopAll() {
  while (started_ > 0) all_[--started_]->Stop();
}

}  // namespace berth::controllers
