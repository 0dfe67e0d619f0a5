#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/api/models.h"
#include "common/status.h"

namespace ep::oci {

// Credentials presented to a registry (from the Secret a Model's spec.credentialName names).
// Empty = anonymous.
struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string identityToken;  // an OAuth2 refresh token (docker login's identitytoken)
  std::string registryToken;  // a bearer token sent as is
  bool empty() const {
    return username.empty() && password.empty() && identityToken.empty() && registryToken.empty();
  }
};

// What a model artifact's manifest says (docs/models.md, "Models from an OCI registry"): the
// model file is the manifest's only layer, or the first one carrying an
// org.opencontainers.image.title annotation (as `oras push` writes it).
struct OciArtifact {
  std::string manifestDigest;  // sha256 of the manifest bytes received
  std::string digest;          // the model file's blob digest ("sha256:HEX")
  uint64_t size = 0;           // its size in bytes, from the manifest
  std::string file;            // its title annotation when a valid file name, else "model"
  std::string mediaType;       // the layer's media type
};

// A manifest or index as received: its bytes, their digest and the media type it declares.
struct OciManifest {
  std::string body;
  std::string digest;     // "sha256:HEX" of body
  std::string mediaType;  // the body's mediaType field, else the response's Content-Type
};

// The seam between a registry's HTTP API (OCI distribution spec) and its users: the edge's model
// puller and cloudcore's import of edgecore binaries from images (docs/upgrades.md). Errors
// are values whose messages name the registry, the request and its answer ("registry
// 127.0.0.1:5443: models/digits:v9: 404 Not Found: MANIFEST_UNKNOWN manifest unknown").
// Implementations are used from one thread at a time.
class OciRegistry {
 public:
  virtual ~OciRegistry() = default;
  // A predicate checked between reads: when it answers true the request in progress stops with
  // kUnavailable (the puller's stop()). Set once, before use.
  void setCancel(std::function<bool()> cancel) { cancel_ = std::move(cancel); }
  // Fetches and checks the manifest `ref` names: within 4 MiB, hashing to ref.digest when the
  // reference is a digest, an image manifest (not an index), naming a sha256 layer.
  virtual Result<OciArtifact> resolve(const api::OciRef& ref, const RegistryCredentials& creds) = 0;
  // Fetches the manifest or index `ref` names (within 4 MiB; hashing to ref.digest when the
  // reference is a digest), unparsed.
  virtual Result<OciManifest> manifest(const api::OciRef& ref,
                                       const RegistryCredentials& creds) = 0;
  // Streams the blob artifact.digest names (any blob of ref's repository) from byte `offset` (a
  // Range request) to onData(position, bytes) in order. A registry that ignores the Range answers
  // from 0: the first call's position says where the data starts. onData returning an error stops
  // the transfer with that error.
  virtual Status fetch(const api::OciRef& ref, const RegistryCredentials& creds,
                       const OciArtifact& artifact, uint64_t offset,
                       const std::function<Status(uint64_t, std::string_view)>& onData) = 0;

 protected:
  bool cancelled() const { return cancel_ && cancel_(); }

 private:
  std::function<bool()> cancel_;
};

struct HttpsOciRegistryOptions {
  // Per-registry trust, as containerd and Docker keep it: DIR/HOST[:PORT]/ca.crt, or the
  // `ca = "FILE"` of DIR/HOST[:PORT]/hosts.toml (containerd's format). Registries without
  // one are checked against caBundle.
  std::string certsDir = "/etc/containerd/certs.d";
  std::string caBundle = "/etc/ssl/certs/ca-certificates.crt";
  // Connecting, each response's headers and each read of a body.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  std::string userAgent = "edgecore-models/1";
  // Ends the error of a registry that asks for credentials none were given for.
  std::string credentialsHint = "name a Secret with them in the Model's spec.credentialName";
};

// The real registry client: HTTPS only (TLS 1.2+ on wolfSSL, the server's certificate always
// checked), HTTP/1.1, the registry's challenge answered with Basic credentials or a bearer token
// from its token service (Docker's token protocol: realm, service, scope; GET with Basic
// credentials or POST with a refresh token; the realm must be https), redirects of blob requests
// followed when https (without the registry's Authorization when they leave its host). Tokens
// are kept per registry, repository and credentials. docker.io is reached at
// registry-1.docker.io, its one-component repositories under library/.
std::unique_ptr<OciRegistry> makeHttpsOciRegistry(HttpsOciRegistryOptions options);

// Parses a WWW-Authenticate header: the scheme ("Basic", "Bearer", lower-cased) and its
// parameters (names lower-cased, quoted values unescaped). Exposed for tests and the fuzzer.
struct AuthChallenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};
std::optional<AuthChallenge> parseAuthChallenge(std::string_view header);

// The model-file layer of a manifest's JSON text (see OciArtifact), or kInvalid naming what is
// wrong. Exposed for tests and the fuzzer.
Result<OciArtifact> parseModelManifest(std::string_view body);

}  // namespace ep::oci
