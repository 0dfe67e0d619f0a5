#include "edgectl/api_client.h"

#include <strings.h>

#include <chrono>
#include <ostream>

namespace ep::edgectl {
namespace {

using nlohmann::json;

json decode(const std::string& raw) {
  if (raw.empty()) return json();
  json v = json::parse(raw, nullptr, /*allow_exceptions=*/false);
  return v.is_discarded() ? json() : v;
}

bool isStatusObject(const json& body) {
  return body.is_object() && body.value("kind", "") == "Status";
}

std::string reasonForHttpStatus(int status) {
  switch (status) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 406:
      return "NotAcceptable";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 413:
      return "RequestEntityTooLarge";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return status >= 500 ? "InternalError" : "BadRequest";
  }
}

std::string messageForHttpStatus(int status) {
  switch (status) {
    case 401:
      return "the server has asked for the client to provide credentials";
    case 403:
      return "the server does not allow access to the requested resource";
    case 404:
      return "the server could not find the requested resource";
    case 405:
      return "the server does not allow this method on the requested resource";
    case 409:
      return "the server reported a conflict";
    case 410:
      return "the resource version is too old";
    case 415:
      return "the server does not support the request's content type";
    case 422:
      return "the server rejected our request due to an error in our request";
    case 503:
      return "the server is currently unable to handle the request";
    case 504:
      return "the server was unable to return a response in the time allotted";
    default:
      return "an error on the server has prevented the request from succeeding (status " +
             std::to_string(status) + ")";
  }
}

// The text of a `Warning: 299 - "TEXT"` header (RFC 7234 5.5), unquoted; the whole value when
// it has another form.
std::string warningText(const std::string& value) {
  const auto open = value.find('"');
  if (open == std::string::npos) return value;
  std::string out;
  for (size_t i = open + 1; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) {
      out += value[++i];
    } else if (value[i] == '"') {
      break;
    } else {
      out += value[i];
    }
  }
  return out;
}

}  // namespace

HttpApiTransport::HttpApiTransport(std::string serverUrl, http::ClientOptions options,
                                   int verbosity, std::ostream& log)
    : client_(serverUrl, options),
      options_(std::move(options)),
      serverUrl_(std::move(serverUrl)),
      verbosity_(verbosity),
      log_(log) {}

Result<ApiResponse> HttpApiTransport::call(std::string_view method, std::string_view path,
                                           const json* body, std::string_view contentType,
                                           std::string_view accept) {
  std::string payload = body ? body->dump() : std::string();
  if (verbosity_ >= 8 && body) log_ << "Request Body: " << payload << "\n";
  return send(method, path, payload, body ? contentType : std::string_view(), accept);
}

Result<ApiResponse> HttpApiTransport::send(std::string_view method, std::string_view path,
                                           std::string_view body, std::string_view contentType,
                                           std::string_view accept) {
  auto start = std::chrono::steady_clock::now();
  auto r = client_.request(method, path, body, contentType, accept);
  if (verbosity_ >= 6) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    log_ << method << " " << serverUrl_ << path << " "
         << (r ? std::to_string(r->status) : r.status().toString()) << " in " << ms
         << " milliseconds\n";
    if (verbosity_ >= 8 && r) log_ << "Response Body: " << r->body << "\n";
  }
  if (!r) return r.status();
  // Server warnings go to stderr as kubectl prints them (field validation, damaged objects
  // left out of a list).
  for (const auto& [name, value] : r->headers) printWarning(name, value);
  ApiResponse out;
  out.status = r->status;
  out.raw = std::move(r->body);
  out.body = decode(out.raw);
  return out;
}

Result<ApiResponse> ApiTransport::callRaw(std::string_view, std::string_view, std::string_view,
                                          std::string_view) {
  return unavailableError("raw request bodies are not supported by this transport");
}

Result<std::unique_ptr<http::ClientWebSocket>> ApiTransport::openWebSocket(std::string_view,
                                                                           std::string_view) {
  return unavailableError("this transport has no WebSockets");
}

Result<std::unique_ptr<http::ClientWebSocket>> HttpApiTransport::openWebSocket(
    std::string_view path, std::string_view protocol) {
  http::ClientOptions o = options_;
  // The handshake's deadline: the request timeout, at most 30 s (0, "none", means 30 s here).
  if (o.timeout <= std::chrono::milliseconds(0) || o.timeout > std::chrono::seconds(30)) {
    o.timeout = std::chrono::seconds(30);
  }
  auto ws = http::ClientWebSocket::open(http::HttpClient(serverUrl_, o), path, protocol);
  if (verbosity_ >= 6) {
    log_ << "GET " << serverUrl_ << path << " (WebSocket " << protocol << ") "
         << (ws ? std::string("101") : ws.status().toString()) << "\n";
  }
  return ws;
}

