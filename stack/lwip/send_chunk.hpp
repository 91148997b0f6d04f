// Zero-copy sends: a large send() copies the caller's bytes into a chunk *without* the engine lock
// and hands lwIP references to it (tcp_write without TCP_WRITE_FLAG_COPY), so the only copy under
// the lock disappears from the sender's path. A chunk must outlive every pbuf that points into it:
// lwIP's segments until the peer acknowledges them (the chunk's last sequence number), and the
// in-memory link's shared payloads until the receiving socket has read them. The registry tracks
// both and frees a chunk when it is acknowledged and no receiver holds it. All methods: engine lock
// held, except where noted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

struct tcp_pcb;

namespace anysock::lwip_detail {

struct send_chunk {
  char* data = nullptr;
  size_t capacity = 0;
  const tcp_pcb* pcb = nullptr;  // the connection whose segments point into it
  uint32_t end_seq = 0;          // acknowledged once the peer's ack reaches this
  bool acked = false;            // no lwIP segment points into it any more
  bool orphan = false;           // its socket is closed: the registry watches the pcb itself
  int link_refs = 0;             // receivers' shared payloads pointing into it
};

class send_chunk_registry {
 public:
  ~send_chunk_registry();

  /// A cached chunk of at least `size` bytes, or nullptr (then allocate one with allocate()).
  send_chunk* take_cached(size_t size);
  /// A new chunk (no lock needed; register() it before lwIP sees it).
  static send_chunk* allocate(size_t size);
  /// Makes `c` findable by the addresses inside it.
  void add(send_chunk* c);
  /// Gives back a chunk lwIP never used (registered or not).
  void discard(send_chunk* c);
  /// The registered chunk whose bytes contain `p`, or nullptr.
  send_chunk* find(const void* p) const;
  /// No lwIP segment points into `c` any more.
  void release_acked(send_chunk* c);
  void add_link_ref(send_chunk* c) { ++c->link_refs; }
  void drop_link_ref(send_chunk* c);
  /// Releases orphans whose connection is gone or has acknowledged them.
  void sweep_orphans();
  size_t held() const { return by_address_.size(); }
  /// Bytes of registered chunks (they count against anysock::lwip::set_memory_limit).
  size_t bytes_held() const { return bytes_held_; }

 private:
  static constexpr size_t kMinSize = 64 * 1024;
  static constexpr size_t kCacheBytes = 32u << 20;
  void maybe_free(send_chunk* c);
  std::map<const char*, send_chunk*> by_address_;
  std::vector<send_chunk*> cache_;
  size_t cached_bytes_ = 0;
  size_t bytes_held_ = 0;
};

}  // namespace anysock::lwip_detail
