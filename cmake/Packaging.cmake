# Installation beyond the binary and the SDK, and the Debian package.
#
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr
#   cmake --build build && (cd build && cpack -G DEB)
#
# builds program-executor_<version>_<arch>.deb (component daemon) and
# program-executor-dev_<version>_<arch>.deb (component sdk); docs/operations.md
# describes their layout. Configure with the prefix /usr: GNUInstallDirs then puts the config
# in /etc and the plugins in /usr/lib/<multiarch>/program-executor/plugins, the
# paths compiled into the daemon and written into the maintainer scripts.
#
# Installed elsewhere: daemon/ (the binary, the units, the example config as
# <sysconfdir>/program-executor/config.yaml), plugins/demo
# (demo.so into the plugin directory) and core/ (the SDK component).

# ---- install layout ----------------------------------------------------------
# Every destination is relative to the prefix (see daemon/CMakeLists.txt), so
# `cmake --install <build> --prefix P` stays inside P.
#
# The documentation, laid out as in the source tree so that README's links
# (docs/..., config/..., tests/chaos/README.md) and the links between the docs
# work in /usr/share/doc/program-executor as they do on GitHub.
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs DESTINATION ${CMAKE_INSTALL_DOCDIR}
        FILES_MATCHING PATTERN "*.md" PATTERN "*.png")
install(FILES ${PROJECT_SOURCE_DIR}/config/program-executor.yaml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/config)
install(FILES ${PROJECT_SOURCE_DIR}/tests/chaos/README.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/tests/chaos)

# The man page and the bash/zsh completions, generated from the CLI's --help
# texts of this very binary (cmake/GenerateCliDocs.cmake).
find_program(PE_GZIP gzip REQUIRED)
set(pe_cli_docs ${PROJECT_BINARY_DIR}/cli-docs)
add_custom_command(
  OUTPUT ${pe_cli_docs}/program-executor.1.gz ${pe_cli_docs}/program-executor.bash-completion
         ${pe_cli_docs}/_program-executor
  COMMAND ${CMAKE_COMMAND} -E make_directory ${pe_cli_docs}
  COMMAND ${CMAKE_COMMAND} -DDAEMON=$<TARGET_FILE:program-executor> -DVERSION=${PROJECT_VERSION}
          -DOUTPUT_DIR=${pe_cli_docs} -P ${PROJECT_SOURCE_DIR}/cmake/GenerateCliDocs.cmake
  # -n: no name or time stamp in the gzip header (reproducible, lintian).
  COMMAND ${PE_GZIP} -9nf ${pe_cli_docs}/program-executor.1
  DEPENDS program-executor ${PROJECT_SOURCE_DIR}/cmake/GenerateCliDocs.cmake
  COMMENT "Generating the man page and shell completions from program-executor --help"
  VERBATIM)
add_custom_target(pe_cli_docs ALL DEPENDS ${pe_cli_docs}/program-executor.1.gz)
install(FILES ${pe_cli_docs}/program-executor.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${pe_cli_docs}/program-executor.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME program-executor)
install(FILES ${pe_cli_docs}/_program-executor
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)

# copyright and the Debian changelog, in each package's doc directory (a
# version without a Debian revision makes the package native: changelog.gz).
# Its newest entry must be this version: a version bump without an entry
# fails here rather than shipping a changelog about another version.
file(STRINGS ${PROJECT_SOURCE_DIR}/cmake/debian/changelog pe_changelog_top LIMIT_COUNT 1)
if(NOT pe_changelog_top MATCHES "^program-executor \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "cmake/debian/changelog starts with '${pe_changelog_top}': add an entry "
                      "for version ${PROJECT_VERSION}")
endif()
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/debian/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/debian
  COMMAND ${PE_GZIP} -9nc ${PROJECT_SOURCE_DIR}/cmake/debian/changelog
          > ${PROJECT_BINARY_DIR}/debian/changelog.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/cmake/debian/changelog)
add_custom_target(pe_debian_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/debian/changelog.gz)
foreach(component daemon sdk)
  if(component STREQUAL sdk)
    set(doc_dir ${CMAKE_INSTALL_DATADIR}/doc/program-executor-dev)
  else()
    set(doc_dir ${CMAKE_INSTALL_DOCDIR})
  endif()
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/debian/copyright
                ${PROJECT_BINARY_DIR}/debian/changelog.gz
          DESTINATION ${doc_dir} COMPONENT ${component})
