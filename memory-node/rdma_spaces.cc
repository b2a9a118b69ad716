#include "memory-node/rdma_spaces.h"

#include <algorithm>
#include <cstring>

#include "memory-node/space_errors.h"

namespace remora {

RdmaSpaces::~RdmaSpaces() {
  for (auto& [asid, sp] : spaces_)
    for (const auto& [uva, f] : sp->pages) frames_->Unref(f);
}

Status RdmaSpaces::CreateSpace(Asid asid) {
  if (spaces_.count(asid)) return SpaceExists(asid);
  spaces_.emplace(asid, std::make_unique<Space>());
  return Status::Ok();
}

Status RdmaSpaces::DestroySpace(Asid asid) {
  auto it = spaces_.find(asid);
  if (it == spaces_.end()) return NoSuchSpace(asid);
  for (const auto& [uva, f] : it->second->pages) frames_->Unref(f);
  spaces_.erase(it);
  return Status::Ok();
}

Status RdmaSpaces::ForkSpace(Asid parent, Asid child) {
  auto it = spaces_.find(parent);
  if (it == spaces_.end()) return NoSuchSpace(parent);
  if (spaces_.count(child)) return SpaceExists(child);
  auto copy = std::make_unique<Space>(*it->second);
  for (const auto& [uva, f] : copy->pages) frames_->Ref(f);
  spaces_.emplace(child, std::move(copy));
  return Status::Ok();
}

Status RdmaSpaces::SpaceForRange(Asid asid, std::uint64_t start, std::uint64_t len, Space** sp) {
  REMORA_RETURN_IF_ERROR(CheckRangeArgs(start, len));
  auto it = spaces_.find(asid);
  if (it == spaces_.end()) return NoSuchSpace(asid);
  *sp = it->second.get();
  return Status::Ok();
}

Status RdmaSpaces::RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  Space* sp;
  REMORA_RETURN_IF_ERROR(SpaceForRange(asid, start, len, &sp));
  sp->ranges.Add(start, start + len);
  return Status::Ok();
}

Status RdmaSpaces::UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  Space* sp;
  REMORA_RETURN_IF_ERROR(SpaceForRange(asid, start, len, &sp));
  Drop(sp, start, start + len);
  sp->ranges.Remove(start, start + len);
  return Status::Ok();
}

Status RdmaSpaces::DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) {
  Space* sp;
  REMORA_RETURN_IF_ERROR(SpaceForRange(asid, start, len, &sp));
  Drop(sp, start, start + len);
  return Status::Ok();
}

void RdmaSpaces::Drop(Space* sp, std::uint64_t start, std::uint64_t end) {
  std::vector<std::uint64_t> victims;
  if ((end - start) / kPageSize < sp->pages.size()) {
    for (std::uint64_t uva = start; uva < end; uva += kPageSize)
      if (sp->pages.count(uva)) victims.push_back(uva);
  } else {
    for (const auto& [uva, f] : sp->pages)
      if (uva >= start && uva < end) victims.push_back(uva);
  }
  for (std::uint64_t uva : victims) {
    frames_->Unref(sp->pages[uva]);
    sp->pages.erase(uva);
  }
}

Status RdmaSpaces::Check(Asid asid, std::uint64_t uva, Space** sp) {
  if (!PageAligned(uva)) return {Code::kBadRequest, "page address is not page aligned"};
  auto it = spaces_.find(asid);
  if (it == spaces_.end()) return NoSuchSpace(asid);
  if (!it->second->ranges.Contains(uva))
    return {Code::kNotRegistered,
            "address outside every registered range of space " + std::to_string(asid)};
  *sp = it->second.get();
  return Status::Ok();
}

Status RdmaSpaces::MakeWritable(Space* sp, std::uint64_t uva, Frame* f) {
  auto it = sp->pages.find(uva);
  if (it != sp->pages.end() && frames_->refcount(it->second) == 1) {
    *f = it->second;
    return Status::Ok();
  }
  Frame fresh;
  REMORA_RETURN_IF_ERROR(frames_->Allocate(&fresh));
  if (it != sp->pages.end()) {  // shared since a fork: copy for this space alone
    std::memcpy(frames_->Data(fresh), frames_->Data(it->second), kPageSize);
    frames_->Unref(it->second);
    it->second = fresh;
    ++m_.cow_breaks;
  } else {
    sp->pages.emplace(uva, fresh);
  }
  *f = fresh;
  return Status::Ok();
}

