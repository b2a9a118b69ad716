# The processor manager's socket message decoder (docs/security.md): every
# request a client may send, checked against its rules.
remora_fuzz_target(NAME runtime_message_fuzz
                   SOURCES tests/fuzz/runtime_message_fuzz.cc processor/runtime/runtime_message.cc
                   LIBS remora_fuzz_base
                   CORPUS tests/fuzz/corpus/runtime_message)
