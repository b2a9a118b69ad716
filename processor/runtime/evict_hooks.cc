// How the pcache's eviction reaches the programs' pages (EvictHooks).
//
// For each rmap of the victim line (each process mapping it):
//   unmap     write-protect a dirty page through the program's uffd. From
//             then on a writer blocks in the kernel, so the copy below is
//             the page's final content. (A clean line's page is
//             write-protected already.)
//   copy_out  dirty lines only: read the page with process_vm_readv into
//             the victim cache entry, and remember that the page now has
//             data on its way to the memory node.
//   zap       queue a zap for the program's agent. The line is freed right
//             after; the program may keep reading the old page until the
//             agent drops it, which is harmless (same data, no writes).
//
// The hooks of one eviction run on one thread, in that order; what unmap
// learned is passed on in a thread-local context.
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"
#include "processor/abi/uffd.h"

namespace remora {
namespace {

struct EvictContext {
  bool active = false;
  LineId line = 0;
  bool dirty = false;
  // Owners whose page was write-protected: where the data can be read and
  // who gets a zap.
  std::vector<std::pair<std::shared_ptr<ProcessSession>, std::uint64_t>> owners;
};

thread_local EvictContext tls_evict;

EvictContext& ContextFor(LineId line) {
  EvictContext& ctx = tls_evict;
  if (!ctx.active || ctx.line != line) {
    ctx.owners.clear();
    ctx.active = true;
    ctx.line = line;
    ctx.dirty = false;
  }
  return ctx;
}

bool Gone(int e) { return e == ESRCH || e == ENOENT || e == EINVAL || e == EFAULT; }

}  // namespace

EvictHooks ProcessorManager::MakeEvictHooks() {
  EvictHooks hooks;
  hooks.unmap = [this](LineId line, const Rmap& rmap, bool dirty, bool*) -> Status {
    EvictContext& ctx = ContextFor(line);
    ctx.dirty = ctx.dirty || dirty;
    std::shared_ptr<ProcessSession> s = FindSession(rmap.asid);
    if (!s || s->dead()) {
      counters_.evict_owner_gone->Inc();
      return Status::Ok();
    }
    // Invariant: a clean line's page is write-protected (it was installed
    // so, and only a write-protect fault, which dirties the line, lifts it).
    // Only dirty pages need freezing, and the ioctl's TLB shootdown is
    // saved for clean ones.
    const int e = dirty ? uffd::WriteProtect(s->uffd(), rmap.uva, kPageSize, true) : 0;
    if (e == 0) {
      ctx.owners.emplace_back(std::move(s), rmap.uva);
    } else if (Gone(e)) {
      counters_.evict_owner_gone->Inc();  // process exiting or range unmapped
    } else {
      ctx.active = false;
      return {Code::kIoError, std::string("write-protecting an evicted page: ") + std::strerror(e)};
    }
    return Status::Ok();
  };

  hooks.copy_out = [this](LineId line, void* dst) -> Status {
    EvictContext& ctx = ContextFor(line);
    for (auto& [s, uva] : ctx.owners) {
      // A page that vanished from the page table would make the read fault
      // into the very eviction we are running; check first.
      if (!s->PagePresent(uva)) continue;
      if (s->ReadProcessPage(uva, dst) == 0) {
        for (auto& [o, ouva] : ctx.owners) o->MarkRemoteCopy(ouva);
        return Status::Ok();
      }
    }
    // No owner can give the data: they all exited or unmapped the page, so
    // nobody will read it again. Store zeros rather than fail the eviction.
    counters_.evict_owner_gone->Inc();
    std::memset(dst, 0, kPageSize);
    return Status::Ok();
  };

  hooks.zap = [this](LineId line, const std::vector<Rmap>&) {
    EvictContext& ctx = ContextFor(line);
    for (auto& [s, uva] : ctx.owners) {
      if (s->zaps().Zap(uva).ok()) counters_.zap_pages->Inc();
      s->NoteZap(uva);  // a fork in progress passes it on to the child
      shadow_->Evicted({s->asid(), uva}, ctx.dirty);
    }
    ctx.owners.clear();
    ctx.active = false;
  };
  return hooks;
}

}  // namespace remora
