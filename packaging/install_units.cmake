# Runs at install time (install(SCRIPT)): writes the systemd units and the
# daemons' configuration for the prefix being installed to. Set before it:
# REMORA_SOURCE_DIR, REMORA_BINARY_DIR, REMORA_BINDIR_REL, REMORA_DOCDIR_REL.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(etc "/etc")
else()
  set(etc "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(REMORA_BINDIR "${CMAKE_INSTALL_PREFIX}/${REMORA_BINDIR_REL}")
set(REMORA_DOCDIR "${CMAKE_INSTALL_PREFIX}/${REMORA_DOCDIR_REL}")
set(REMORA_ETCDIR "${etc}/remora")

# The configuration: the commented examples of configs/. file(INSTALL) adds
# DESTDIR itself.
file(INSTALL "${REMORA_SOURCE_DIR}/configs/memory-node.toml"
             "${REMORA_SOURCE_DIR}/configs/processor.toml"
     DESTINATION "${REMORA_ETCDIR}")

set(staged "${REMORA_BINARY_DIR}/packaging/units")
foreach(unit remora-memory-node.service remora-processor.service)
  configure_file("${REMORA_SOURCE_DIR}/packaging/${unit}.in" "${staged}/${unit}" @ONLY)
  file(INSTALL "${staged}/${unit}" DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endforeach()
