#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ep::edgectl {

// A kubectl JSONPath template (`-o jsonpath=TEMPLATE`, the syntax of client-go's
// util/jsonpath): text with {actions}. An action is a path (.a.b, ['a'], escaped dots as in
// `.metadata.labels.kubernetes\.io/hostname`, $ the root, @ the current value), with
// wildcards (.* and [*]), recursive descent (..name), indexes and slices ([0], [-1], [1:3],
// [::2]), unions ([0,2], ['a','b']) and filters ([?(@.type=="Ready")], with ==, !=, <, <=, >,
// >= and bare existence); a quoted string ({"\n"}, {'\t'}); or `range PATH` ... `end`.
// Output as kubectl prints it: the results of an action separated by spaces, strings as they
// are, other values as compact JSON; a missing key prints nothing (kubectl's default
// --allow-missing-template-keys), while an index out of bounds or into a non-array is an
// error. Immutable once parsed; execute() is thread-safe.
class JsonPathTemplate {
 public:
  // Errors say what is wrong and where: `unclosed action at 0`.
  [[nodiscard]] static Result<JsonPathTemplate> parse(std::string_view text);
  [[nodiscard]] Result<std::string> execute(const nlohmann::json& root) const;

  struct Node;  // defined in jsonpath.cc

 private:
  explicit JsonPathTemplate(std::shared_ptr<const Node> root) : root_(std::move(root)) {}
  std::shared_ptr<const Node> root_;
};

}  // namespace ep::edgectl
