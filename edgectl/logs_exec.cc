#include "edgectl/logs_exec.h"

#include <ostream>

#include "edgectl/config.h"

namespace ep::edgectl {
namespace {

std::string encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// "web" or "pod/web" / "pods/web" / "po/web".
Result<std::string> podName(const std::string& arg) {
  auto slash = arg.find('/');
  if (slash == std::string::npos) return arg;
  std::string kind = arg.substr(0, slash);
  if (kind != "pod" && kind != "pods" && kind != "po") {
    return invalidError("only pods have logs and exec; got \"" + arg + "\"");
  }
  if (slash + 1 >= arg.size()) return invalidError("missing pod name in \"" + arg + "\"");
  return arg.substr(slash + 1);
}

std::string podPath(const std::string& ns, const std::string& pod) {
  return "/api/v1/namespaces/" + encode(ns) + "/pods/" + encode(pod);
}

}  // namespace

Result<std::string> logsPath(const std::string& ns, const LogsOptions& o) {
  if (o.args.size() != 1) {
    return invalidError(o.args.empty() ? "expected a pod: edgectl logs POD [-c CONTAINER]"
                                       : "expected exactly one pod");
  }
  auto pod = podName(o.args[0]);
  if (!pod.isOk()) return pod.status();
  if (o.tail < -1) return invalidError("--tail must be -1 (all) or >= 0");
  if (o.limitBytes < 0) return invalidError("--limit-bytes must be > 0");
  std::string q;
  auto add = [&](const std::string& k, const std::string& v) {
    q += (q.empty() ? "?" : "&") + k + "=" + encode(v);
  };
  if (!o.container.empty()) add("container", o.container);
  if (o.follow) add("follow", "true");
  if (o.tail >= 0) add("tailLines", std::to_string(o.tail));
  if (o.previous) add("previous", "true");
  if (o.timestamps) add("timestamps", "true");
  if (!o.since.empty()) {
    auto d = parseTimeout(o.since);
    if (!d.isOk() || d->count() <= 0) {
      return invalidError("--since must be a positive duration such as 5s, 2m or 3h, got \"" +
                          o.since + "\"");
    }
    add("sinceSeconds", std::to_string((d->count() + 999) / 1000));
  }
  if (o.limitBytes > 0) add("limitBytes", std::to_string(o.limitBytes));
  return podPath(ns, *pod) + "/log" + q;
}

Result<std::string> execPath(const std::string& ns, const ExecOptions& o) {
  if (o.args.empty()) return invalidError("expected a pod: edgectl exec POD -- COMMAND [ARGS...]");
  if (o.args.size() < 2) {
    return invalidError("you must specify at least one command for the container");
  }
  auto pod = podName(o.args[0]);
  if (!pod.isOk()) return pod.status();
  std::string q = "?stdout=true&stderr=true";
  if (!o.container.empty()) q += "&container=" + encode(o.container);
  if (o.timeoutSeconds > 0) q += "&timeoutSeconds=" + std::to_string(o.timeoutSeconds);
  for (size_t i = 1; i < o.args.size(); ++i) q += "&command=" + encode(o.args[i]);
  return podPath(ns, *pod) + "/exec" + q;
}

int runLogs(Context& ctx, const LogsOptions& o) {
  auto path = logsPath(ctx.ns, o);
  if (!path.isOk()) {
    *ctx.err << "error: " << path.status().message() << "\n";
    return 1;
  }
  if (o.follow) {
    Status s = ctx.api->streamLines(*path, [&](std::string_view line) {
      *ctx.out << line << '\n';
      ctx.out->flush();
      return true;
    });
    if (!s.isOk()) {
      *ctx.err << "error: " << s.message() << "\n";
      return 1;
    }
    return 0;
  }
  auto r = ctx.api->call("GET", *path, nullptr, kJson, "text/plain, */*");
  if (!r.isOk()) {
    *ctx.err << "error: " << r.status().message() << "\n";
    return 1;
  }
  if (!r->ok()) {
    *ctx.err << serverErrorLine(*r) << "\n";
    return 1;
  }
  *ctx.out << r->raw;
  return 0;
}

int runExec(Context& ctx, const ExecOptions& o) {
  auto path = execPath(ctx.ns, o);
  if (!path.isOk()) {
    *ctx.err << "error: " << path.status().message() << "\n";
    return 1;
  }
  auto r = ctx.api->call("POST", *path);
  if (!r.isOk()) {
    *ctx.err << "error: " << r.status().message() << "\n";
    return 1;
  }
  if (!r->ok()) {
    *ctx.err << serverErrorLine(*r) << "\n";
    return 1;
  }
  const auto& b = r->body;
  if (b.is_object() && b.value("kind", "") == "Status") {  // the stream failed after it opened
    *ctx.err << "Error from server: " << b.value("message", std::string("exec failed")) << "\n";
    return 1;
  }
  if (!b.is_object() || !b.contains("exitCode")) {
    *ctx.err << "error: unexpected exec answer from the server\n";
    return 1;
  }
  *ctx.out << b.value("stdout", std::string());
  ctx.out->flush();
  *ctx.err << b.value("stderr", std::string());
  int code = b["exitCode"].is_number_integer() ? b["exitCode"].get<int>() : 1;
  if (code != 0) *ctx.err << "command terminated with exit code " << code << "\n";
  return code;
}

}  // namespace ep::edgectl
