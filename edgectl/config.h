#pragma once

// Where edgectl finds its server: flags, environment and the config file. Pure functions (the
// file read aside); thread-safe.

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ep::edgectl {

inline constexpr std::string_view kDefaultServer = "https://127.0.0.1:6443";
// Where cloudcore writes its admin kubeconfig with the default data dir: the last fallback on
// the cloudcore machine itself (readable by root only).
inline constexpr std::string_view kSystemKubeconfig =
    "/var/lib/edgeplane/cloudcore/admin.kubeconfig";

struct ClientConfig {
  std::string server;            // base URL of cloudcore's API
  std::string token;             // bearer token, may be empty
  std::string defaultNamespace;  // "" means "default"
  // TLS (https servers): CA bundle (PEM; "" = system trust store), client certificate and key
  // (PEM), name to verify, or no verification at all.
  std::string caPem;
  std::string clientCertPem;
  std::string clientKeyPem;
  std::string tlsServerName;
  bool insecureSkipVerify = false;
  std::string kubeconfigPath;  // the kubeconfig used, "" when none
};

struct ConfigInputs {
  std::string serverFlag;        // --server
  std::string tokenFlag;         // --token
  std::string configFlag;        // --config (must exist when given)
  std::string kubeconfigFlag;    // --kubeconfig (must exist when given)
  std::string contextFlag;       // --context
  std::string caFlag;            // --certificate-authority FILE
  std::string clientCertFlag;    // --client-certificate FILE
  std::string clientKeyFlag;     // --client-key FILE
  bool insecureFlag = false;     // --insecure-skip-tls-verify
  std::string envServer;         // $EDGECTL_SERVER
  std::string envToken;          // $EDGECTL_TOKEN
  std::string envConfig;         // $EDGECTL_CONFIG
  std::string envKubeconfig;     // $KUBECONFIG (colon-separated; the first existing file is used)
  std::string home;              // $HOME, for ~/.kube/config and ~/.edgeplane/config
  std::string systemKubeconfig;  // last fallback (kSystemKubeconfig), used when readable
};

// Credentials are found the way kubectl finds them: the kubeconfig from --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config, else systemKubeconfig; its current context (or --context)
// gives server, CA, client certificate or token and namespace. Flags override it (--server,
// --token, --certificate-authority, --client-certificate, --client-key,
// --insecure-skip-tls-verify), and so do $EDGECTL_SERVER and $EDGECTL_TOKEN. The older
// edgeplane config file (--config FILE, else $EDGECTL_CONFIG, else ~/.edgeplane/config) fills
// what is still unset; the default server is https://127.0.0.1:6443. A plain http:// server
// (kubectl proxy, an edge's local API) needs no TLS settings. The edgeplane config file is YAML:
//   server: https://127.0.0.1:6443
//   token: abc123        # optional
//   namespace: edge      # optional default namespace
Result<ClientConfig> resolveClientConfig(const ConfigInputs& inputs);

// Parses the config file text (exposed for tests). `source` names the file in errors.
Result<ClientConfig> parseConfigFile(std::string_view text, const std::string& source);

// kubectl's --request-timeout: "0" (no timeout), a bare number of seconds, or a number with a
// unit: ms, s, m, h (e.g. "1m30s"). Zero means no timeout.
Result<std::chrono::milliseconds> parseTimeout(std::string_view text);

}  // namespace ep::edgectl
