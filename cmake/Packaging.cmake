# Installation beyond the binary and the SDK, and the Debian package.
#
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr
#   cmake --build build && (cd build && cpack -G DEB)
#
# builds program-executor_<version>_<arch>.deb (see docs/operations.md for its
# layout). Configure with the prefix /usr: GNUInstallDirs then puts the config
# in /etc and the plugins in /usr/lib/<multiarch>/program-executor/plugins, the
# paths compiled into the daemon and written into the maintainer scripts.
#
# Installed elsewhere: daemon/ (the binary, program-executor.service, the
# example config as <sysconfdir>/program-executor/config.yaml), plugins/demo
# (demo.so into the plugin directory) and core/ (the SDK component).

# ---- install layout ----------------------------------------------------------
# The template unit beside program-executor.service.
install(FILES ${PROJECT_SOURCE_DIR}/systemd/program-executor@.service
        DESTINATION ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
# The documentation the units and the config point at.
install(FILES ${PROJECT_SOURCE_DIR}/README.md
              ${PROJECT_SOURCE_DIR}/docs/architecture.md
              ${PROJECT_SOURCE_DIR}/docs/configuration.md
              ${PROJECT_SOURCE_DIR}/docs/operations.md
              ${PROJECT_SOURCE_DIR}/docs/plugin-guide.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

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
set(CPACK_PACKAGE_CONTACT "program-executor maintainers <program-executor@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION
    "A daemon, run by systemd, that executes programs (ordered lists of named jobs\n"
    "loaded from .so plugins) consumed from RabbitMQ, keeping each program's progress\n"
    "in an SQL table (SQLite, PostgreSQL, MySQL/MariaDB). Compatible with\n"
    "program-executor-js deployments. Includes the plugin SDK (headers and CMake\n"
    "package) and a demo plugin.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/program-executor")
# Libraries linked by the binary are found by dpkg-shlibdeps. The SOCI
# backends are dlopen()ed by name at run time, so it cannot see them: they
# are listed here (any of them may be configured as database.backend), with
# adduser for the postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libsoci-sqlite3-4.0 (>= 4.0.3), libsoci-postgresql4.0 (>= 4.0.3), libsoci-mysql4.0 (>= 4.0.3), libsoci-odbc4.0 (>= 4.0.3), adduser")
# What an out-of-tree plugin build needs beside the SDK shipped here.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "rabbitmq-server, nlohmann-json3-dev (>= 3.11), cmake (>= 3.25), g++")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${pe_debian_dir}/conffiles ${pe_debian_dir}/postinst ${pe_debian_dir}/prerm
    ${pe_debian_dir}/postrm)
# 0644 for conffiles, 0755 for the scripts, whatever the source permissions.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
