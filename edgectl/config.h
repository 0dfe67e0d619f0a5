#pragma once

// Where edgectl finds its server: flags, environment and the config file. Pure functions (the
// file read aside); thread-safe.

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ep::edgectl {

inline constexpr std::string_view kDefaultServer = "http://127.0.0.1:6443";

struct ClientConfig {
  std::string server;            // base URL of cloudcore's API
  std::string token;             // bearer token, may be empty
  std::string defaultNamespace;  // "" means "default"
};

struct ConfigInputs {
  std::string serverFlag;  // --server
  std::string tokenFlag;   // --token
  std::string configFlag;  // --config (must exist when given)
  std::string envServer;   // $EDGECTL_SERVER
  std::string envToken;    // $EDGECTL_TOKEN
  std::string envConfig;   // $EDGECTL_CONFIG
  std::string home;        // $HOME, for ~/.edgeplane/config
};

// Precedence, per setting: flag, then environment, then the config file (--config FILE, else
// $EDGECTL_CONFIG, else ~/.edgeplane/config when it exists), then the default server
// http://127.0.0.1:6443. The config file is YAML:
//   server: http://127.0.0.1:6443
//   token: abc123        # optional
//   namespace: edge      # optional default namespace
Result<ClientConfig> resolveClientConfig(const ConfigInputs& inputs);

// Parses the config file text (exposed for tests). `source` names the file in errors.
Result<ClientConfig> parseConfigFile(std::string_view text, const std::string& source);

// kubectl's --request-timeout: "0" (no timeout), a bare number of seconds, or a number with a
// unit: ms, s, m, h (e.g. "1m30s"). Zero means no timeout.
Result<std::chrono::milliseconds> parseTimeout(std::string_view text);

}  // namespace ep::edgectl
