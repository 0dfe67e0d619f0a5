#pragma once

#include <chrono>
#include <memory>

#include "cloudcore/controllers/controller_loop.h"
#include "cloudcore/registry/registry.h"
#include "common/status.h"

namespace ep::controllers {

struct ServiceAccountControllerOptions {
  std::chrono::milliseconds resync{std::chrono::seconds(30)};
  std::chrono::milliseconds minGap{std::chrono::milliseconds(100)};
};

// Keeps a ServiceAccount named `default` in every namespace that is not terminating, as
// Kubernetes' serviceaccounts-controller does: created when a namespace appears, re-created
// when deleted. It only ever creates `default` (with the registry's uid; never updates or
// deletes ServiceAccounts), so a recreated one is a new identity: tokens of the old one stop
// working (docs/security.md).
//
// Threading: a ControllerLoop thread runs reconcileOnce() on Namespace events and on the
// deletion of a `default` ServiceAccount, and every resync; reconcileOnce() is callable from
// tests (with the loop stopped). start()/stop() from one owner thread; stop() is idempotent.
class ServiceAccountController {
 public:
  explicit ServiceAccountController(registry::Registry& registry,
                                    ServiceAccountControllerOptions options = {});
  ~ServiceAccountController();
  ServiceAccountController(const ServiceAccountController&) = delete;
  ServiceAccountController& operator=(const ServiceAccountController&) = delete;

  // Opens the watches (an error there is returned) and starts the thread.
  Status start();
  void stop();

  // One pass over every namespace. Returns how many ServiceAccounts were created; an error
  // when the namespaces or ServiceAccounts cannot be listed (a failed create is logged and
  // retried on the next pass).
  Result<int> reconcileOnce();

 private:
  registry::Registry& registry_;
  const ServiceAccountControllerOptions options_;
  std::unique_ptr<ControllerLoop> loop_;
};

}  // namespace ep::controllers
