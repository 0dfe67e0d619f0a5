#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/http/server.h"
#include "common/http/server_types.h"
#include "edgecore/metamanager/cache.h"

namespace ep::edgecore::localapi {

struct LocalApiOptions {
  std::string version = "0.0.0";
  std::chrono::seconds maxWatchTimeout{1800};
  // Extra diagnostics for GET /status (tunnel state etc.). Called on a worker thread; must be
  // thread-safe. May be empty.
  std::function<nlohmann::json()> status;
};

// Read-only Kubernetes-style API served from the edge cache:
//   GET /api/v1[/namespaces/NS]/PLURAL[/NAME], /apis/G/V/..., ?watch=1, labelSelector,
//   fieldSelector, Accept: ...;as=Table, /healthz, /readyz, /livez, /status.
// Every other method is answered 405 with a Kubernetes Status. Thread-safe: handle() may run
// on many worker threads at once (all state is in the cache, read through CacheReader).
class LocalApiHandler {
 public:
  LocalApiHandler(metamanager::CacheReader& cache, Clock& clock, LocalApiOptions options);
  http::ServerResponse handle(http::ServerRequest& req);

 private:
  metamanager::CacheReader& cache_;
  Clock& clock_;
  const LocalApiOptions options_;
};

// The HTTP listener around LocalApiHandler. start()/stop() from one owner thread.
class LocalApi {
 public:
  LocalApi(http::ServerOptions serverOptions, metamanager::CacheReader& cache, Clock& clock,
           LocalApiOptions options);
  Status start();
  void stop();
  uint16_t port() const { return server_.port(); }

 private:
  LocalApiHandler handler_;
  http::Server server_;
};

}  // namespace ep::edgecore::localapi
