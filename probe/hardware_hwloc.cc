#include <hwloc.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "probe/hardware.h"

namespace imgsel::probe {

absl::StatusOr<Hardware> ProbeHardwareHwloc() {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return absl::InternalError("hwloc: init failed");
  // PCI devices only: no bridges, no OS devices (block, net), which cost time.
  hwloc_topology_set_type_filter(topo, HWLOC_OBJ_PCI_DEVICE, HWLOC_TYPE_FILTER_KEEP_ALL);
  hwloc_topology_set_type_filter(topo, HWLOC_OBJ_BRIDGE, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_type_filter(topo, HWLOC_OBJ_OS_DEVICE, HWLOC_TYPE_FILTER_KEEP_NONE);
  if (hwloc_topology_load(topo) != 0) {
    hwloc_topology_destroy(topo);
    return absl::InternalError("hwloc: topology load failed");
  }
  Hardware hw;
  hw.sockets = std::max(0, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE));
  hw.cores = std::max(0, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE));
  hw.threads = std::max(0, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU));
  hw.numa_nodes = std::max(0, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE));
  for (int i = 0; i < hw.cores && !hw.smt; ++i) {
    hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, i);
    hw.smt = core != nullptr && hwloc_bitmap_weight(core->cpuset) > 1;
  }
  for (hwloc_obj_t obj = hwloc_get_next_pcidev(topo, nullptr); obj != nullptr;
       obj = hwloc_get_next_pcidev(topo, obj)) {
    const auto& p = obj->attr->pcidev;
    hw.pci.push_back(PciDevice{
        absl::StrFormat("%04x:%02x:%02x.%01x", p.domain, p.bus, p.dev, p.func),
        absl::StrFormat("%04x", p.vendor_id),
        absl::StrFormat("%04x", p.device_id),
        absl::StrFormat("%04x", p.class_id),
        absl::StrFormat("%04x", p.subvendor_id),
        absl::StrFormat("%04x", p.subdevice_id),
    });
  }
  hwloc_topology_destroy(topo);
  std::sort(hw.pci.begin(), hw.pci.end(),
            [](const PciDevice& a, const PciDevice& b) { return a.address < b.address; });
  return hw;
}

}  // namespace imgsel::probe
