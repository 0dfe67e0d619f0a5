// Fuzz target for the credential parsers that take text from outside: join tokens (edgecore
// --token, the cloud's Join RPC), kubeconfig files (edgectl) and the static token CSV
// (cloudcore --token-auth-file). The first byte picks the parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cloudcore/auth/authenticator.h"
#include "common/kubeconfig/kubeconfig.h"
#include "common/pki/join_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto t = ep::pki::parseJoinToken(text);
      if (t.isOk()) {
        auto again = ep::pki::parseJoinToken(t->toString());
        if (!again.isOk() || again->id != t->id || again->caHash != t->caHash) __builtin_trap();
      }
      (void)ep::pki::parseBootstrapToken(text);
      break;
    }
    case 1:
      // File references point nowhere readable: only the parser runs.
      (void)ep::kubeconfig::parse(text, {.source = "fuzz", .baseDir = "/nonexistent"});
      break;
    case 2:
      (void)ep::auth::StaticTokens::parse(text, "fuzz");
      break;
    default:
      (void)ep::auth::splitCsvLine(text);
      break;
  }
  return 0;
}
