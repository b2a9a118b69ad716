# The processor manager's socket message decoder (docs/security.md).
remora_fuzz_target(NAME runtime_message SOURCES ${CMAKE_CURRENT_LIST_DIR}/../runtime_message_fuzz.cc LIBS remora_runtime CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/runtime_message)
