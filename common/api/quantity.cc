#include "common/api/quantity.h"

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace ep::api {
namespace {

using Int128 = __int128;

constexpr const char* kFormatError =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr int kMaxSignificantDigits = 20;

Status formatError(std::string_view text) {
  return invalidError("invalid quantity \"" + std::string(text) + "\": " + kFormatError);
}

// Exact parse into sign * digits * 10^exp10 * 2^exp2, then scaled by 10^scaleExp10 and rounded
// up.
Result<int64_t> parseScaled(std::string_view text, int scaleExp10) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    negative = text[i] == '-';
    ++i;
  }
  std::string digits;  // all mantissa digits, without the decimal point
  int fractionDigits = 0;
  bool seenPoint = false;
  bool anyDigit = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digits += c;
      anyDigit = true;
      if (seenPoint) ++fractionDigits;
    } else if (c == '.' && !seenPoint) {
      seenPoint = true;
    } else {
      break;
    }
  }
  if (!anyDigit) return formatError(text);

  std::string_view suffix = text.substr(i);
  int64_t exp10 = 0;
  int exp2 = 0;
  if (suffix.empty()) {
  } else if (suffix.size() == 2 && suffix[1] == 'i') {
    switch (suffix[0]) {
      case 'K':
        exp2 = 10;
        break;
      case 'M':
        exp2 = 20;
        break;
      case 'G':
        exp2 = 30;
        break;
      case 'T':
        exp2 = 40;
        break;
      case 'P':
        exp2 = 50;
        break;
      case 'E':
        exp2 = 60;
        break;
      default:
        return formatError(text);
    }
  } else if (suffix.size() == 1) {
    switch (suffix[0]) {
      case 'n':
        exp10 = -9;
        break;
      case 'u':
        exp10 = -6;
        break;
      case 'm':
        exp10 = -3;
        break;
      case 'k':
        exp10 = 3;
        break;
      case 'M':
        exp10 = 6;
        break;
      case 'G':
        exp10 = 9;
        break;
      case 'T':
        exp10 = 12;
        break;
      case 'P':
        exp10 = 15;
        break;
      case 'E':
        exp10 = 18;
        break;
      default:
        return formatError(text);
    }
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    size_t j = 1;
    bool expNegative = false;
    if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) {
      expNegative = suffix[j] == '-';
      ++j;
    }
    if (j >= suffix.size()) return formatError(text);
    int64_t e = 0;
    for (; j < suffix.size(); ++j) {
      if (suffix[j] < '0' || suffix[j] > '9') return formatError(text);
      if (e < 100000) e = e * 10 + (suffix[j] - '0');
    }
    exp10 = expNegative ? -e : e;
  } else {
    return formatError(text);
  }

  // Normalise the mantissa: drop leading zeros, move trailing zeros into the exponent.
  size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return int64_t{0};
  digits.erase(0, first);
  int64_t shift = 0;
  while (!digits.empty() && digits.back() == '0') {
    digits.pop_back();
    ++shift;
  }
  if (static_cast<int>(digits.size()) > kMaxSignificantDigits) {
    return invalidError("invalid quantity \"" + std::string(text) +
                        "\": too many significant digits");
  }
  Int128 mantissa = 0;
  for (char c : digits) mantissa = mantissa * 10 + (c - '0');
  int64_t e10 = exp10 + shift - fractionDigits + scaleExp10;

  const Int128 limit = static_cast<Int128>(INT64_MAX);
  auto tooLarge = [&] {
    return invalidError("invalid quantity \"" + std::string(text) + "\": value is too large");
  };
  // mantissa < 10^20 < 2^67 and exp2 <= 60, so this fits in 127 bits.
  Int128 value = mantissa << exp2;
  Int128 result = 0;
  if (e10 >= 0) {
    result = value;
    for (int64_t k = 0; k < e10; ++k) {
      if (result > limit / 10) return tooLarge();
      result *= 10;
    }
    if (result > limit) return tooLarge();
  } else if (e10 < -38) {
    result = negative ? 0 : 1;  // value < 10^39 <= 10^-e10: the quotient is in (0, 1)
  } else {
    Int128 divisor = 1;
    for (int64_t k = 0; k < -e10; ++k) divisor *= 10;
    result = value / divisor;
    // Round the magnitude up for positive values and down for negative ones (ceil overall).
    if (!negative && value % divisor != 0) ++result;
    if (result > limit) return tooLarge();
  }
  return static_cast<int64_t>(negative ? -result : result);
}

}  // namespace

Result<int64_t> parseQuantityMilli(std::string_view text) {
  return parseScaled(text, 3);
}

Result<int64_t> parseQuantityBytes(std::string_view text) {
  return parseScaled(text, 0);
}

Result<int64_t> quantityOf(const nlohmann::json& value, bool milli) {
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_number()) {
    text = value.dump();
  } else {
    return invalidError("quantity must be a string or a number");
  }
  return milli ? parseQuantityMilli(text) : parseQuantityBytes(text);
}

std::string formatNanoQuantity(uint64_t nano) {
  if (nano == 0) return "0";
  static constexpr std::pair<uint64_t, const char*> kSuffixes[] = {
      {1'000'000'000'000'000'000ULL, "G"},
      {1'000'000'000'000'000ULL, "M"},
      {1'000'000'000'000ULL, "k"},
      {1'000'000'000ULL, ""},
      {1'000'000ULL, "m"},
      {1'000ULL, "u"}};
  for (const auto& [unit, suffix] : kSuffixes) {
    if (nano % unit == 0) return std::to_string(nano / unit) + suffix;
  }
  return std::to_string(nano) + "n";
}

std::string formatBinaryQuantity(uint64_t bytes) {
  if (bytes == 0) return "0";
  static constexpr std::pair<int, const char*> kSuffixes[] = {
      {50, "Pi"}, {40, "Ti"}, {30, "Gi"}, {20, "Mi"}, {10, "Ki"}};
  for (const auto& [shift, suffix] : kSuffixes) {
    const uint64_t unit = uint64_t{1} << shift;
    if (bytes % unit == 0) return std::to_string(bytes / unit) + suffix;
  }
  return std::to_string(bytes);
}

}  // namespace ep::api
