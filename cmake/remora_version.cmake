# Writes OUT, a header defining REMORA_VERSION_STRING: the project version
# (VERSION) and, in a git checkout, `git describe` of the source tree (SRC).
# Run at every build; the header is rewritten only when the text changes, so
# nothing recompiles unless the commit does.
set(text "${VERSION}")
find_program(GIT git)
if(GIT AND EXISTS "${SRC}/.git")
  execute_process(COMMAND "${GIT}" -C "${SRC}" describe --tags --always --dirty
                  OUTPUT_VARIABLE describe OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0 AND describe)
    set(text "${VERSION} (git ${describe})")
  endif()
endif()
set(content "#pragma once\n#define REMORA_VERSION_STRING \"${text}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL content)
  file(WRITE "${OUT}" "${content}")
endif()
