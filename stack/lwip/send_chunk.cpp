#include "send_chunk.hpp"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

namespace anysock::lwip_detail {

send_chunk_registry::~send_chunk_registry() {
  for (auto& [addr, c] : by_address_) {
    std::free(c->data);
    delete c;
  }
  for (send_chunk* c : cache_) {
    std::free(c->data);
    delete c;
  }
}

send_chunk* send_chunk_registry::take_cached(size_t size) {
  for (size_t i = 0; i < cache_.size(); ++i) {
    if (cache_[i]->capacity >= size) {
      send_chunk* c = cache_[i];
      cache_.erase(cache_.begin() + static_cast<std::ptrdiff_t>(i));
      cached_bytes_ -= c->capacity;
      *c = send_chunk{c->data, c->capacity};
      return c;
    }
  }
  return nullptr;
}

send_chunk* send_chunk_registry::allocate(size_t size) {
  size_t capacity = kMinSize;
  while (capacity < size) capacity *= 2;
  auto* c = new send_chunk;
  c->data = static_cast<char*>(std::malloc(capacity));
  if (c->data == nullptr) {
    delete c;
    return nullptr;
  }
  c->capacity = capacity;
  return c;
}

void send_chunk_registry::add(send_chunk* c) {
  by_address_[c->data] = c;
  bytes_held_ += c->capacity;
}

void send_chunk_registry::discard(send_chunk* c) {
  if (by_address_.erase(c->data) > 0) bytes_held_ -= c->capacity;
  c->acked = true;
  c->link_refs = 0;
  maybe_free(c);
}

send_chunk* send_chunk_registry::find(const void* p) const {
  const char* at = static_cast<const char*>(p);
  auto it = by_address_.upper_bound(at);
  if (it == by_address_.begin()) return nullptr;
  --it;
  send_chunk* c = it->second;
  return at < c->data + c->capacity ? c : nullptr;
}

void send_chunk_registry::release_acked(send_chunk* c) {
  c->acked = true;
  maybe_free(c);
}

void send_chunk_registry::drop_link_ref(send_chunk* c) {
  --c->link_refs;
  maybe_free(c);
}

void send_chunk_registry::maybe_free(send_chunk* c) {
  if (!c->acked || c->link_refs > 0) return;
  if (by_address_.erase(c->data) > 0) bytes_held_ -= c->capacity;
  if (cached_bytes_ + c->capacity <= kCacheBytes) {
    cache_.push_back(c);
    cached_bytes_ += c->capacity;
    return;
  }
  std::free(c->data);
  delete c;
}

void send_chunk_registry::sweep_orphans() {
  std::vector<send_chunk*> orphans;
  for (auto& [addr, c] : by_address_) {
    if (c->orphan && !c->acked) orphans.push_back(c);
  }
  if (orphans.empty()) return;
  std::set<const tcp_pcb*> active;
  for (tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) active.insert(p);
  for (send_chunk* c : orphans) {
    // A connection no longer active (aborted, or done and in TIME_WAIT) holds no segments. A pcb
    // address reused by a new connection only delays the release.
    auto it = active.find(c->pcb);
    if (it == active.end() || TCP_SEQ_GEQ((*it)->lastack, c->end_seq)) release_acked(c);
  }
}

}  // namespace anysock::lwip_detail
