# Selection with compatibility artifacts against a real docker-registry.
if(TARGET imgsel_selector)
  add_executable(selector_bench selector_bench.cc
    ${PROJECT_SOURCE_DIR}/tests/registry/real_registry.cc)
  target_link_libraries(selector_bench PRIVATE imgsel_selector imgsel_registry benchmark::benchmark)
  target_compile_definitions(selector_bench PRIVATE IMGSEL_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
