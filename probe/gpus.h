// GPUs: PCI display controllers (class 0300 VGA, 0302 3D), with the vendor's
// name and, for NVIDIA, the kernel driver version from
// /proc/driver/nvidia/version:
//
//   NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 ...
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "probe/hardware.h"

namespace imgsel::probe {

struct Gpu {
  std::string address;  // PCI address
  std::string vendor;   // "10de"
  std::string device;
  std::string vendor_name;     // "NVIDIA", "AMD", "Intel", ...; the id when unknown
  std::string driver_version;  // NVIDIA only, when the driver is loaded
};

// The display controllers among `pci`, in address order. `nvidia_version` is
// the content of /proc/driver/nvidia/version, or empty.
std::vector<Gpu> FindGpus(const std::vector<PciDevice>& pci, absl::string_view nvidia_version);

// "535.104.05" from the file's text; nullopt when no version is there.
std::optional<std::string> ParseNvidiaDriverVersion(absl::string_view text);

// The name of a PCI vendor id that makes GPUs; the id itself when unknown.
std::string GpuVendorName(absl::string_view vendor_id);

}  // namespace imgsel::probe
