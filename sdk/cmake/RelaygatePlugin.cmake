# relaygate_add_plugin(<name> SOURCES <files...> [LIBRARIES <libs...>] [OUTPUT_DIRECTORY <dir>])
#
# Builds librg_<name>.so against the relaygate SDK: C++17, PIC, hidden visibility, only the manifest
# symbol exported (version script), --no-undefined. Used by in-tree and out-of-tree plugins alike.
# Out of tree: find_package(relaygate_sdk 1.0 REQUIRED) provides this function and relaygate::sdk.
include_guard(GLOBAL)
set(_RG_PLUGIN_CMAKE_DIR "${CMAKE_CURRENT_LIST_DIR}")

function(relaygate_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "relaygate_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  set(_ver "${CMAKE_CURRENT_BINARY_DIR}/${name}.exports.map")
  file(WRITE "${_ver}" "{\n  global: rg_plugin_manifest_v*;\n  local: *;\n};\n")
  target_link_libraries(${name} PRIVATE relaygate::sdk ${ARG_LIBRARIES})
  set_target_properties(${name} PROPERTIES
    PREFIX "librg_"
    OUTPUT_NAME "${name}"
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  endif()
  target_link_options(${name} PRIVATE "LINKER:--version-script=${_ver}" "LINKER:--no-undefined")
endfunction()
