#include "common/tlsclient/client_tls.h"

// wolfSSL's build options must precede its OpenSSL-compatible headers.
#include <wolfssl/options.h>
// clang-format off
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
// clang-format on
#include <wolfssl/wolfcrypt/ecc.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <optional>

#include "common/pki/edge_pki.h"
#include "common/pki/openssl_ptr.h"

namespace ep::tlsclient {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

using BioPtr = pki::Ptr<BIO, BIO_free>;
using X509Ptr = pki::Ptr<X509, X509_free>;
using PkeyPtr = pki::Ptr<EVP_PKEY, EVP_PKEY_free>;

// Encrypted keys are refused instead of OpenSSL's default of prompting on the terminal.
int noPassword(char*, int, int, void*) {
  return -1;
}

// The reason of the thread's last OpenSSL error ("no start line"); clears the queue.
std::string takeOpensslError(const char* otherwise) {
  const unsigned long e = ERR_peek_last_error();
  const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return reason != nullptr ? reason : otherwise;
}

BioPtr memBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in `pem` (text around the PEM blocks is skipped), or what is wrong with it.
std::optional<std::string> readCertificates(const std::string& pem, std::vector<X509Ptr>* out) {
  ERR_clear_error();
  auto bio = memBio(pem);
  if (!bio) return takeOpensslError("out of memory");
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, &noPassword, nullptr)) {
    out->emplace_back(x);
  }
  // The loop ends at the end of the text ("no start line") or at a block it cannot read.
  const unsigned long e = ERR_peek_last_error();
  if (!out->empty() && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
    return std::nullopt;
  }
  if (out->empty() && (e == 0 || ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
    ERR_clear_error();
    return "no PEM certificate found";
  }
  return "cannot read a PEM certificate: " + takeOpensslError("unknown error");
}

// Looks for an unencrypted private key block in `pem` without decoding it, so that what is wrong
// with it can be said plainly (OpenSSL's decoders answer "unsupported" for most problems).
std::optional<std::string> findPrivateKeyBlock(const std::string& pem) {
  ERR_clear_error();
  auto bio = memBio(pem);
  if (!bio) return takeOpensslError("out of memory");
  while (true) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      const unsigned long e = ERR_peek_last_error();
      if (e == 0 || ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return "no PEM private key found";
      }
      return "cannot read a PEM block: " + takeOpensslError("unknown error");
    }
    const std::string_view type(name);
    const bool encrypted = type == "ENCRYPTED PRIVATE KEY" ||
                           std::string_view(header).find("ENCRYPTED") != std::string_view::npos;
    const bool key = type.ends_with("PRIVATE KEY");
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_cleanse(data, static_cast<size_t>(len));
    OPENSSL_free(data);
    if (encrypted) return "the private key is encrypted (not supported)";
    if (key) return std::nullopt;
  }
}

// A host name or IP address literal that can be checked against a certificate: printable
// ASCII, no spaces, at most 253 characters.
bool usableServerName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return false;
  }
  return true;
}

// Why a server certificate did not verify, from wolfSSL's error code; "" for other errors.
std::string verifyReason(int code) {
  switch (code) {
    case ASN_NO_SIGNER_E:
      return "unable to get local issuer certificate";
    case ASN_SELF_SIGNED_E:
      return "self-signed certificate";
    case ASN_AFTER_DATE_E:
      return "certificate has expired";
    case ASN_BEFORE_DATE_E:
      return "certificate is not yet valid";
    case ASN_SIG_CONFIRM_E:
      return "certificate signature failure";
    case DOMAIN_NAME_MISMATCH:
      return "hostname mismatch";
    case IPADDR_MISMATCH:
      return "IP address mismatch";
    // X509_V_ERR_* values, as wolfSSL's verify result gives them (it has no texts for them).
    case 2:
      return "unable to get issuer certificate";
    case 7:
      return "certificate signature failure";
    case 9:
      return "certificate is not yet valid";
    case 10:
      return "certificate has expired";
    case 18:
      return "self-signed certificate";
    case 19:
      return "self-signed certificate in certificate chain";
    case 20:
      return "unable to get local issuer certificate";
    case 21:
      return "unable to verify the first certificate";
    case 62:
      return "hostname mismatch";
    case 64:
      return "IP address mismatch";
    default:
      return code > 0 ? "verification error " + std::to_string(code) : "";
  }
}

}  // namespace

