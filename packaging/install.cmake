# Install layout and the Debian package (CPack), included by the top-level
# CMakeLists.txt after every target exists.
#
#   cmake --install build [--prefix P]      P defaults to /usr/local
#   (cd build && cpack -G DEB)              remora_<version>_<arch>.deb, prefix /usr
#
# What goes where, P the prefix and ETC its configuration directory (/etc
# when P is /usr, P/etc otherwise):
#   P/bin/remora                            the CLI and every daemon
#   P/share/remora/remora-plot.py           what `remora plot` runs
#   P/lib/remora/libremora_shim.so          the preloaded shim; `remora run`
#                                           finds it at ../lib/remora from
#                                           its own binary (and next to the
#                                           binary in the build tree)
#   ETC/remora/{memory-node,processor}.toml the daemons' configuration
#   P/lib/systemd/system/remora-*.service   the units, reading ETC/remora
#   P/share/doc/remora/                     README.md, docs/, examples/ (configs/)
#
# The units and the configuration directory depend on the prefix given at
# install time (`cmake --install --prefix`, or CPack's /usr), so they are
# written by packaging/install_units.cmake when installing, not at configure.

# Installing (and CPack) takes what is built and builds nothing: the package
# needs only the binary and the shim, not every test and benchmark.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS remora RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS remora_shim LIBRARY DESTINATION lib/remora)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
file(GLOB remora_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${remora_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)  # README.md links docs/
file(GLOB remora_configs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/configs/*.toml)
install(FILES ${remora_configs} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# `remora plot` runs the timeline plotter (python3-matplotlib) from
# ../share/remora next to its own binary (cli/cmd_plot.cc).
install(PROGRAMS ${PROJECT_SOURCE_DIR}/tools/remora-plot.py
        DESTINATION ${CMAKE_INSTALL_DATADIR}/remora)

install(CODE "set(REMORA_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
set(REMORA_BINARY_DIR \"${CMAKE_BINARY_DIR}\")
set(REMORA_BINDIR_REL \"${CMAKE_INSTALL_BINDIR}\")
set(REMORA_DOCDIR_REL \"${CMAKE_INSTALL_DOCDIR}\")")
install(SCRIPT ${PROJECT_SOURCE_DIR}/packaging/install_units.cmake)

# The Debian package. CPACK_SET_DESTDIR: CPack installs with the real prefix
# (/usr) under a staging DESTDIR, so the units name /usr/bin/remora and the
# configuration lands in /etc/remora.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME remora)
set(CPACK_PACKAGE_VENDOR "Remora")
set(CPACK_PACKAGE_CONTACT "Remora maintainers <remora@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "run unmodified programs with their memory on other machines")
set(CPACK_PACKAGE_DESCRIPTION
    "Remora is a user-space split-kernel paging system: programs run under `remora run` \
with a small set-associative page cache on the processor node and their pages on memory \
nodes reached over RDMA, TCP or shared memory.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
# The package carries no debug information (the build tree keeps it).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Libraries the binary links come from dpkg-shlibdeps; what it loads by
# name at run time is listed by hand: the allocator preloaded under
# programs, and the plot tool's interpreter and matplotlib.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libmimalloc2.0, python3, python3-matplotlib")
# RDMA device providers are dlopen()ed by libibverbs; without them there is
# no RDMA device, and TCP and shared memory still work.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ibverbs-providers, rdma-core")
configure_file(${PROJECT_SOURCE_DIR}/packaging/debian/conffiles
               ${CMAKE_BINARY_DIR}/packaging/debian/conffiles COPYONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/packaging/debian/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
