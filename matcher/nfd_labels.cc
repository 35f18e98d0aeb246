#include "matcher/nfd_labels.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace imgsel {
namespace {

enum class LabelKind {
  kFlags,       // every element: <prefix><element> = true
  kAttributes,  // every element: <prefix><element> = value
  kOne,         // the element `element`: <prefix> = value
  kKconfig,     // every element set to y or m: <prefix><element> = true
  kOsRelease,   // the four elements NFD labels: <prefix><element> = value
};

struct LabelRule {
  absl::string_view feature;
  LabelKind kind;
  absl::string_view prefix;   // the label, or its part before the element
  absl::string_view element;  // kOne only
};

// NFD's label sources, as the header's table says.
constexpr LabelRule kLabelRules[] = {
    {"cpu.cpuid", LabelKind::kFlags, "cpu-cpuid.", ""},
    {"cpu.rdt", LabelKind::kFlags, "cpu-rdt.", ""},
    {"cpu.cstate", LabelKind::kAttributes, "cpu-cstate.", ""},
    {"cpu.pstate", LabelKind::kAttributes, "cpu-pstate.", ""},
    {"cpu.sst", LabelKind::kAttributes, "cpu-power.sst_", ""},
    {"cpu.model", LabelKind::kAttributes, "cpu-model.", ""},
    {"cpu.topology", LabelKind::kOne, "cpu-hardware_multithreading", "hardware_multithreading"},
    {"kernel.version", LabelKind::kAttributes, "kernel-version.", ""},
    {"kernel.selinux", LabelKind::kAttributes, "kernel-selinux.", ""},
    {"kernel.config", LabelKind::kKconfig, "kernel-config.", ""},
    {"memory.numa", LabelKind::kOne, "memory-numa", "is_numa"},
    {"memory.nv", LabelKind::kAttributes, "memory-nv.", ""},
    {"network.sriov", LabelKind::kAttributes, "network-sriov.", ""},
    {"system.osrelease", LabelKind::kOsRelease, "system-os_release.", ""},
};

constexpr absl::string_view kOsReleaseLabelled[] = {"ID", "VERSION_ID", "VERSION_ID.major",
                                                    "VERSION_ID.minor"};

// Label names of instance features: pci-<class>_<vendor>.present and
// usb-<class>_<vendor>_<device>.present.
constexpr absl::string_view kInstancePrefixes[] = {"pci-", "usb-"};

template <typename Map>
const typename Map::mapped_type* Find(const Map& map, absl::string_view key) {
  auto it = map.find(std::string(key));
  return it == map.end() ? nullptr : &it->second;
}

std::string Get(const std::map<std::string, std::string>& attrs, absl::string_view key) {
  const std::string* v = Find(attrs, key);
  return v ? *v : std::string();
}

}  // namespace

std::map<std::string, std::string> NfdLabels(const NfdFeatures& nfd) {
  std::map<std::string, std::string> labels;
  for (const LabelRule& rule : kLabelRules) {
    if (rule.kind == LabelKind::kFlags) {
      if (const auto* flags = Find(nfd.flags, rule.feature)) {
        for (const std::string& e : *flags) labels[absl::StrCat(rule.prefix, e)] = "true";
      }
      continue;
    }
    const auto* attrs = Find(nfd.attributes, rule.feature);
    if (attrs == nullptr) continue;
    switch (rule.kind) {
      case LabelKind::kAttributes:
        for (const auto& [e, v] : *attrs) labels[absl::StrCat(rule.prefix, e)] = v;
        break;
      case LabelKind::kOne:
        if (const std::string* v = Find(*attrs, rule.element))
          labels[std::string(rule.prefix)] = *v;
        break;
      case LabelKind::kKconfig:
        for (const auto& [e, v] : *attrs) {
          if (v == "y" || v == "m") labels[absl::StrCat(rule.prefix, e)] = "true";
        }
        break;
      case LabelKind::kOsRelease:
        for (absl::string_view e : kOsReleaseLabelled) {
          if (const std::string* v = Find(*attrs, e)) labels[absl::StrCat(rule.prefix, e)] = *v;
        }
        break;
      case LabelKind::kFlags:
        break;
    }
  }
  if (const auto* pci = Find(nfd.instances, "pci.device")) {
    for (const auto& dev : *pci) {
      labels[absl::StrCat("pci-", Get(dev, "class"), "_", Get(dev, "vendor"), ".present")] = "true";
    }
  }
  if (const auto* usb = Find(nfd.instances, "usb.device")) {
    for (const auto& dev : *usb) {
      labels[absl::StrCat("usb-", Get(dev, "class"), "_", Get(dev, "vendor"), "_",
                          Get(dev, "device"), ".present")] = "true";
    }
  }
  if (const auto* local = Find(nfd.attributes, "local.feature")) {
    for (const auto& [e, v] : *local) labels.emplace(e, v);
  }
  return labels;
}

bool IsKnownNfdLabel(absl::string_view label) {
  absl::ConsumePrefix(&label, kNfdLabelNamespace);
  for (const LabelRule& rule : kLabelRules) {
    if (rule.kind == LabelKind::kOne
            ? label == rule.prefix
            : absl::StartsWith(label, rule.prefix) && label.size() > rule.prefix.size()) {
      return true;
    }
  }
  for (absl::string_view prefix : kInstancePrefixes) {
    if (absl::StartsWith(label, prefix) && absl::EndsWith(label, ".present")) return true;
  }
  return false;
}

std::optional<std::string> NfdLabelValue(const std::map<std::string, std::string>& labels,
                                         absl::string_view label) {
  absl::ConsumePrefix(&label, kNfdLabelNamespace);
  if (const std::string* v = Find(labels, label)) return *v;
  if (IsKnownNfdLabel(label)) return "false";
  return std::nullopt;
}

}  // namespace imgsel
