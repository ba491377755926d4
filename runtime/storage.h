// A reference-counted block of device memory that tensors view.
#ifndef LOOM_RUNTIME_STORAGE_H_
#define LOOM_RUNTIME_STORAGE_H_

#include <cstddef>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/allocator.h"
#include "runtime/device.h"

namespace loom {

class Storage {
 public:
  // Memory from the device's allocator; freed when the last reference goes.
  static absl::StatusOr<std::shared_ptr<Storage>> Allocate(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (an mmap'ed file, a peer's buffer); `release`
  // runs when the last reference goes. Not counted in memory statistics.
  static std::shared_ptr<Storage> Wrap(void* data, size_t nbytes, Device device,
                                       std::function<void(void*)> release);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  Storage(void* data, size_t nbytes, Device device) : data_(data), nbytes_(nbytes), device_(device) {}

  void* data_;
  size_t nbytes_;
  Device device_;
  Allocator* allocator_ = nullptr;          // set when allocated here
  std::function<void(void*)> release_;     // set when wrapped
};

}  // namespace loom

#endif  // LOOM_RUNTIME_STORAGE_H_
