#include "common/api/quantity.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace ep::api {
namespace {

// An unsigned 128-bit integer in four 32-bit limbs (least significant first), with only what
// parsing needs. Portable: 32-bit targets such as armhf have no __int128.
class Wide {
 public:
  explicit Wide(uint64_t v = 0)
      : limbs_{static_cast<uint32_t>(v), static_cast<uint32_t>(v >> 32)} {}

  // *this = *this * m + a; false (and *this unspecified) when the result needs over 128 bits.
  bool mulAdd(uint32_t m, uint32_t a) {
    uint64_t carry = a;
    for (uint32_t& limb : limbs_) {
      uint64_t t = uint64_t{limb} * m + carry;
      limb = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
    return carry == 0;
  }
  // *this /= d; returns the remainder. d > 0.
  uint32_t divSmall(uint32_t d) {
    uint64_t rem = 0;
    for (int i = 3; i >= 0; --i) {
      uint64_t cur = (rem << 32) | limbs_[i];
      limbs_[i] = static_cast<uint32_t>(cur / d);
      rem = cur % d;
    }
    return static_cast<uint32_t>(rem);
  }
  bool greaterThan(uint64_t v) const {
    if (limbs_[2] != 0 || limbs_[3] != 0) return true;
    return low() > v;
  }
  uint64_t low() const { return (uint64_t{limbs_[1]} << 32) | limbs_[0]; }

 private:
  uint32_t limbs_[4] = {0, 0, 0, 0};
};

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
  Wide value;  // mantissa < 10^20 < 2^67 and exp2 <= 60, so value < 2^127 always fits
  for (char c : digits) (void)value.mulAdd(10, static_cast<uint32_t>(c - '0'));
  for (int k = 0; k < exp2; ++k) (void)value.mulAdd(2, 0);
  int64_t e10 = exp10 + shift - fractionDigits + scaleExp10;

  constexpr uint64_t kLimit = INT64_MAX;
  auto tooLarge = [&] {
    return invalidError("invalid quantity \"" + std::string(text) + "\": value is too large");
  };
  uint64_t result = 0;
  if (e10 >= 0) {
    for (int64_t k = 0; k < e10; ++k) {
      if (value.greaterThan(kLimit / 10)) return tooLarge();
      (void)value.mulAdd(10, 0);
    }
    if (value.greaterThan(kLimit)) return tooLarge();
    result = value.low();
  } else if (e10 < -38) {
    result = negative ? 0 : 1;  // value < 10^39 <= 10^-e10: the quotient is in (0, 1)
  } else {
    // floor(value / 10^-e10), one digit at a time; the quotient is exact iff every step is.
    bool exact = true;
    for (int64_t k = 0; k < -e10; ++k) exact = value.divSmall(10) == 0 && exact;
    if (value.greaterThan(kLimit)) return tooLarge();
    result = value.low();
    // Round the magnitude up for positive values and down for negative ones (ceil overall).
    if (!negative && !exact) ++result;
    if (result > kLimit) return tooLarge();
  }
  int64_t magnitude = static_cast<int64_t>(result);
  return negative ? -magnitude : magnitude;
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
