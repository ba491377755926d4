#include "runtime/storage.h"

#include "runtime/status.h"

namespace loom {

absl::StatusOr<std::shared_ptr<Storage>> Storage::Allocate(size_t nbytes, Device device) {
  LOOM_ASSIGN_OR_RETURN(Allocator * allocator, GetAllocator(device));
  LOOM_ASSIGN_OR_RETURN(void* data, allocator->Allocate(nbytes));
  std::shared_ptr<Storage> s(new Storage(data, nbytes, device));
  s->allocator_ = allocator;
  return s;
}

std::shared_ptr<Storage> Storage::Wrap(void* data, size_t nbytes, Device device,
                                       std::function<void(void*)> release) {
  std::shared_ptr<Storage> s(new Storage(data, nbytes, device));
  s->release_ = std::move(release);
  return s;
}

Storage::~Storage() {
  if (allocator_ != nullptr) {
    allocator_->Deallocate(data_, nbytes_);
  } else if (release_) {
    release_(data_);
  }
}

}  // namespace loom