endforeach()

# ---- Debian package ------------------------------------------------------------
set(PE_PACKAGE_USER program-executor)
set(PE_PACKAGE_CONFIG ${CMAKE_INSTALL_FULL_SYSCONFDIR}/program-executor/config.yaml)
set(PE_PACKAGE_STATE_DIR ${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/program-executor)
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "program-executor: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; a .deb "
                 "is meant for /usr (-DCMAKE_INSTALL_PREFIX=/usr)")
endif()

# The maintainer scripts and the conffiles list, with this build's paths.
set(pe_debian_dir ${PROJECT_BINARY_DIR}/debian)
foreach(script conffiles postinst prerm postrm)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/debian/${script}.in ${pe_debian_dir}/${script} @ONLY)
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME program-executor)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "program-executor")
set(CPACK_PACKAGE_CONTACT "program-executor maintainers <maintainers@program-executor.invalid>")
# Each package's description below starts with its own synopsis. CPackDeb
# puts CPACK_PACKAGE_DESCRIPTION_SUMMARY (by default the project's
# DESCRIPTION) above it unless the summary is CPack's placeholder, so the
# placeholder it is: it appears nowhere in the packages.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CPACK_PACKAGE_NAME} built using CMake")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)

# Two packages: program-executor (component daemon: the daemon, units, config,
# demo plugin, docs, man page, completions) and program-executor-dev
# (component sdk: headers and the CMake package for building plugins).
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL daemon sdk)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/program-executor")

set(CPACK_DEBIAN_DAEMON_PACKAGE_NAME program-executor)
set(CPACK_DEBIAN_DAEMON_PACKAGE_SECTION misc)
string(CONCAT CPACK_DEBIAN_DAEMON_DESCRIPTION
    "${PROJECT_DESCRIPTION}\n"
    "A daemon, run by systemd, that executes programs (ordered lists of named\n"
    "jobs loaded from .so plugins) consumed from RabbitMQ, keeping each\n"
    "program's progress in an SQL table (SQLite, PostgreSQL, MySQL/MariaDB).\n"
    "Compatible with program-executor-js deployments. Includes a demo plugin;\n"
    "the plugin SDK is in program-executor-dev.")
# Libraries linked by the binary are found by dpkg-shlibdeps. The SOCI
# backends are dlopen()ed by the name in database.backend, so it cannot see
# them: SQLite (the packaged config's backend) is a dependency, the server
# backends are recommended (install the one database.backend names).
set(CPACK_DEBIAN_DAEMON_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_DAEMON_PACKAGE_DEPENDS "libsoci-sqlite3-4.0 (>= 4.0.3), adduser")
set(CPACK_DEBIAN_DAEMON_PACKAGE_RECOMMENDS
    "libsoci-postgresql4.0 (>= 4.0.3), libsoci-mysql4.0 (>= 4.0.3), libsoci-odbc4.0 (>= 4.0.3)")
set(CPACK_DEBIAN_DAEMON_PACKAGE_SUGGESTS "rabbitmq-server, program-executor-dev")
set(CPACK_DEBIAN_DAEMON_PACKAGE_CONTROL_EXTRA
    ${pe_debian_dir}/conffiles ${pe_debian_dir}/postinst ${pe_debian_dir}/prerm
    ${pe_debian_dir}/postrm)
# 0644 for conffiles, 0755 for the scripts, whatever the source permissions.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_SDK_PACKAGE_NAME program-executor-dev)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION libdevel)
string(CONCAT CPACK_DEBIAN_SDK_DESCRIPTION
    "plugin SDK of program-executor (headers and CMake package)\n"
    "Headers and the CMake package ProgramExecutorSDK for building job plugins\n"
    "for program-executor out of tree: find_package(ProgramExecutorSDK) and\n"
    "program_executor_add_plugin(). Plugins must be built with the compiler and\n"
    "nlohmann-json the daemon was built with (see plugin-guide.md).")
# The plugin ABI is the daemon's: the SDK of exactly this version, and what a
# plugin build needs beside it.
set(CPACK_DEBIAN_SDK_PACKAGE_DEPENDS
    "program-executor (= ${PROJECT_VERSION}), nlohmann-json3-dev (>= 3.11), cmake (>= 3.25), g++")
set(CPACK_DEBIAN_SDK_PACKAGE_SHLIBDEPS OFF)

include(CPack)
