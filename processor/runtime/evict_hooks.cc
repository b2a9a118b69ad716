// How the pcache's eviction reaches the programs' pages (EvictHooks).
//
// For each rmap of the victim line (each process mapping it):
//   wrprotect  write-protect a dirty page through the program's uffd. From
//              then on a writer blocks in the kernel, so the copy below is
//              the page's final content. (A clean line's page is
//              write-protected already.) The process is kept in the
//              context's slot for the rmap: it is an owner of the data.
//   copy_out   dirty lines only: read the page (/proc/PID/mem) into
//              the victim cache entry, and remember that the page now has
//              data on its way to the memory node.
//   zap        queue a zap for each owner's agent. The line is freed right
//              after; the program may keep reading the old page until the
//              agent drops it, which is harmless (same data, no writes).
//              An owner with more than ZapQueue::kMaxPending zaps pending
//              is waited for (backpressure, ZapQueue::Throttle): that keeps
//              its resident pages within a fixed margin of the pcache.
//
// The hooks of one eviction run on one thread, in that order, and share
// only the pcache's EvictionContext for it.
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "processor/abi/uffd.h"
#include "processor/runtime/process_session.h"
#include "processor/runtime/processor_manager.h"

namespace remora {
namespace {

bool Gone(int e) { return e == ESRCH || e == ENOENT || e == EINVAL || e == EFAULT; }

// The owner wrprotect froze for rmap i, or null.
ProcessSession* Owner(const EvictionContext& ctx, std::size_t i) {
  return static_cast<ProcessSession*>(ctx.held(i).get());
}

}  // namespace

EvictHooks ProcessorManager::MakeEvictHooks() {
  EvictHooks hooks;
  hooks.wrprotect = [this](EvictionContext& ctx, std::size_t i) -> Status {
    const Rmap& rmap = ctx.rmaps()[i];
    std::shared_ptr<ProcessSession> s = FindSession(rmap.asid);
    if (!s || s->dead()) {
      counters_.evict_owner_gone->Inc();
      return Status::Ok();
    }
    // Invariant: a clean line's page is write-protected (it was installed
    // so, and only a write-protect fault, which dirties the line, lifts it).
    // Only dirty pages need freezing, and the ioctl's TLB shootdown is
    // saved for clean ones.
    const int e = ctx.dirty() ? uffd::WriteProtect(s->uffd(), rmap.uva, kPageSize, true) : 0;
    if (e == 0) {
      ctx.held(i) = std::move(s);
    } else if (Gone(e)) {
      counters_.evict_owner_gone->Inc();  // process exiting or range unmapped
    } else {
      return {Code::kIoError, std::string("write-protecting an evicted page: ") + std::strerror(e)};
    }
    return Status::Ok();
  };

  hooks.copy_out = [this](const EvictionContext& ctx, void* dst) -> Status {
    const std::span<const Rmap> rmaps = ctx.rmaps();
    for (std::size_t i = 0; i < rmaps.size(); ++i) {
      ProcessSession* s = Owner(ctx, i);
      // A page that vanished from the page table fails the read (it never
      // waits for a fault: that would be this very eviction's).
      if (s == nullptr) continue;
      if (s->ReadProcessPage(rmaps[i].uva, dst) == 0) {
        for (std::size_t j = 0; j < rmaps.size(); ++j) {
          if (ProcessSession* o = Owner(ctx, j)) o->MarkRemoteCopy(rmaps[j].uva);
        }
        return Status::Ok();
      }
    }
    // No owner can give the data: they all exited or unmapped the page, so
    // nobody will read it again. Store zeros rather than fail the eviction.
    counters_.evict_owner_gone->Inc();
    std::memset(dst, 0, kPageSize);
    return Status::Ok();
  };

  hooks.zap = [this](const EvictionContext& ctx) {
    const std::span<const Rmap> rmaps = ctx.rmaps();
    const ShadowEntry shadowed{
        .dirty = ctx.dirty(), .reserve = reclaimer_->Holding(), .set_eviction = ctx.set_eviction()};
    for (std::size_t i = 0; i < rmaps.size(); ++i) {
      ProcessSession* s = Owner(ctx, i);
      if (s == nullptr) continue;
      if (s->zaps().Zap(rmaps[i].uva).ok()) counters_.zap_pages->Inc();
      s->NoteZap(rmaps[i].uva);  // a fork in progress passes it on to the child
      shadow_->Evicted({s->asid(), rmaps[i].uva}, shadowed);
    }
    // No set lock is held here, and the agent never touches managed memory
    // (docs/runtime.md), so waiting for it cannot wait for this eviction.
    for (std::size_t i = 0; i < rmaps.size(); ++i) {
      ProcessSession* s = Owner(ctx, i);
      if (s == nullptr) continue;
      switch (s->zaps().Throttle()) {
        case ZapQueue::Backpressure::kNone:
          break;
        case ZapQueue::Backpressure::kWaited:
          counters_.zap_throttle_wait->Inc();
          break;
        case ZapQueue::Backpressure::kGaveUp:
          counters_.zap_throttle_gave_up->Inc();
          break;
      }
    }
  };
  return hooks;
}

}  // namespace remora
