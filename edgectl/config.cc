#include "edgectl/config.h"

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/kubeconfig/kubeconfig.h"
#include "common/yaml/config_file.h"
#include "nlohmann/json.hpp"

namespace ep::edgectl {

using nlohmann::json;

Result<ClientConfig> parseConfigFile(std::string_view text, const std::string& source) {
  auto doc = yaml::parseConfigText(text, source);
  if (!doc) return invalidError("error loading config file " + doc.status().message());
  ClientConfig cfg;
  const std::map<std::string, std::string*> keys = {
      {"server", &cfg.server}, {"token", &cfg.token}, {"namespace", &cfg.defaultNamespace}};
  for (auto it = doc->begin(); it != doc->end(); ++it) {
    auto key = keys.find(it.key());
    if (key == keys.end()) continue;  // ignore the rest
    if (!it.value().is_string()) {
      return invalidError("error loading config file " + source + ": \"" + it.key() +
                          "\" must be a string");
    }
    *key->second = it.value().get<std::string>();
  }
  return cfg;
}

namespace {

bool readable(const std::string& path) {
  return !path.empty() && ::access(path.c_str(), R_OK) == 0;
}

Result<std::string> readPem(const std::string& path, const char* flag) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return invalidError(std::string(flag) + ": cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The kubeconfig to use: "" when none applies.
Result<std::string> kubeconfigPath(const ConfigInputs& in) {
  if (!in.kubeconfigFlag.empty()) {
    if (!readable(in.kubeconfigFlag)) {
      return invalidError("--kubeconfig: cannot read " + in.kubeconfigFlag);
    }
    return in.kubeconfigFlag;
  }
  if (!in.envKubeconfig.empty()) {
    std::string_view list = in.envKubeconfig;
    while (!list.empty()) {
      size_t colon = list.find(':');
      std::string p(list.substr(0, colon));
      if (readable(p)) return p;
      if (colon == std::string_view::npos) break;
      list.remove_prefix(colon + 1);
    }
  }
  if (!in.home.empty() && readable(in.home + "/.kube/config")) return in.home + "/.kube/config";
  if (readable(in.systemKubeconfig)) return in.systemKubeconfig;
  return std::string();
}

}  // namespace

Result<ClientConfig> resolveClientConfig(const ConfigInputs& in) {
  namespace fs = std::filesystem;
  ClientConfig kube;
  auto kubePath = kubeconfigPath(in);
  if (!kubePath) return kubePath.status();
  if (!kubePath->empty()) {
    auto creds = kubeconfig::load(*kubePath, in.contextFlag);
    if (!creds) return invalidError("error loading kubeconfig: " + creds.status().message());
    kube.server = creds->server;
    kube.token = creds->token;
    kube.defaultNamespace = creds->ns;
    kube.caPem = creds->caPem;
    kube.clientCertPem = creds->clientCertPem;
    kube.clientKeyPem = creds->clientKeyPem;
    kube.tlsServerName = creds->tlsServerName;
    kube.insecureSkipVerify = creds->insecureSkipVerify;
    kube.kubeconfigPath = *kubePath;
  } else if (!in.contextFlag.empty()) {
    return invalidError("--context: no kubeconfig found (use --kubeconfig or $KUBECONFIG)");
  }
  std::string path = in.configFlag;
  bool required = !path.empty();
  if (path.empty() && !in.envConfig.empty()) {
    path = in.envConfig;
    required = true;
  }
  if (path.empty() && !in.home.empty()) path = in.home + "/.edgeplane/config";
  ClientConfig file;
  std::error_code ec;
  if (!path.empty() && fs::exists(path, ec)) {
    std::ifstream f(path);
    if (!f) return invalidError("cannot read config file " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    auto parsed = parseConfigFile(ss.str(), path);
    if (!parsed) return parsed.status();
    file = std::move(parsed).value();
  } else if (required) {
    return invalidError("config file " + path + " does not exist");
  }
  ClientConfig out = kube;
  out.server = !in.serverFlag.empty()  ? in.serverFlag
               : !in.envServer.empty() ? in.envServer
               : !kube.server.empty()  ? kube.server
               : !file.server.empty()  ? file.server
                                       : std::string(kDefaultServer);
  out.token = !in.tokenFlag.empty()  ? in.tokenFlag
              : !in.envToken.empty() ? in.envToken
              : !kube.token.empty()  ? kube.token
                                     : file.token;
  out.defaultNamespace =
      !kube.defaultNamespace.empty() ? kube.defaultNamespace : file.defaultNamespace;
  if (!in.caFlag.empty()) {
    auto pem = readPem(in.caFlag, "--certificate-authority");
    if (!pem) return pem.status();
    out.caPem = std::move(pem).value();
  }
  if (!in.clientCertFlag.empty() || !in.clientKeyFlag.empty()) {
    if (in.clientCertFlag.empty() || in.clientKeyFlag.empty()) {
      return invalidError("--client-certificate and --client-key must be given together");
    }
    auto cert = readPem(in.clientCertFlag, "--client-certificate");
    if (!cert) return cert.status();
    auto key = readPem(in.clientKeyFlag, "--client-key");
    if (!key) return key.status();
    out.clientCertPem = std::move(cert).value();
    out.clientKeyPem = std::move(key).value();
  }
  if (in.insecureFlag) out.insecureSkipVerify = true;
  return out;
}

Result<std::chrono::milliseconds> parseTimeout(std::string_view text) {
  auto bad = [&] {
    return invalidError("invalid timeout value \"" + std::string(text) +
                        "\": use a number with a unit, e.g. 1s, 2m, 3h");
  };
  if (text.empty()) return bad();
  bool allDigits = true;
  for (char c : text) allDigits = allDigits && std::isdigit(static_cast<unsigned char>(c));
  if (allDigits) {
    if (text.size() > 9) return bad();
    return std::chrono::milliseconds(std::stoll(std::string(text)) * 1000);
  }
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
      ++i;
    }
    if (i == start || i - start > 12) return bad();
    double value = std::stod(std::string(text.substr(start, i - start)));
    size_t unitStart = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unitStart, i - unitStart);
    if (unit == "ms") {
      total += value;
    } else if (unit == "s") {
      total += value * 1000;
    } else if (unit == "m") {
      total += value * 60'000;
    } else if (unit == "h") {
      total += value * 3'600'000;
    } else {
      return bad();
    }
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

}  // namespace ep::edgectl
