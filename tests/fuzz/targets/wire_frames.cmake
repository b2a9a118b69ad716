# The memory node's protocol decoder: authenticated frame streams, correctly
# tagged but otherwise arbitrary, served by a real MemoryNodeService driven
# in the fuzzing thread (memnode_in_process.h).
remora_fuzz_target(NAME wire_frames_fuzz
                   SOURCES tests/fuzz/wire_frames_fuzz.cc tests/fuzz/memnode_in_process.cc
                           tests/fuzz/fuzz_node.cc
                   LIBS remora_fuzz_memnode
                   CORPUS tests/fuzz/corpus/wire_frames)
