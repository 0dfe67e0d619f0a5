#pragma once

// The seam between edgectl commands and cloudcore's Kubernetes-style REST API. Commands talk to
// an ApiTransport so they can be unit-tested against an in-memory fake.
//
// Thread-safety: transports are thread-compatible (edgectl is single-threaded).

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/http/client.h"
#include "common/status.h"

namespace ep::edgectl {

// Accept header asking the server for a metav1 Table (falls back to plain JSON).
inline constexpr std::string_view kTableAccept =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
inline constexpr std::string_view kJson = "application/json";
inline constexpr std::string_view kMergePatch = "application/merge-patch+json";
inline constexpr std::string_view kApplyPatch = "application/apply-patch+yaml";

// Any HTTP answer. `body` is the decoded JSON body (null when empty or not JSON); `raw` keeps
// the text.
struct ApiResponse {
  int status = 0;
  nlohmann::json body;
  std::string raw;

  bool ok() const { return status >= 200 && status < 300; }
};

class ApiTransport {
 public:
  virtual ~ApiTransport() = default;

  // One request. Errors are transport failures only (unreachable, timeout); HTTP error statuses
  // come back as ApiResponse values.
  virtual Result<ApiResponse> call(std::string_view method, std::string_view path,
                                   const nlohmann::json* body = nullptr,
                                   std::string_view contentType = kJson,
                                   std::string_view accept = kJson) = 0;

  // One request with a raw body (model uploads: application/octet-stream). The default answers
  // kUnavailable (fakes that do not need it).
  virtual Result<ApiResponse> callRaw(std::string_view method, std::string_view path,
                                      std::string_view body, std::string_view contentType);

  // Streams a watch: calls onEvent with each decoded newline-delimited JSON event until the
  // server ends the stream (ok) or onEvent returns false (ok). A non-2xx answer is an error
  // whose code follows the HTTP status and whose message is the server's Status message.
  virtual Status watch(std::string_view path, std::string_view accept,
                       const std::function<bool(const nlohmann::json& event)>& onEvent) = 0;

  // Streams a text response (logs -f) line by line, without the '\n', until the server ends it
  // or onLine returns false. Errors as for watch(). The default reads the whole response with
  // call() and splits it (enough for fakes).
  virtual Status streamLines(std::string_view path,
                             const std::function<bool(std::string_view line)>& onLine);

  // A WebSocket to `path` offering `protocol` (port-forward), with this transport's server,
  // TLS and credentials, on a connection of its own. Errors as for call() transport failures,
  // or the refused upgrade's status and message. The default answers kUnavailable.
  virtual Result<std::unique_ptr<http::ClientWebSocket>> openWebSocket(std::string_view path,
                                                                       std::string_view protocol);
};

// ApiTransport over ep::http::HttpClient. verbosity >= 6 logs each request to `log` like
// kubectl -v=6.
class HttpApiTransport final : public ApiTransport {
 public:
  HttpApiTransport(std::string serverUrl, http::ClientOptions options, int verbosity,
                   std::ostream& log);

  Result<ApiResponse> call(std::string_view method, std::string_view path,
                           const nlohmann::json* body, std::string_view contentType,
                           std::string_view accept) override;
  Result<ApiResponse> callRaw(std::string_view method, std::string_view path, std::string_view body,
                              std::string_view contentType) override;
  Status watch(std::string_view path, std::string_view accept,
               const std::function<bool(const nlohmann::json&)>& onEvent) override;
  Status streamLines(std::string_view path,
                     const std::function<bool(std::string_view line)>& onLine) override;
  Result<std::unique_ptr<http::ClientWebSocket>> openWebSocket(std::string_view path,
                                                               std::string_view protocol) override;

 private:
  Result<ApiResponse> send(std::string_view method, std::string_view path, std::string_view body,
                           std::string_view contentType, std::string_view accept);
  // Prints a Warning response header to the log stream as kubectl does ("Warning: TEXT").
  void printWarning(std::string_view name, std::string_view value);

  http::HttpClient client_;
  http::ClientOptions options_;  // for the WebSockets' own connections
  std::string serverUrl_;
  int verbosity_;
  std::ostream& log_;
};

// The server's explanation of a failed response: Status.message, else a generic text built from
// the HTTP status (e.g. "the server could not find the requested resource").
std::string serverMessage(const ApiResponse& response);
// Status.reason ("NotFound", "Invalid", ...), else one derived from the HTTP status.
std::string serverReason(const ApiResponse& response);
// kubectl's error line: `Error from server (NotFound): pods "x" not found`.
std::string serverErrorLine(const ApiResponse& response);
// The message plus any field causes the message does not already mention, e.g.
// `Pod "x" is invalid: spec.containers[0].image: Required value`.
std::string serverMessageWithCauses(const ApiResponse& response);

}  // namespace ep::edgectl
