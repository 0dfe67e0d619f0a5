#include "cloudcore/certs/cluster_pki.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/kubeconfig/kubeconfig.h"

namespace ep::certs {
namespace {

namespace fs = std::filesystem;

bool exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

bool isIpLiteral(const std::string& s) {
  return !s.empty() && (s.find(':') != std::string::npos ||
                        std::all_of(s.begin(), s.end(),
                                    [](char c) { return (c >= '0' && c <= '9') || c == '.'; }));
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

pki::CertRequest servingRequest(const std::string& cn, const ClusterPkiOptions& o) {
  pki::CertRequest req;
  req.commonName = cn;
  req.serverAuth = true;
  req.validity = o.servingValidity;
  std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
  if (auto h = hostName(); !h.empty()) names.push_back(h);
  for (const auto& s : o.sans) names.push_back(s);
  for (const auto& n : names) {
    if (n.empty() || n == "0.0.0.0" || n == "::") continue;
    auto& list = isIpLiteral(n) ? req.ipAddresses : req.dnsNames;
    if (std::find(list.begin(), list.end(), n) == list.end()) list.push_back(n);
  }
  return req;
}

Status fileError(const std::string& path, const Status& s, const std::string& what) {
  return Status(Code::kInvalid, path + ": " + s.message() + ". " + what);
}

const char* kFix =
    "Restore it from a backup, or move the data directory's pki/ aside to create a new cluster "
    "CA (every node must then join again)";

Result<pki::KeyAndCert> loadPair(const std::string& crt, const std::string& key) {
  for (const auto& p : {crt, key}) {
    if (!exists(p)) return Status(Code::kInvalid, p + " is missing. " + kFix);
  }
  auto c = pki::readFile(crt);
  if (!c) return fileError(crt, c.status(), kFix);
  auto k = pki::readFile(key);
  if (!k) return fileError(key, k.status(), kFix);
  if (auto s = pki::checkKeyMatchesCert(*k, *c); !s.isOk()) {
    return Status(Code::kInvalid,
                  key + " does not belong to " + crt + " (" + s.message() + "). " + kFix);
  }
  return pki::KeyAndCert{std::move(k).value(), std::move(c).value()};
}

Status writePair(const std::string& crt, const std::string& key, const pki::KeyAndCert& pair) {
  if (auto s = pki::writeFileAtomic(key, pair.keyPem, 0600); !s.isOk()) return s;
  return pki::writeFileAtomic(crt, pair.certPem, 0644);
}

// Loads a serving pair, or issues it again when it is missing a name or is near its end.
Result<pki::KeyAndCert> servingPair(const std::string& dir, const std::string& base,
                                    const std::string& cn, const pki::KeyAndCert& ca,
                                    const ClusterPkiOptions& o, bool firstStart) {
  const std::string crt = dir + "/" + base + ".crt";
  const std::string key = dir + "/" + base + ".key";
  pki::CertRequest req = servingRequest(cn, o);
  if (!firstStart) {
    auto pair = loadPair(crt, key);
    if (!pair) return pair.status();
    auto info = pki::parseCertificate(pair->certPem);
    if (!info) return fileError(crt, info.status(), kFix);
    // Issued by this CA? (Checked within its validity: an expired one is simply issued again.)
    auto midlife = info->notBefore + (info->notAfter - info->notBefore) / 2;
    if (auto s = pki::verifyCertificate(pair->certPem, ca.certPem, midlife); !s.isOk()) {
      return Status(Code::kInvalid,
                    crt + " was not issued by " + dir + "/ca.crt (" + s.message() + "). " + kFix);
    }
    bool namesOk = true;
    for (const auto& n : req.dnsNames) {
      namesOk = namesOk && std::count(info->dnsNames.begin(), info->dnsNames.end(), n);
    }
    for (const auto& n : req.ipAddresses) {
      namesOk = namesOk && std::count(info->ipAddresses.begin(), info->ipAddresses.end(), n);
    }
    auto lifetime = info->notAfter - info->notBefore;
    bool fresh = std::chrono::system_clock::now() < info->notBefore + lifetime * 8 / 10;
    if (namesOk && fresh) return pair;
    spdlog::info("pki: issuing {} again ({})", crt,
                 namesOk ? "80% of its lifetime has passed" : "new subject alternative names");
  }
  auto issued = pki::issueKeyAndCertificate(ca, req);
  if (!issued) return issued.status();
  if (auto s = writePair(crt, key, *issued); !s.isOk()) return s;
  return issued;
}

}  // namespace

Result<ClusterPki> loadOrCreateClusterPki(const ClusterPkiOptions& o) {
  const std::string dir = o.dataDir + "/pki";
  const std::string caCrt = dir + "/ca.crt";
  const std::string caKey = dir + "/ca.key";
  const bool firstStart = !exists(caCrt) && !exists(caKey);
  ClusterPki out;
  if (firstStart) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return unavailableError("cannot create " + dir + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
    auto ca = pki::createCa("edgeplane-ca", o.caValidity);
    if (!ca) return ca.status();
    if (auto s = writePair(caCrt, caKey, *ca); !s.isOk()) return s;
    out.ca = std::move(ca).value();
    spdlog::info("pki: created the cluster CA in {}", dir);
  } else {
    auto ca = loadPair(caCrt, caKey);
    if (!ca) return ca.status();
    out.ca = std::move(ca).value();
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) ::chmod(dir.c_str(), 0700);
  auto hash = pki::publicKeyHash(out.ca.certPem);
  if (!hash) return fileError(caCrt, hash.status(), kFix);
  out.caHash = *hash;
  auto api = servingPair(dir, "apiserver", "edgeplane-apiserver", out.ca, o, firstStart);
  if (!api) return api.status();
  out.apiServing = std::move(api).value();
  auto tunnel = servingPair(dir, "tunnel", "edgeplane-cloudhub", out.ca, o, firstStart);
  if (!tunnel) return tunnel.status();
  out.tunnelServing = std::move(tunnel).value();

  const std::string ticketPath = dir + "/tunnel-ticket.key";
  if (!exists(ticketPath)) {
    auto key = pki::randomBytes(80);
    if (!key) return key.status();
    if (auto s = pki::createFileExclusive(ticketPath, *key, 0600);
        !s.isOk() && s.code() != Code::kAlreadyExists) {
      return s;
    }
  }
  auto ticketKey = pki::readFile(ticketPath);
  if (!ticketKey) return fileError(ticketPath, ticketKey.status(), kFix);
  if (ticketKey->size() != 80) {
    return invalidError(ticketPath + ": must hold 80 bytes, has " +
                        std::to_string(ticketKey->size()) +
                        " (delete it to make a new one: nodes then make one full handshake)");
  }
  out.tunnelTicketKey = std::move(ticketKey).value();

  out.adminKubeconfigPath = o.dataDir + "/admin.kubeconfig";
  if (!exists(out.adminKubeconfigPath)) {
    pki::CertRequest req;
    req.commonName = "kubernetes-admin";
    req.organizations = {"system:masters"};
    req.clientAuth = true;
    req.validity = o.adminValidity;
    auto admin = pki::issueKeyAndCertificate(out.ca, req);
    if (!admin) return admin.status();
    kubeconfig::RenderInput in;
    in.server = o.apiServerUrl;
    in.caPem = out.ca.certPem;
    in.clientCertPem = admin->certPem;
    in.clientKeyPem = admin->keyPem;
    if (auto s = pki::writeFileAtomic(out.adminKubeconfigPath, kubeconfig::render(in), 0600);
        !s.isOk()) {
      return s;
    }
    spdlog::info("pki: wrote {} (cluster-admin credentials)", out.adminKubeconfigPath);
  }
  return out;
}

}  // namespace ep::certs
