#pragma once

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/api/field_error.h"
#include "common/status.h"

namespace ep::api {

enum class LabelOp { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };

// One term of a label selector. `values` is sorted and de-duplicated; it holds exactly one value
// for kEquals/kNotEquals and none for kExists/kDoesNotExist.
struct LabelRequirement {
  std::string key;
  LabelOp op = LabelOp::kExists;
  std::vector<std::string> values;

  bool matches(const std::map<std::string, std::string>& labels) const;
  // "a=b", "a!=b", "a in (x,y)", "a notin (x)", "a", "!a".
  std::string toString() const;
};

// A conjunction of label requirements (Kubernetes labels.Selector). Immutable value type;
// const methods are thread-safe.
//   - The default-constructed selector has no requirements and matches everything.
//   - nothing() matches no object (what Kubernetes makes of a null metav1.LabelSelector).
// Missing labels satisfy "!=", "notin" and "!key", as in Kubernetes.
class LabelSelector {
 public:
  LabelSelector() = default;
  // Requirements are kept sorted by key (stable), as Kubernetes does.
  explicit LabelSelector(std::vector<LabelRequirement> requirements);
  static LabelSelector nothing();

  bool matches(const std::map<std::string, std::string>& labels) const;
  // True when the selector has no requirements and matches everything.
  bool empty() const { return requirements_.empty() && !nothing_; }
  bool matchesNothing() const { return nothing_; }
  // Canonical string syntax, parseable by parseLabelSelector: requirements sorted by key and
  // joined with ','. "" for both the empty selector and nothing().
  std::string toString() const;
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }

 private:
  std::vector<LabelRequirement> requirements_;
  bool nothing_ = false;
};

// Parses the string syntax used in ?labelSelector= and `kubectl -l`:
//   a=b  a==b  a!=b  a in (x,y)  a notin (x)  a  !a
// joined by ',', whitespace between tokens ignored. Keys and values are checked with the
// Kubernetes rules. "" yields the empty selector. Errors are kBadRequest and quote the offending
// token or key. Never throws.
Result<LabelSelector> parseLabelSelector(std::string_view text);

// Converts a metav1.LabelSelector ({matchLabels, matchExpressions}). null yields nothing(); {}
// yields the empty selector. `fieldPath` prefixes error paths (e.g. "spec.selector"). Errors are
// kInvalid with the Kubernetes field-error wording, e.g.
//   spec.selector.matchExpressions[0].operator: Unsupported value: "Foo": supported values: ...
// Never throws.
Result<LabelSelector> labelSelectorFromJson(const nlohmann::json& selector,
                                            std::string_view fieldPath = {});
// The field errors labelSelectorFromJson would report, as a list (empty when valid).
std::vector<FieldError> validateLabelSelectorJson(const nlohmann::json& selector,
                                                  std::string_view fieldPath);

// Kubernetes label key / value rules (see names.h). kInvalid naming the key or value on error.
Status validateLabelKey(std::string_view key);
Status validateLabelValue(std::string_view value);

// The event a selector-filtered watch sends for one change, by Kubernetes' rules (cloudcore's
// API watch and edgecore's local API watch both use it): `deleted` says the change deleted the
// object; `matchedBefore` says the watcher's view held it (its previous version matched);
// `matchesNow` says the new version matches (not read for a deletion). An object that starts to
// match is ADDED, one that stops is DELETED. Returns "ADDED", "MODIFIED", "DELETED", or "" when
// the watcher is told nothing.
std::string_view filteredWatchEventType(bool deleted, bool matchedBefore, bool matchesNow);

}  // namespace ep::api
