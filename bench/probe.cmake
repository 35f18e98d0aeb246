# The host probe benchmark (docs/BENCHMARKS.md "Host probe").
if(TARGET imgsel_probe)
  add_executable(probe_bench ${CMAKE_CURRENT_LIST_DIR}/probe_bench.cc)
  target_link_libraries(probe_bench PRIVATE imgsel_probe benchmark::benchmark)
endif()
