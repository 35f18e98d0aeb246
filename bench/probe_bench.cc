// The host probe's cost: the whole probe as `imgsel probe` and imgseld run it
// (hwloc topology load included), and its parts, to show where the time goes.
//
//   cmake --build build --target probe_bench && build/bench/probe_bench
#include <benchmark/benchmark.h>

#include "probe/cpuid_x86.h"
#include "probe/hardware.h"
#include "probe/host_files.h"
#include "probe/probe.h"

namespace imgsel::probe {
namespace {

void BM_ProbeHost(benchmark::State& state) {
  ProbeOptions options;
  for (auto _ : state) {
    auto result = ProbeHost(options);
    if (!result.ok()) state.SkipWithError(std::string(result.status().message()).c_str());
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_ProbeHost)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ProbeHostWithoutHwloc(benchmark::State& state) {
  ProbeOptions options;
  options.use_hwloc = false;
  for (auto _ : state) {
    auto result = ProbeHost(options);
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_ProbeHostWithoutHwloc)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HwlocTopologyWithPci(benchmark::State& state) {
  for (auto _ : state) {
    auto hw = ProbeHardwareHwloc();
    benchmark::DoNotOptimize(hw);
  }
}
BENCHMARK(BM_HwlocTopologyWithPci)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SysfsTopologyWithPci(benchmark::State& state) {
  HostFiles files("/");
  for (auto _ : state) {
    std::vector<std::string> warnings;
    Hardware hw = ProbeHardwareSysfs(files, warnings);
    benchmark::DoNotOptimize(hw);
  }
}
BENCHMARK(BM_SysfsTopologyWithPci)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Cpuid(benchmark::State& state) {
  for (auto _ : state) {
    auto cpu = ProbeCpuid();
    benchmark::DoNotOptimize(cpu);
  }
}
BENCHMARK(BM_Cpuid)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace imgsel::probe

BENCHMARK_MAIN();
