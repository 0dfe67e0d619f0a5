#include "proto/grpc_runtime.h"

#include <absl/synchronization/mutex.h>

namespace ep {

void tuneGrpcRuntime() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace ep
