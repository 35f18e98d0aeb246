# Rule-engine throughput on a realistic NFD spec (tests/data/compat).
add_executable(compat_bench ${CMAKE_CURRENT_SOURCE_DIR}/compat_bench.cc)
target_compile_definitions(compat_bench PRIVATE
  IMGSEL_COMPAT_DATA="${PROJECT_SOURCE_DIR}/tests/data/compat")
target_link_libraries(compat_bench PRIVATE imgsel_matcher benchmark::benchmark)
