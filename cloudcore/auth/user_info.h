#pragma once

#include <string>
#include <vector>

namespace ep::auth {

// Well-known names, as in Kubernetes.
inline constexpr const char* kGroupMasters = "system:masters";
inline constexpr const char* kGroupAuthenticated = "system:authenticated";
inline constexpr const char* kGroupUnauthenticated = "system:unauthenticated";
inline constexpr const char* kGroupNodes = "system:nodes";
inline constexpr const char* kUserAnonymous = "system:anonymous";
inline constexpr const char* kNodeUserPrefix = "system:node:";
inline constexpr const char* kServiceAccountUserPrefix = "system:serviceaccount:";
inline constexpr const char* kGroupServiceAccounts = "system:serviceaccounts";

// Who made a request (Kubernetes user.Info). A value type; thread-compatible.
struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
  // How the user was authenticated: "x509", "token", "serviceaccount", "bootstrap", "anonymous".
  std::string method;

  bool inGroup(const std::string& g) const {
    for (const auto& x : groups) {
      if (x == g) return true;
    }
    return false;
  }
  bool isAnonymous() const { return name == kUserAnonymous; }
};

// The node name of a node identity ("system:node:NAME" in group system:nodes), else "".
inline std::string nodeNameOf(const UserInfo& u) {
  const std::string prefix = kNodeUserPrefix;
  if (u.name.size() <= prefix.size() || u.name.compare(0, prefix.size(), prefix) != 0) return {};
  if (!u.inGroup(kGroupNodes)) return {};
  return u.name.substr(prefix.size());
}

}  // namespace ep::auth
