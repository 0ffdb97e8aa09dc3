# runner_add_plugin(NAME SOURCES src.cpp ... [OUTPUT_DIRECTORY dir])
#
# Builds a runner plugin library NAME.so: hidden visibility, no GNU-unique
# symbols (so it can be unloaded cleanly), -Wall -Wextra, LibTorch and the SDK
# (runner_sdk, nothing of the host) linked, and the
# one exported entry symbol `runner_plugin_entry` (generated, never hand-written).
# Each source registers its components with RUNNER_REGISTER_* (runner/plugin.hpp).
set(_RUNNER_PLUGIN_CMAKE_DIR "${CMAKE_CURRENT_LIST_DIR}")

function(runner_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "runner_add_plugin(${name}): SOURCES is required")
  endif()
  set(entry "${CMAKE_CURRENT_BINARY_DIR}/${name}_plugin_entry.cpp")
  configure_file("${_RUNNER_PLUGIN_CMAKE_DIR}/plugin_entry.cpp.in" "${entry}" @ONLY)
  add_library(${name} MODULE ${ARG_SOURCES} "${entry}")
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON
    DEFINE_SYMBOL "")
  target_compile_features(${name} PRIVATE cxx_std_17)
  target_compile_options(${name} PRIVATE -fno-gnu-unique)
  target_link_libraries(${name} PRIVATE Runner::runner_sdk)
  # Plugin code gets the warnings the runner's own code builds with.
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  # In the runner's own tree, reuse its precompiled <torch/torch.h>.
  if(RUNNER_USE_PCH AND TARGET runner_pch)
    target_precompile_headers(${name} REUSE_FROM runner_pch)
  endif()
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  elseif(RUNNER_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${RUNNER_PLUGIN_OUTPUT_DIR}")
  endif()
endfunction()
