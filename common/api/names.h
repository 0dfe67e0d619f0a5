#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ep::api {

// Kubernetes name and key syntax checks. Each returns the Kubernetes error details for the value
// (worded as apimachinery's validation package words them); an empty vector means valid.
// Pure functions, thread-safe.

// RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters (namespace, container,
// volume names).
std::vector<std::string> checkDns1123Label(std::string_view value);
// RFC 1035 label: [a-z]([-a-z0-9]*[a-z0-9])?, at most 63 characters (Service names).
std::vector<std::string> checkDns1035Label(std::string_view value);
// RFC 1123 subdomain: dot-separated labels, at most 253 characters (most object names).
std::vector<std::string> checkDns1123Subdomain(std::string_view value);
// Qualified name: optional DNS-subdomain prefix and '/', then a name of at most 63 characters
// matching ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] (label keys, annotation keys, finalizers).
std::vector<std::string> checkQualifiedName(std::string_view value);
// Label value: empty, or at most 63 characters of the qualified-name name-part syntax.
std::vector<std::string> checkLabelValue(std::string_view value);
// ConfigMap/Secret data key: [-._a-zA-Z0-9]+, at most 253 characters, not "." and no ".." prefix.
std::vector<std::string> checkConfigKey(std::string_view value);
// IANA service name (container port names): at most 15 characters of [-a-z0-9], one letter at
// least, no leading, trailing or doubled hyphen.
std::vector<std::string> checkPortName(std::string_view value);
// Environment variable name (relaxed rule of Kubernetes 1.30+): printable ASCII except '='.
std::vector<std::string> checkEnvVarName(std::string_view value);

}  // namespace ep::api