Result<Config> makeConfig(const Options& o, const std::string& defaultServerName) {
  const Options::Names& n = o.names;
  Config out;
  auto invalid = [](std::string message) -> Result<Config> {
    return invalidError(std::move(message));
  };
  out.verify = !o.insecureSkipVerify;
  out.serverName = !o.serverName.empty() ? o.serverName : defaultServerName;
  out.serverNameField = n.serverName;
  if (out.verify && out.serverName.empty()) {
    return invalid(n.serverName + ": required for a unix socket target (or insecureSkipVerify)");
  }
  if (o.certPem.empty() != o.keyPem.empty()) {
    return invalid(o.certPem.empty() ? n.cert + ": required with " + n.key
                                     : n.key + ": required with " + n.cert);
  }

  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (raw == nullptr) {
    return invalid("tls: cannot create an OpenSSL context: " + takeOpensslError("unknown error"));
  }
  // Owns `raw` from here on.
  out.context = std::make_shared<asio::ssl::context>(raw);
  SSL_CTX* ctx = out.context->native_handle();
  SSL_CTX_set_min_proto_version(ctx, o.tls13Only ? TLS1_3_VERSION : TLS1_2_VERSION);
  // TLS 1.2 suites HTTP/2 admits (RFC 7540 9.2.2: ephemeral key exchange, AEAD); TLS 1.3's
  // are all AEAD.
  // wolfSSL takes both in one list (TLS 1.3 suites by its names).
  // ChaCha20-Poly1305 first: wolfSSL as Debian builds it (and most edge CPUs without AES
  // instructions) runs it 2.6x faster than AES-GCM (460 vs 174 MiB/s on the CI machine,
  // docs/performance.md "Models"); servers honour the client's order unless told otherwise.
  SSL_CTX_set_cipher_list(ctx,
                          "TLS13-CHACHA20-POLY1305-SHA256:"
                          "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384");
  // wolfSSL has no renegotiation unless built with it (Debian's is not); no compression.
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (!o.alpn.empty()) {
    std::string wire;
    for (const auto& p : o.alpn) {
      if (p.empty() || p.size() > 255) return invalid("tls: bad ALPN protocol \"" + p + "\"");
      wire += static_cast<char>(p.size());
      wire += p;
    }
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0) {
      return invalid("tls: cannot offer ALPN " + o.alpn.front() + ": " +
                     takeOpensslError("unknown error"));
    }
  }

  if (out.verify) {
    if (o.caPem.empty()) return invalid(n.ca + ": required unless " + n.insecure);
    std::vector<X509Ptr> cas;
    if (auto e = readCertificates(o.caPem, &cas)) return invalid(n.ca + ": " + *e);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (auto& ca : cas) {
      if (X509_STORE_add_cert(store, ca.get()) != 1) {
        const unsigned long e = ERR_peek_last_error();
        // The same anchor twice is harmless.
        if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
          return invalid(n.ca + ": " + takeOpensslError("cannot add a certificate"));
        }
        ERR_clear_error();
      }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    // The server certificate must name serverName: set on each connection (startTls).
    if (!usableServerName(out.serverName)) {
      std::string shown = out.serverName;
      for (char& c : shown) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
          c = '?';
        }
      }
      return invalid(n.serverName + ": not a usable host name or IP address: \"" + shown + "\"");
    }
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }

  if (!o.certPem.empty()) {
    std::vector<X509Ptr> chain;
    if (auto e = readCertificates(o.certPem, &chain)) return invalid(n.cert + ": " + *e);
    if (SSL_CTX_use_certificate(ctx, chain[0].get()) != 1) {
      return invalid(n.cert + ": " + takeOpensslError("unusable certificate"));
    }
    for (size_t i = 1; i < chain.size(); ++i) {
      if (SSL_CTX_add1_chain_cert(ctx, chain[i].get()) != 1) {
        return invalid(n.cert + ": " + takeOpensslError("unusable chain certificate"));
      }
    }
    if (auto e = findPrivateKeyBlock(o.keyPem)) return invalid(n.key + ": " + *e);
    ERR_clear_error();
    auto bio = memBio(o.keyPem);
    PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, &noPassword, nullptr) : nullptr);
    if (!key) {
      return invalid(n.key +
                     ": cannot decode the private key: " + takeOpensslError("unknown error"));
    }
    // wolfSSL's key checks do not compare EC keys: the edge PKI proves it by a signature.
    if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 ||
        !pki::edge::checkKeyMatchesCert(o.keyPem, o.certPem).isOk()) {
      ERR_clear_error();
      return invalid(n.key + ": does not match the certificate in " + n.cert);
    }
  }
  ERR_clear_error();
  return out;
}

Status prepareConnection(WOLFSSL* ssl, const Config& config) {
  const std::string& name = config.serverName;
  error_code notIp;
  asio::ip::make_address(name, notIp);
  // SNI carries host names only (RFC 6066).
  if (!name.empty() && notIp) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (config.verify) {
    // The server certificate must name serverName (checked in the handshake).
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = notIp ? X509_VERIFY_PARAM_set1_host(param, name.data(), name.size())
                         : X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    if (ok != 1) {
      ERR_clear_error();
      return invalidError(config.serverNameField + ": cannot check \"" + name + "\"");
    }
  }
  return Status::ok();
}

std::string describeError(WOLFSSL* ssl, const error_code& ec, bool verify) {
  if (ssl == nullptr || (ec.category() != asio::error::get_ssl_category() &&
                         ec.category() != asio::ssl::error::get_stream_category())) {
    return ec.message();
  }
  // asio reports wolfSSL failures as "unexpected result": the reason is wolfSSL's own.
  std::string s = ec.message();
  const long verifyResult = SSL_get_verify_result(ssl);
  const int err = wolfSSL_get_error(ssl, 0);
  if (verify && verifyResult != X509_V_OK) {
    s = "certificate verify failed (" + verifyReason(static_cast<int>(verifyResult)) + ")";
  } else if (verify && verifyReason(err) != "") {
    s = "certificate verify failed (" + verifyReason(err) + ")";
  } else if (err == FATAL_ERROR) {  // the server sent an alert: say which
    WOLFSSL_ALERT_HISTORY h{};
    wolfSSL_get_alert_history(ssl, &h);
    const char* alert = wolfSSL_alert_desc_string_long(h.last_rx.code);  // null when unknown
    s = std::string("the server sent the TLS alert \"") +
        (alert != nullptr ? alert : std::to_string(h.last_rx.code)) + "\"";
  } else if (err < 0) {
    const char* reason = wolfSSL_ERR_reason_error_string(err);  // null when unknown
    s = reason != nullptr ? reason : "TLS error " + std::to_string(err);
  }
  return s;
}

void releaseHandshakeMemory() {
  wc_ecc_fp_free();
}

}  // namespace ep::tlsclient
