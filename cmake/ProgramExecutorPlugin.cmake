# program_executor_add_plugin(): builds a job plugin for the program-executor daemon.
#
# Installed with the SDK package (find_package(ProgramExecutorSDK) includes it)
# and included from the source tree by the in-tree plugins, so a plugin builds
# the same way in this repository and outside it. See docs/plugin-guide.md.
#
#   program_executor_add_plugin(<name>
#     SOURCES <file>...
#     [INSTALL]                       install <name>.so to INSTALL_DIR
#     [INSTALL_DIR <dir>]             default: ${PROGRAM_EXECUTOR_PLUGIN_DIR}
#     [COMPONENT <component>]         install component (default: CMake's default)
#     [OUTPUT_DIRECTORY <dir>])       where <name>.so is built
#
# Creates target <name>: a MODULE library <name>.so (no "lib" prefix) linked
# against ProgramExecutor::sdk. Add your own dependencies to it with
# target_link_libraries(<name> PRIVATE ...); link them statically or make sure
# the daemon's host can resolve them, since the plugin is opened with RTLD_NOW.

include_guard(GLOBAL)

function(program_executor_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "INSTALL" "INSTALL_DIR;COMPONENT;OUTPUT_DIRECTORY"
                        "SOURCES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "program_executor_add_plugin(${name}): unknown arguments: "
                        "${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "program_executor_add_plugin(${name}): SOURCES is required")
  endif()
  if(NOT TARGET ProgramExecutor::sdk)
    message(FATAL_ERROR "program_executor_add_plugin(${name}): target ProgramExecutor::sdk is "
                        "missing; call find_package(ProgramExecutorSDK REQUIRED) first")
  endif()

  # A MODULE cannot be linked against, only dlopen()ed, which is all the
  # daemon does with it. The loader picks up files ending in ".so".
  add_library(${name} MODULE ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE ProgramExecutor::sdk)
  target_compile_features(${name} PRIVATE cxx_std_20)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    SUFFIX ".so"
    CXX_EXTENSIONS OFF
    # Only the two entry points of PROGRAM_EXECUTOR_PLUGIN are meant for the
    # daemon; the plugin's classes and inline functions stay private to it.
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(arg_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${arg_OUTPUT_DIRECTORY})
  endif()

  # Without this, g++ binds some inline statics of templates (std::to_string's
  # digit table, ...) STB_GNU_UNIQUE, and glibc then never unloads the library:
  # dlclose() becomes a no-op. Clang emits no such symbols and rejects the flag.
  target_compile_options(${name} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)

  # Fail at link time, not at dlopen() time in the daemon, if anything is
  # left unresolved. The version script exports the two entry points and
  # nothing else (hidden visibility does not cover libstdc++'s templates).
  set(version_script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/program_executor_plugin.map)
  target_link_options(${name} PRIVATE LINKER:--no-undefined
                      LINKER:--version-script=${version_script})
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS ${version_script})

  if(arg_INSTALL)
    set(destination ${arg_INSTALL_DIR})
    if(NOT destination)
      set(destination ${PROGRAM_EXECUTOR_PLUGIN_DIR})
    endif()
    if(NOT destination)
      message(FATAL_ERROR "program_executor_add_plugin(${name}): INSTALL needs INSTALL_DIR or "
                          "PROGRAM_EXECUTOR_PLUGIN_DIR")
    endif()
    # Under the install prefix, install relative to it, so that
    # `cmake --install --prefix` and CPack relocate the plugin like
    # everything else; elsewhere, to the absolute directory (DESTDIR applies).
    if(IS_ABSOLUTE "${destination}")
      file(RELATIVE_PATH relative "${CMAKE_INSTALL_PREFIX}" "${destination}")
      if(relative STREQUAL "")
        set(destination .)
      elseif(NOT relative MATCHES "^\\.\\.(/|$)" AND NOT IS_ABSOLUTE "${relative}")
        set(destination ${relative})
      endif()
    endif()
    if(arg_COMPONENT)
      install(TARGETS ${name} LIBRARY DESTINATION ${destination} COMPONENT ${arg_COMPONENT})
    else()
      install(TARGETS ${name} LIBRARY DESTINATION ${destination})
    endif()
  endif()
endfunction()
