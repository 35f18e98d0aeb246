# imgseld figures (docs/BENCHMARKS.md "imgseld"): Select RPC against an
# empty RPC on the same socket, throughput with 16 clients, RSS, and a pull
# through the CRI proxy against a direct CRI pull (real containerd and
# docker-registry on loopback, when installed and run as root).
if(TARGET imgseld)
  # A Selector server that answers from a file: the floor under the figure.
  add_executable(answer_floor_server ${CMAKE_CURRENT_LIST_DIR}/answer_floor_server.cc)
  target_link_libraries(answer_floor_server PRIVATE imgsel_proto_selector)

  add_executable(plugin_bench
    ${CMAKE_CURRENT_LIST_DIR}/plugin_bench.cc
    ${PROJECT_SOURCE_DIR}/tests/integration/harness.cc
    ${PROJECT_SOURCE_DIR}/tests/registry/real_registry.cc
    ${PROJECT_SOURCE_DIR}/tests/registry/fake_server.cc
  )
  target_link_libraries(plugin_bench PRIVATE imgsel_plugin imgsel_registry)
  target_compile_definitions(plugin_bench PRIVATE
    IMGSEL_EXAMPLES="${PROJECT_SOURCE_DIR}/examples"
    IMGSELD_BINARY="$<TARGET_FILE:imgseld>"
    ANSWER_FLOOR_SERVER="$<TARGET_FILE:answer_floor_server>")
  add_dependencies(plugin_bench imgseld answer_floor_server)
endif()

# The server-side cost of a Select answer, in process (no gRPC).
if(TARGET imgsel_plugin)
  add_executable(answer_bench ${CMAKE_CURRENT_LIST_DIR}/answer_bench.cc)
  target_link_libraries(answer_bench PRIVATE imgsel_plugin benchmark::benchmark)
  target_compile_definitions(answer_bench PRIVATE IMGSEL_EXAMPLES="${PROJECT_SOURCE_DIR}/examples")
endif()