Result<ApiResponse> HttpApiTransport::callRaw(std::string_view method, std::string_view path,
                                              std::string_view body, std::string_view contentType) {
  return send(method, path, body, contentType, kJson);
}

void HttpApiTransport::printWarning(std::string_view name, std::string_view value) {
  if (name.size() == 7 && strncasecmp(name.data(), "Warning", 7) == 0) {
    log_ << "Warning: " << warningText(std::string(value)) << "\n";
  }
}

Status HttpApiTransport::watch(std::string_view path, std::string_view accept,
                               const std::function<bool(const json&)>& onEvent) {
  if (verbosity_ >= 6) log_ << "WATCH " << serverUrl_ << path << "\n";
  Status s = client_.stream(
      "GET", path,
      [&](std::string_view line) {
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
          return true;
        }
        json event = json::parse(line, nullptr, false);
        if (event.is_discarded()) {
          if (verbosity_ >= 6) log_ << "skipping bad watch line\n";
          return true;
        }
        return onEvent(event);
      },
      accept, [this](std::string_view name, std::string_view value) { printWarning(name, value); });
  if (s.isOk()) return s;
  // A non-2xx answer carries the body as its message: surface the server's own text.
  json body = decode(s.message());
  if (isStatusObject(body) && body.contains("message")) {
    return Status(s.code(), body["message"].get<std::string>());
  }
  return s;
}

Status HttpApiTransport::streamLines(std::string_view path,
                                     const std::function<bool(std::string_view)>& onLine) {
  if (verbosity_ >= 6) log_ << "STREAM " << serverUrl_ << path << "\n";
  Status s = client_.stream(
      "GET", path, onLine, "text/plain, */*",
      [this](std::string_view name, std::string_view value) { printWarning(name, value); });
  if (s.isOk()) return s;
  json body = decode(s.message());
  if (isStatusObject(body) && body.contains("message") && body["message"].is_string()) {
    return Status(s.code(), body["message"].get<std::string>());
  }
  return s;
}

Status ApiTransport::streamLines(std::string_view path,
                                 const std::function<bool(std::string_view)>& onLine) {
  auto r = call("GET", path, nullptr, kJson, "text/plain, */*");
  if (!r.isOk()) return r.status();
  if (!r->ok()) return Status(http::codeForHttpStatus(r->status), serverMessage(*r));
  std::string_view rest = r->raw;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    if (!onLine(rest.substr(0, nl))) return Status::ok();
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return Status::ok();
}

std::string serverMessage(const ApiResponse& response) {
  if (isStatusObject(response.body)) {
    auto it = response.body.find("message");
    if (it != response.body.end() && it->is_string() && !it->get<std::string>().empty()) {
      return it->get<std::string>();
    }
  }
  if (response.status == 404 || response.status == 405 || response.status == 401 ||
      response.status == 403 || response.status >= 500) {
    return messageForHttpStatus(response.status);
  }
  std::string raw = response.raw;
  while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r')) raw.pop_back();
  if (!raw.empty() && raw.size() < 512) return raw;
  return messageForHttpStatus(response.status);
}

std::string serverReason(const ApiResponse& response) {
  if (isStatusObject(response.body)) {
    auto it = response.body.find("reason");
    if (it != response.body.end() && it->is_string() && !it->get<std::string>().empty()) {
      return it->get<std::string>();
    }
  }
  return reasonForHttpStatus(response.status);
}

std::string serverErrorLine(const ApiResponse& response) {
  return "Error from server (" + serverReason(response) + "): " + serverMessage(response);
}

std::string serverMessageWithCauses(const ApiResponse& response) {
  std::string msg = serverMessage(response);
  if (!isStatusObject(response.body)) return msg;
  const json* causes = nullptr;
  if (auto d = response.body.find("details"); d != response.body.end() && d->is_object()) {
    if (auto c = d->find("causes"); c != d->end() && c->is_array()) causes = &*c;
  }
  if (!causes) return msg;
  for (const auto& cause : *causes) {
    if (!cause.is_object()) continue;
    std::string field = cause.value("field", "");
    std::string text = cause.value("message", "");
    if (field.empty() || msg.find(field) != std::string::npos) continue;
    msg += (msg.find(": ") == std::string::npos ? ": " : ", ") + field + ": " + text;
  }
  return msg;
}

}  // namespace ep::edgectl
