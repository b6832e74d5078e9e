# ctest docs/event_list: every log event the code writes is listed in
# docs/architecture.md ("Logging"), so operators can grep and alert on the
# documented names. An event is a string literal passed as the name to
# log::event(), to the step processor's outcome() or returned by the plugin
# loader's failure_event().
#
#   cmake -DSOURCE_DIR=<source tree> -P cmake/CheckEventList.cmake
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "CheckEventList.cmake: -DSOURCE_DIR=<source tree> is required")
endif()

file(GLOB_RECURSE sources ${SOURCE_DIR}/core/src/*.cpp ${SOURCE_DIR}/daemon/*.cpp)
set(events "")
foreach(source ${sources})
  file(READ ${source} text)
  foreach(pattern
          "log::event\\([^,;]+,[ \n]*\"([a-z_]+\\.[a-z_.]+)\""
          "outcome\\([^,;]+,[ \n]*\"([a-z_]+\\.[a-z_.]+)\""
          "return \"(plugin\\.load\\.[a-z_]+)\"")
    string(REGEX MATCHALL "${pattern}" calls "${text}")
    foreach(call ${calls})
      string(REGEX REPLACE "${pattern}" "\\1" name "${call}")
      list(APPEND events ${name})
    endforeach()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES events)
list(SORT events)
list(LENGTH events count)
if(count LESS 40)
  message(FATAL_ERROR "found only ${count} events in core/src and daemon/: the patterns of "
                      "cmake/CheckEventList.cmake no longer match the code")
endif()

file(READ ${SOURCE_DIR}/docs/architecture.md architecture)
set(missing "")
foreach(name ${events})
  string(FIND "${architecture}" "`${name}`" at)
  if(at EQUAL -1)
    list(APPEND missing ${name})
  endif()
endforeach()
if(missing)
  list(JOIN missing ", " missing)
  message(FATAL_ERROR "docs/architecture.md does not list these log events (add them to the "
                      "event list under \"Logging\"): ${missing}")
endif()
message(STATUS "docs/architecture.md lists all ${count} log events")
