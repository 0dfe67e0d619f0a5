#include "common/kubeconfig/kubeconfig.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/api/base64.h"
#include "common/yaml/yaml.h"

namespace ep::kubeconfig {

using Json = nlohmann::json;

namespace {

constexpr size_t kMaxKubeconfigBytes = 1 << 20;

Result<std::string> readLimited(const std::string& path, size_t limit) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return invalidError("cannot read " + path + ": " + ec.message());
  if (size > limit) {
    return invalidError(path + " is larger than " + std::to_string(limit) + " bytes");
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) return invalidError("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Finds the entry named `name` in the list `listKey` and returns its `itemKey` object.
Result<const Json*> namedEntry(const Json& doc, const char* listKey, const char* itemKey,
                               const std::string& name, const std::string& source) {
  std::string kind = std::string(listKey);
  kind.pop_back();  // "clusters" -> "cluster"
  auto it = doc.find(listKey);
  if (it == doc.end() || it->is_null()) {
    return invalidError(source + ": " + kind + " \"" + name + "\" not found");
  }
  if (!it->is_array()) return invalidError(source + ": " + listKey + ": must be a list");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& e = (*it)[i];
    std::string where = source + ": " + listKey + "[" + std::to_string(i) + "]";
    if (!e.is_object()) return invalidError(where + ": must be a mapping");
    auto n = e.find("name");
    if (n == e.end() || !n->is_string()) return invalidError(where + ".name: must be a string");
    if (n->get<std::string>() != name) continue;
    auto item = e.find(itemKey);
    if (item == e.end() || item->is_null()) {
      static const Json kEmpty = Json::object();
      return &kEmpty;
    }
    if (!item->is_object()) {
      return invalidError(where + "." + itemKey + ": must be a mapping");
    }
    return &*item;
  }
  return invalidError(source + ": " + kind + " \"" + name + "\" not found");
}

Result<std::string> stringField(const Json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return invalidError(where + "." + key + ": must be a string");
  return it->get<std::string>();
}

// PEM from `<key>-data` (base64) or the file named by `<key>`.
Result<std::string> material(const Json& obj, const std::string& key, const std::string& where,
                             const ParseOptions& o) {
  auto data = stringField(obj, (key + "-data").c_str(), where);
  if (!data) return data.status();
  if (!data->empty()) {
    std::string compact;
    for (char c : *data) {
      if (c != '\n' && c != '\r' && c != ' ') compact.push_back(c);
    }
    auto decoded = api::base64Decode(compact);
    if (!decoded) return invalidError(where + "." + key + "-data: invalid base64");
    return std::move(decoded).value();
  }
  auto file = stringField(obj, key.c_str(), where);
  if (!file) return file.status();
  if (file->empty()) return std::string();
  std::string path = *file;
  if (!path.empty() && path[0] != '/' && !o.baseDir.empty()) path = o.baseDir + "/" + path;
  auto content = readLimited(path, o.maxFileBytes);
  if (!content) return invalidError(where + "." + key + ": " + content.status().message());
  return std::move(content).value();
}

}  // namespace

Result<Credentials> parse(std::string_view text, const ParseOptions& o) {
  const std::string source = o.source.empty() ? "kubeconfig" : o.source;
  if (text.size() > kMaxKubeconfigBytes) {
    return invalidError(source + ": larger than " + std::to_string(kMaxKubeconfigBytes) + " bytes");
  }
  auto parsed = yaml::parseYamlDocument(text);
  if (!parsed) return invalidError(source + ": " + parsed.status().message());
  const Json& doc = *parsed;
  if (doc.is_null()) return invalidError(source + ": empty kubeconfig");
  if (!doc.is_object()) return invalidError(source + ": expected a mapping");
  std::string context = o.context;
  if (context.empty()) {
    auto cur = stringField(doc, "current-context", source);
    if (!cur) return cur.status();
    context = *cur;
  }
  if (context.empty()) return invalidError(source + ": current-context is not set");
  auto ctx = namedEntry(doc, "contexts", "context", context, source);
  if (!ctx) return ctx.status();
  const std::string ctxWhere = source + ": context \"" + context + "\"";
  auto clusterName = stringField(**ctx, "cluster", ctxWhere);
  if (!clusterName) return clusterName.status();
  auto userName = stringField(**ctx, "user", ctxWhere);
  if (!userName) return userName.status();
  auto ns = stringField(**ctx, "namespace", ctxWhere);
  if (!ns) return ns.status();
  if (clusterName->empty()) return invalidError(ctxWhere + ".cluster: must be set");

  Credentials out;
  out.ns = *ns;
  auto cluster = namedEntry(doc, "clusters", "cluster", *clusterName, source);
  if (!cluster) return cluster.status();
  const std::string cWhere = source + ": cluster \"" + *clusterName + "\"";
  auto server = stringField(**cluster, "server", cWhere);
  if (!server) return server.status();
  out.server = *server;
  auto ca = material(**cluster, "certificate-authority", cWhere, o);
  if (!ca) return ca.status();
  out.caPem = std::move(ca).value();
  if (auto it = (*cluster)->find("insecure-skip-tls-verify"); it != (*cluster)->end()) {
    if (!it->is_boolean() && !it->is_null()) {
      return invalidError(cWhere + ".insecure-skip-tls-verify: must be true or false");
    }
    out.insecureSkipVerify = it->is_boolean() && it->get<bool>();
  }
  auto sni = stringField(**cluster, "tls-server-name", cWhere);
  if (!sni) return sni.status();
  out.tlsServerName = *sni;

  if (!userName->empty()) {
    auto user = namedEntry(doc, "users", "user", *userName, source);
    if (!user) return user.status();
    const std::string uWhere = source + ": user \"" + *userName + "\"";
    auto cert = material(**user, "client-certificate", uWhere, o);
    if (!cert) return cert.status();
    auto key = material(**user, "client-key", uWhere, o);
    if (!key) return key.status();
    out.clientCertPem = std::move(cert).value();
    out.clientKeyPem = std::move(key).value();
    if (out.clientCertPem.empty() != out.clientKeyPem.empty()) {
      return invalidError(uWhere + ": client-certificate and client-key must be set together");
    }
    auto token = stringField(**user, "token", uWhere);
    if (!token) return token.status();
    out.token = *token;
    if (out.token.empty()) {
      auto tokenFile = stringField(**user, "tokenFile", uWhere);
      if (!tokenFile) return tokenFile.status();
      if (!tokenFile->empty()) {
        std::string path = *tokenFile;
        if (path[0] != '/' && !o.baseDir.empty()) path = o.baseDir + "/" + path;
        auto t = readLimited(path, 64 * 1024);
        if (!t) return invalidError(uWhere + ".tokenFile: " + t.status().message());
        out.token = *t;
        while (!out.token.empty() && std::isspace(static_cast<unsigned char>(out.token.back()))) {
          out.token.pop_back();
        }
      }
    }
  }
  return out;
}

Result<Credentials> load(const std::string& path, const std::string& context) {
  auto text = readLimited(path, kMaxKubeconfigBytes);
  if (!text) return text.status();
  ParseOptions o;
  o.source = path;
  o.baseDir = std::filesystem::path(path).parent_path().string();
  o.context = context;
  return parse(*text, o);
}

std::string render(const RenderInput& in) {
  const std::string context =
      in.userName.empty() ? in.clusterName : in.userName + "@" + in.clusterName;
  std::string out;
  out += "apiVersion: v1\nkind: Config\nclusters:\n";
  out += "- name: " + in.clusterName + "\n  cluster:\n";
  out += "    server: " + in.server + "\n";
  if (!in.caPem.empty()) {
    out += "    certificate-authority-data: " + api::base64Encode(in.caPem) + "\n";
  }
  out += "contexts:\n- name: " + context + "\n  context:\n";
  out += "    cluster: " + in.clusterName + "\n";
  if (!in.userName.empty()) out += "    user: " + in.userName + "\n";
  out += "current-context: " + context + "\n";
  if (in.userName.empty()) return out + "preferences: {}\nusers: []\n";
  out += "preferences: {}\nusers:\n- name: " + in.userName + "\n  user:\n";
  if (!in.clientCertPem.empty()) {
    out += "    client-certificate-data: " + api::base64Encode(in.clientCertPem) + "\n";
    out += "    client-key-data: " + api::base64Encode(in.clientKeyPem) + "\n";
  }
  if (!in.token.empty()) out += "    token: " + in.token + "\n";
  return out;
}

}  // namespace ep::kubeconfig
