#pragma once

#include <string_view>

namespace ep::api {

// Well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points above U+10FFFF),
// as JSON output requires. Pure; thread-safe.
bool validUtf8(std::string_view s);

}  // namespace ep::api
