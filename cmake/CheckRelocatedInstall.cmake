# ctest package/relocated_install: `cmake --install <build> --prefix P` puts
# every file under P (no /usr/local/etc, no /usr/local/lib/systemd whatever P
# is), the installed config points plugins.directory into P, and every
# relative link of the installed documentation resolves.
#
#   cmake -DBUILD_DIR=<build tree> -DWORK_DIR=<scratch dir> -P cmake/CheckRelocatedInstall.cmake
#
# The install runs with DESTDIR=<scratch>/root, so a destination outside the
# prefix shows up as a file outside <scratch>/root/<prefix> instead of
# touching the machine.
cmake_minimum_required(VERSION 3.25)
foreach(required BUILD_DIR WORK_DIR)
  if(NOT ${required})
    message(FATAL_ERROR "CheckRelocatedInstall.cmake: -D${required}=... is required")
  endif()
endforeach()

set(root ${WORK_DIR}/root)
set(prefix /relocated/program-executor)
file(REMOVE_RECURSE ${WORK_DIR})
set(ENV{DESTDIR} ${root})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
                OUTPUT_VARIABLE output ERROR_VARIABLE output RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} --prefix ${prefix} failed:\n${output}")
endif()

file(GLOB_RECURSE installed LIST_DIRECTORIES false RELATIVE ${root} ${root}/*)
set(outside "")
foreach(file ${installed})
  if(NOT file MATCHES "^relocated/program-executor/")
    list(APPEND outside /${file})
  endif()
endforeach()
list(LENGTH installed count)
if(count LESS 10)
  message(FATAL_ERROR "only ${count} files installed under ${root}:\n${output}")
endif()
if(outside)
  list(JOIN outside "\n  " outside)
  message(FATAL_ERROR "installed outside the prefix ${prefix}:\n  ${outside}")
endif()

set(P ${root}${prefix})
foreach(expected bin/program-executor lib/systemd/system/program-executor.service
        lib/systemd/system/program-executor@.service etc/program-executor/config.yaml
        share/man/man1/program-executor.1.gz share/bash-completion/completions/program-executor
        share/zsh/vendor-completions/_program-executor share/doc/program-executor/README.md
        share/doc/program-executor/copyright)
  if(NOT EXISTS ${P}/${expected})
    message(FATAL_ERROR "${prefix}/${expected} was not installed")
  endif()
endforeach()

# The installed config loads the plugins installed beside it.
file(STRINGS ${P}/etc/program-executor/config.yaml directory REGEX "^  directory: ")
string(REGEX REPLACE "^  directory: " "" directory "${directory}")
if(NOT directory MATCHES "^${prefix}/.*/program-executor/plugins$" OR
   NOT EXISTS ${root}${directory}/demo.so)
  message(FATAL_ERROR "the installed config's plugins.directory is '${directory}', which does "
                      "not hold the installed demo.so")
endif()

# Every relative link of the installed docs leads to an installed file.
file(GLOB_RECURSE docs ${P}/share/doc/program-executor/*.md)
set(broken "")
foreach(doc ${docs})
  file(READ ${doc} text)
  get_filename_component(dir ${doc} DIRECTORY)
  # "[" and "]" would keep CMake from splitting the list: mark links without them.
  string(REPLACE "](" "<link>" text "${text}")
  string(REGEX MATCHALL "<link>[^)# ]+" links "${text}")
  foreach(link ${links})
    string(REPLACE "<link>" "" target "${link}")
    if(target MATCHES "^[a-z]+:")
      continue()  # http:, https:, mailto:
    endif()
    if(NOT EXISTS ${dir}/${target})
      file(RELATIVE_PATH name ${P}/share/doc/program-executor ${doc})
      list(APPEND broken "${name} -> ${target}")
    endif()
  endforeach()
endforeach()
if(broken)
  list(JOIN broken "\n  " broken)
  message(FATAL_ERROR "broken links in the installed documentation:\n  ${broken}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
message(STATUS "installed ${count} files, all under ${prefix}; docs links resolve")
