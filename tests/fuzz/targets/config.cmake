# The memory node's TOML configuration loader.
remora_fuzz_target(NAME config_fuzz
                   SOURCES tests/fuzz/config_fuzz.cc
                   LIBS remora_fuzz_memnode
                   CORPUS tests/fuzz/corpus/config)
