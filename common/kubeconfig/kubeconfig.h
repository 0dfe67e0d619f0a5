#pragma once

// Kubernetes kubeconfig files (clientcmd v1 Config): reading what a client needs to reach and
// authenticate to the API, and writing the admin kubeconfig cloudcore creates. Pure functions
// apart from reading the files a kubeconfig refers to; thread-safe.

#include <string>
#include <string_view>

#include "common/status.h"

namespace ep::kubeconfig {

// What one context of a kubeconfig resolves to. PEM material is loaded (from *-data fields or
// from the files they name, relative to the kubeconfig's directory).
struct Credentials {
  std::string server;  // "https://127.0.0.1:6443"
  std::string caPem;
  bool insecureSkipVerify = false;
  std::string tlsServerName;
  std::string clientCertPem;
  std::string clientKeyPem;
  std::string token;
  std::string ns;  // the context's namespace, "" when unset
};

struct ParseOptions {
  std::string source;             // names the file in errors
  std::string baseDir;            // for relative file references; "" = current directory
  std::string context;            // "" = current-context
  size_t maxFileBytes = 1 << 20;  // referenced files larger than this are refused
};

// Parses kubeconfig YAML and resolves one context. Errors (kInvalid) name the source and the
// field: "admin.kubeconfig: users[0].user.client-key-data: invalid base64",
// "kubeconfig: context \"x\" not found". Input above 1 MiB is refused.
Result<Credentials> parse(std::string_view text, const ParseOptions& options);

// Reads and parses a kubeconfig file (baseDir = its directory).
Result<Credentials> load(const std::string& path, const std::string& context = "");

// A kubeconfig with one cluster, one user (client certificate or token; none when userName is
// empty) and one context, as cloudcore writes DATA_DIR/admin.kubeconfig.
struct RenderInput {
  std::string clusterName = "edgeplane";
  std::string userName = "admin";
  std::string server;
  std::string caPem;
  std::string clientCertPem;
  std::string clientKeyPem;
  std::string token;
};
std::string render(const RenderInput& input);

}  // namespace ep::kubeconfig