rdma::Mapping RdmaSpaces::MappingOf(Frame f) const {
  rdma::Mapping m;
  m.addr = frames_->RemoteAddr(f);
  m.rkey = frames_->Rkey(f);
  m.present = true;
  m.writable = frames_->refcount(f) == 1;
  return m;
}

Status RdmaSpaces::Map(Asid asid, std::span<const std::uint64_t> uvas, bool for_write,
                       std::vector<rdma::Mapping>* out) {
  out->assign(uvas.size(), rdma::Mapping{});
  for (std::size_t i = 0; i < uvas.size(); ++i) {
    Space* sp = nullptr;
    REMORA_RETURN_IF_ERROR(Check(asid, uvas[i], &sp));
    if (for_write) {
      Frame f;
      Status st = MakeWritable(sp, uvas[i], &f);
      if (!st.ok())
        return {st.code(), "page " + std::to_string(i) + " of " + std::to_string(uvas.size()) +
                               ": " + st.message()};
      (*out)[i] = MappingOf(f);
    } else if (auto it = sp->pages.find(uvas[i]); it != sp->pages.end()) {
      (*out)[i] = MappingOf(it->second);
    }
  }
  m_.pages_mapped += uvas.size();
  return Status::Ok();
}

Status RdmaSpaces::ReadPage(Asid asid, std::uint64_t uva, void* out, bool* present) {
  Space* sp = nullptr;
  REMORA_RETURN_IF_ERROR(Check(asid, uva, &sp));
  auto it = sp->pages.find(uva);
  *present = it != sp->pages.end();
  if (*present)
    std::memcpy(out, frames_->Data(it->second), kPageSize);
  else
    std::memset(out, 0, kPageSize);
  return Status::Ok();
}

Status RdmaSpaces::WritePage(Asid asid, std::uint64_t uva, const void* data) {
  Space* sp = nullptr;
  REMORA_RETURN_IF_ERROR(Check(asid, uva, &sp));
  Frame f;
  REMORA_RETURN_IF_ERROR(MakeWritable(sp, uva, &f));
  std::memcpy(frames_->Data(f), data, kPageSize);
  return Status::Ok();
}

Status RdmaSpaces::WritePageShared(std::span<const Asid> asids, std::uint64_t uva,
                                   const void* data) {
  if (asids.empty()) return {Code::kBadRequest, "shared write names no address space"};
  std::vector<Asid> unique(asids.begin(), asids.end());
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  std::vector<Space*> sps(unique.size());
  for (std::size_t i = 0; i < unique.size(); ++i)
    REMORA_RETURN_IF_ERROR(Check(unique[i], uva, &sps[i]));
  // Already one frame held by exactly these spaces: overwrite it in place.
  auto first = sps[0]->pages.find(uva);
  if (first != sps[0]->pages.end() && frames_->refcount(first->second) == sps.size() &&
      std::all_of(sps.begin(), sps.end(), [&](Space* sp) {
        auto it = sp->pages.find(uva);
        return it != sp->pages.end() && it->second == first->second;
      })) {
    std::memcpy(frames_->Data(first->second), data, kPageSize);
    return Status::Ok();
  }
  Frame fresh;
  REMORA_RETURN_IF_ERROR(frames_->Allocate(&fresh));
  std::memcpy(frames_->Data(fresh), data, kPageSize);
  for (std::size_t i = 1; i < sps.size(); ++i) frames_->Ref(fresh);
  for (Space* sp : sps) {
    auto [it, inserted] = sp->pages.try_emplace(uva, fresh);
    if (!inserted) {
      frames_->Unref(it->second);
      it->second = fresh;
    }
  }
  return Status::Ok();
}

}  // namespace remora
