// Names the calling thread, so `top -H`, `ps -L`, gdb and perf tell a
// fault thread from a control thread. Linux keeps 15 bytes of a name; a
// longer one is cut, never refused.
#pragma once

#include <pthread.h>

#include <string>

namespace remora {

inline void NameThisThread(std::string name) {
  if (name.size() > 15) name.resize(15);
  (void)pthread_setname_np(pthread_self(), name.c_str());
}

}  // namespace remora
