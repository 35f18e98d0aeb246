// Hardware layout: sockets, cores, threads, NUMA nodes and PCI devices.
//
// Two sources with one result type: hwloc (the real host only; it reads
// /sys itself and cannot be pointed at a fixture tree) and a direct /sys
// reader that honours the root prefix:
//
//   /sys/devices/system/cpu/cpuN/topology/{physical_package_id,core_id,
//                                          thread_siblings_list}
//   /sys/devices/system/node/nodeN
//   /sys/bus/pci/devices/<addr>/{vendor,device,class,subsystem_vendor,
//                                subsystem_device}
//
// PCI ids are 4 lowercase hex digits without "0x"; `class_code` is the class
// and subclass ("0300" for a VGA controller), as NFD's pci.device writes them.
// Thread-safe (hwloc topologies are private to the call).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probe/host_files.h"

namespace imgsel::probe {

struct PciDevice {
  std::string address;  // "0000:01:00.0"
  std::string vendor;
  std::string device;
  std::string class_code;
  std::string subsystem_vendor;
  std::string subsystem_device;
};

struct Hardware {
  int sockets = 0;
  int cores = 0;
  int threads = 0;   // logical CPUs (hwloc PUs)
  bool smt = false;  // some core runs more than one thread
  int numa_nodes = 0;
  std::vector<PciDevice> pci;  // sorted by address
};

// hwloc topology load with PCI devices. An error when hwloc fails.
absl::StatusOr<Hardware> ProbeHardwareHwloc();

// The same from /sys under `files`; unreadable parts are left at zero / empty
// and described in `warnings`.
Hardware ProbeHardwareSysfs(const HostFiles& files, std::vector<std::string>& warnings);

}  // namespace imgsel::probe
