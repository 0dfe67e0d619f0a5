#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ep::api {

// Standard base64 with padding, as Kubernetes Secret data uses. '\r' and '\n' are ignored when
// decoding (as Go's decoder does). Pure functions, thread-safe.

// The decoded size, nullopt when `text` is not base64.
std::optional<size_t> base64DecodedSize(std::string_view text);
std::string base64Encode(std::string_view in);
// nullopt when `text` is not base64.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace ep::api
