# Both halves of the handshake: the client against arbitrary server bytes,
# the memory node against arbitrary first messages, and node key texts.
remora_fuzz_target(NAME handshake_fuzz
                   SOURCES tests/fuzz/handshake_fuzz.cc tests/fuzz/memnode_in_process.cc
                           tests/fuzz/fuzz_node.cc
                   LIBS remora_fuzz_memnode
                   CORPUS tests/fuzz/corpus/handshake)
