// The node labels Node Feature Discovery would publish for a host's
// features, so that specs written in NFD's label names (Proposal F's NFD
// group: `cpu-cpuid.AVX512F`, `kernel-version.major`,
// `cpu-hardware_multithreading`) read the same host as NFD's rule format.
//
// NFD's naming (its label sources' GetLabels): a label is
//
//   feature.node.kubernetes.io/<source>-<name>[.<element>]
//
// where <source> is the feature's source (`cpu` of `cpu.cpuid`). Flag
// features give labels of value "true"; attribute features their value.
// The table below is the one place that says which features NFD labels and
// how; features it does not name publish no label (NFD labels a chosen few,
// kernel.loadedmodule for one publishes none).
//
//   feature                  label                                    value
//   cpu.cpuid  (flags)       cpu-cpuid.<E>                            true
//   cpu.rdt    (flags)       cpu-rdt.<E>                              true
//   cpu.cstate               cpu-cstate.<E>                           value
//   cpu.pstate               cpu-pstate.<E>                           value
//   cpu.sst                  cpu-power.sst_<E>                        value
//   cpu.model                cpu-model.<E>                            value
//   cpu.topology             cpu-hardware_multithreading (that one)   value
//   kernel.version           kernel-version.<E>                       value
//   kernel.selinux           kernel-selinux.<E>                       value
//   kernel.config            kernel-config.<E>, when y or m           true
//   memory.numa              memory-numa (from is_numa)               value
//   memory.nv                memory-nv.<E>                            value
//   network.sriov            network-sriov.<E>                        value
//   system.osrelease         system-os_release.<E> (ID, VERSION_ID,
//                            VERSION_ID.major, VERSION_ID.minor)      value
//   pci.device (instances)   pci-<class>_<vendor>.present             true
//   usb.device (instances)   usb-<class>_<vendor>_<device>.present    true
//   local.feature            <E> as written (hooks name their labels) value
//
// Unlike a default nfd-worker, no cpuid flag is left out (nfd-worker's
// default attributeBlacklist hides SSE42, AVX-less basics and a few more):
// a spec asking for one of them should read the host, not the blacklist.
//
// On a labelled node a flag label that is absent reads as false (a
// nodeSelector on `...=true` does not match); NfdLabelValue does the same
// for a label of a source-feature the table knows.
//
// Pure functions; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "matcher/host_profile.h"

namespace imgsel {

inline constexpr absl::string_view kNfdLabelNamespace = "feature.node.kubernetes.io/";

// Label name (without the namespace) -> value, for every feature of `nfd`
// the table names.
std::map<std::string, std::string> NfdLabels(const NfdFeatures& nfd);

// The value a labelled node would give `label` (the namespace prefix is
// optional): the label's value when `labels` has it; "false" when it has
// not but the table knows its `<source>-<name>` (a flag or boolean label
// NFD would publish only when true); nullopt when the table does not know
// the name at all.
std::optional<std::string> NfdLabelValue(const std::map<std::string, std::string>& labels,
                                         absl::string_view label);

// Whether the table knows the `<source>-<name>` a label name starts with.
bool IsKnownNfdLabel(absl::string_view label);

}  // namespace imgsel
