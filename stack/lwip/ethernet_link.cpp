#include "ethernet_link.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "engine.hpp"
#include "host.hpp"
#include "lwip/pbuf.h"

namespace anysock::lwip_detail {
namespace {

// Frames one receive() call asks the driver for at a time.
constexpr size_t kBurst = 64;
// Frames that may wait for room in the driver; beyond that they are dropped (TCP resends them).
constexpr size_t kMaxWaiting = 16384;
constexpr size_t kEthernetHeader = 14;

}  // namespace

ethernet_link::ethernet_link(engine& eng, std::unique_ptr<drivers::link> link)
    : engine_(eng), link_(std::move(link)) {
  received_.reserve(kBurst);
}

ethernet_link::~ethernet_link() = default;

std::string ethernet_link::label() const {
  return std::string(link_->kind()) + ":" + link_->iface();
}

void ethernet_link::attach(host* h) {
  host_ = h;
  std::memcpy(mac_, h->nif()->hwaddr, sizeof mac_);
  engine_.add_ethernet(this);
}

void ethernet_link::detach(host* h) {
  if (host_ != h) return;
  engine_.remove_ethernet(this);
  host_ = nullptr;
}

short ethernet_link::poll_events() const {
  const bool blocked = stalled_ && (unflushed_ || !waiting_.empty());
  return static_cast<short>(POLLIN | (blocked ? POLLOUT : 0));
}

void ethernet_link::add_counters(lwip::link_counters& c) const {
  const drivers::link_stats os = link_->stats();
  c.drops += drops_ + os.rx_dropped + os.tx_dropped;
  c.oversize += oversize_;
  c.rx_bursts += rx_bursts_;
  c.tx_flushes += tx_flushes_;
  c.wakeups += wakeups_;
}

void ethernet_link::note(int error) {
  if (error == ENODEV) fail(error);
  if (error == ENETDOWN && !down_) {
    down_ = true;
    engine_.link_failed();  // the engine checks on it from now on
  }
}

void ethernet_link::check() {
  switch (link_->state()) {
    case drivers::link_state::gone:
      fail(ENODEV);
      break;
    case drivers::link_state::up:
      down_ = false;
      break;
    case drivers::link_state::down:
      note(ENETDOWN);
      break;
  }
}

void ethernet_link::fail(int error) {
  (void)error;  // ENODEV: the only failure that is final
  if (failed_) return;
  failed_ = true;
  waiting_.clear();
  engine_.link_failed();
}

size_t ethernet_link::receive(size_t budget) {
  if (failed_ || host_ == nullptr) return 0;
  size_t total = 0;
  while (total < budget) {
    const size_t want = std::min(kBurst, budget - total);
    received_.clear();
    // The longest frame the host takes: its MTU, the Ethernet header and one VLAN tag, and never
    // more than a pbuf holds (its length is 16 bits: at an MTU past 65,517 a frame the link carries
    // can be longer). Anything longer is dropped and counted; no size is narrowed unchecked.
    const size_t max_frame = std::min<size_t>(host_->config().mtu + kEthernetHeader + 4,
                                              std::numeric_limits<u16_t>::max());
    drivers::burst b = link_->receive(want, [this, max_frame](drivers::frame f) {
      if (f.size() <= kEthernetHeader) return;
      if (f.size() > max_frame) {
        ++oversize_;
        return;
      }
      // Another station's unicast (the drivers run promiscuous on a shared segment).
      if ((f[0] & 1) == 0 && std::memcmp(f.data(), mac_, sizeof mac_) != 0) return;
      pbuf* p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(f.size()), PBUF_RAM);
      if (p == nullptr) {
        ++drops_;
        engine_.count_memory_failure();
        return;
      }
      std::memcpy(p->payload, f.data(), f.size());
      received_.push_back(p);
    });
    total += b.frames;
    if (b.frames > 0) ++rx_bursts_;
    // The driver is done with the burst: now the stack may answer (and send) as it likes.
    for (pbuf* p : received_) host_->input(p);
    received_.clear();
    if (b.error != 0) {
      note(b.error);
      break;
    }
    if (b.frames < want) break;  // drained
  }
  return total;
}

bool ethernet_link::transmit(host*, pbuf* p, bool) {
  if (failed_) return false;
  pieces_.clear();
  for (const pbuf* q = p; q != nullptr; q = q->next) {
    if (q->len > 0) pieces_.push_back({q->payload, q->len});
  }
  const drivers::tx_frame f{std::span<const iovec>(pieces_)};
  if (!waiting_.empty()) {  // keep the order: behind the frames already waiting
    queue_copy(f);
    return true;
  }
  return send_now(f);
}

bool ethernet_link::send_now(const drivers::tx_frame& f) {
  for (int attempt = 0;; ++attempt) {
    const drivers::burst b = link_->transmit(std::span<const drivers::tx_frame>(&f, 1));
    if (b.frames == 1) {
      unflushed_ = true;
      return true;
    }
    if (b.error == EAGAIN) {
      if (attempt == 0 && unflushed_) {
        // The ring is full of this pump's frames: send them, then try again.
        unflushed_ = false;
        ++tx_flushes_;
        const int e = link_->flush();
        if (e != 0 && e != EAGAIN) {
          note(e);
          if (failed_) return false;
        }
        if (e == EAGAIN) unflushed_ = true;
        continue;
      }
      stalled_ = true;
      queue_copy(f);
      return true;
    }
    note(b.error);
    ++drops_;  // EMSGSIZE, ENETDOWN (the interface is down for now), another errno
    return false;
  }
}

void ethernet_link::queue_copy(const drivers::tx_frame& f) {
  if (waiting_.size() >= kMaxWaiting) {
    ++drops_;
    return;
  }
  std::vector<uint8_t> copy(f.size());
  f.copy_to(copy.data());
  waiting_.push_back(std::move(copy));
}

void ethernet_link::flush() {
  if (failed_) return;
  while (true) {
    if (unflushed_) {
      unflushed_ = false;
      ++tx_flushes_;
      const int e = link_->flush();
      if (e != 0 && e != EAGAIN) {
        note(e);
        if (failed_) return;
      }
      if (e == EAGAIN) {  // the OS took only part: the rest goes when fd() says so
        unflushed_ = true;
        stalled_ = true;
        return;
      }
    }
    if (waiting_.empty()) {
      stalled_ = false;
      return;
    }
    size_t moved = 0;
    while (!waiting_.empty()) {
      const drivers::tx_frame f(waiting_.front().data(), waiting_.front().size());
      const drivers::burst b = link_->transmit(std::span<const drivers::tx_frame>(&f, 1));
      if (b.frames == 1) {
        waiting_.pop_front();
        unflushed_ = true;
        ++moved;
        continue;
      }
      if (b.error == EAGAIN) break;
      note(b.error);
      if (failed_) return;
      ++drops_;
      waiting_.pop_front();
    }
    if (moved == 0 && !unflushed_) {
      stalled_ = true;  // no room at all: wait for POLLOUT
      return;
    }
  }
}

}  // namespace anysock::lwip_detail
