#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/api/kinds.h"
#include "common/status.h"

namespace ep::api {

// One term of a field selector: `field=value` (negated == false) or `field!=value`.
struct FieldRequirement {
  std::string field;
  bool negated = false;
  std::string value;
};

// A conjunction of field requirements (Kubernetes fields.Selector), already checked against
// the field labels the kind supports. Immutable value type; const methods are thread-safe.
class FieldSelector {
 public:
  FieldSelector() = default;
  explicit FieldSelector(std::vector<FieldRequirement> requirements)
      : requirements_(std::move(requirements)) {}

  // Compares each requirement with fieldLabelValue(obj, field).
  bool matches(const nlohmann::json& obj) const;
  bool empty() const { return requirements_.empty(); }
  // The value of the first `field=value` term on `field` (used to narrow a list, e.g. pods by
  // spec.nodeName); nullopt when there is none.
  std::optional<std::string> exactValue(std::string_view field) const;
  // Terms joined by ',', values escaped; parseable by parseFieldSelector.
  std::string toString() const;
  const std::vector<FieldRequirement>& requirements() const { return requirements_; }

 private:
  std::vector<FieldRequirement> requirements_;
};

// Parses ?fieldSelector= syntax: `f=v`, `f==v`, `f!=v` joined by ','. In values `\\`, `\,` and
// `\=` escape those characters; an unescaped ',' or '=' inside a value is an error. Blank around
// fields and values is trimmed; empty terms are skipped. Fields not supported for `kind` are
// refused with kBadRequest "field label not supported: <field>". Never throws.
Result<FieldSelector> parseFieldSelector(std::string_view text, const KindInfo& kind);

// The field labels a kind supports: metadata.name and metadata.namespace everywhere, plus the
// kind-specific ones (Pod: spec.nodeName, status.phase, ...; Event: involvedObject.*, reason,
// ...; Secret: type; Node: spec.unschedulable; Namespace: status.phase; Device: spec.nodeName).
const std::vector<std::string>& supportedFieldLabels(const KindInfo& kind);

// The value a field label has in an object: strings as-is, booleans as "true"/"false", numbers
// in JSON form, missing or null as "" (except spec.unschedulable, which defaults to "false" as
// in Kubernetes). Event's "source" reads source.component. Never throws.
std::string fieldLabelValue(const nlohmann::json& obj, std::string_view field);

}  // namespace ep::api
