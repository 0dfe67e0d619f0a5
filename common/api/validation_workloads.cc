// Validation (common/api/validation.h) of apps/v1 Deployment and ReplicaSet.
// The Checker and its primitives are in validation_checker.h.

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/api/validation_checker.h"

namespace ep::api::validation_detail {

void Checker::intOrPercent(const json& v, const std::string& path, bool capAt100) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    bool ok = s.size() >= 2 && s.back() == '%' &&
              std::all_of(s.begin(), s.end() - 1, [](char c) { return c >= '0' && c <= '9'; });
    if (!ok) {
      add(fieldInvalid(path, v,
                       "a valid percent string must be a numeric string followed by an ending "
                       "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
      return;
    }
    std::string digits = s.substr(0, s.size() - 1);
    digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
    if (capAt100 && (digits.size() > 3 || (!digits.empty() && std::stoi(digits) > 100))) {
      add(fieldInvalid(path, v, "must not be greater than 100%"));
    }
    return;
  }
  if (v.is_number_integer()) {
    if (!v.is_number_unsigned() && v.get<int64_t>() < 0) {
      add(fieldInvalid(path, v, "must be greater than or equal to 0"));
    }
    return;
  }
  add(fieldTypeInvalid(path, v, "must be an integer or a percentage string"));
}

bool Checker::isZeroIntOrPercent(const json* v) {
  if (v == nullptr) return false;
  if (v->is_number_integer()) return *v == 0;
  if (v->is_string()) {
    const auto& s = v->get_ref<const std::string&>();
    return !s.empty() && s.back() == '%' && s.find_first_not_of('0') == s.size() - 1;
  }
  return false;
}

void Checker::workload(const KindInfo& kind, const json& obj) {
  bool isDeployment = kind.kind == "Deployment";
  const json* spec = object(obj, "spec", "spec");
  if (spec == nullptr) {
    if (Checker::member(obj, "spec") == nullptr) add(fieldRequired("spec"));
    return;
  }
  intInRange(*spec, "replicas", "spec.replicas", 0, kInt32Max);
  auto minReady = intInRange(*spec, "minReadySeconds", "spec.minReadySeconds", 0, kInt32Max);

  std::optional<LabelSelector> selector;
  const json* sel = member(*spec, "selector");
  if (sel == nullptr) {
    add(fieldRequired("spec.selector"));
  } else {
    Errs selErrs = validateLabelSelectorJson(*sel, "spec.selector");
    if (selErrs.empty()) {
      auto parsed = labelSelectorFromJson(*sel, "spec.selector");
      if (parsed.isOk() && parsed->empty()) {
        add(fieldInvalid("spec.selector", *sel,
                         std::string("empty selector is invalid for ") +
                             (isDeployment ? "deployment" : "replicaset")));
      } else if (parsed.isOk()) {
        selector = *parsed;
      }
    }
    errs.insert(errs.end(), selErrs.begin(), selErrs.end());
  }

  const json* tmpl = object(*spec, "template", "spec.template");
  if (tmpl == nullptr) {
    if (member(*spec, "template") == nullptr) add(fieldRequired("spec.template"));
  } else {
    static const json kEmpty = json::object();
    const json* tmeta = object(*tmpl, "metadata", "spec.template.metadata");
    if (tmeta != nullptr) {
      labelMap(*tmeta, "labels", "spec.template.metadata.labels");
      stringMap(*tmeta, "annotations", "spec.template.metadata.annotations");
    }
    if (selector) {
      std::map<std::string, std::string> labels = labelsOf(*tmpl);
      if (!selector->matches(labels)) {
        const json* tl = tmeta != nullptr ? member(*tmeta, "labels") : nullptr;
        json shown = tl != nullptr ? *tl : json::object();
        add(fieldInvalid("spec.template.metadata.labels", shown,
                         "`selector` does not match template `labels`"));
      }
    }
    const json* tspec = object(*tmpl, "spec", "spec.template.spec");
    if (tspec == nullptr && member(*tmpl, "spec") != nullptr) {
      // type error already reported
    } else {
      podSpec(tspec != nullptr ? *tspec : kEmpty, "spec.template.spec", true);
    }
  }

  if (!isDeployment) return;
  intInRange(*spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", 0, kInt32Max);
  if (auto pd = intInRange(*spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds", 0,
                           kInt32Max)) {
    if (minReady && *pd <= *minReady) {
      add(fieldInvalid("spec.progressDeadlineSeconds", *pd,
                       "must be greater than minReadySeconds"));
    }
  }
  boolean(*spec, "paused", "spec.paused");
  const json* strategy = object(*spec, "strategy", "spec.strategy");
  if (strategy == nullptr) return;
  auto type =
      enumString(*strategy, "type", "spec.strategy.type", {"Recreate", "RollingUpdate"}, false);
  const json* ru = object(*strategy, "rollingUpdate", "spec.strategy.rollingUpdate");
  if (ru == nullptr) return;
  if (type && *type == "Recreate") {
    add(fieldForbidden("spec.strategy.rollingUpdate",
                       "may not be specified when strategy `type` is 'Recreate'"));
    return;
  }
  const json* mu = member(*ru, "maxUnavailable");
  const json* ms = member(*ru, "maxSurge");
  if (mu != nullptr) intOrPercent(*mu, "spec.strategy.rollingUpdate.maxUnavailable", true);
  if (ms != nullptr) intOrPercent(*ms, "spec.strategy.rollingUpdate.maxSurge", false);
  if (isZeroIntOrPercent(mu) && isZeroIntOrPercent(ms)) {
    add(fieldInvalid("spec.strategy.rollingUpdate.maxUnavailable", *mu,
                     "may not be 0 when `maxSurge` is 0"));
  }
}

}  // namespace ep::api::validation_detail
