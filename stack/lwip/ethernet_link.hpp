// An lwIP host's Ethernet medium: one drivers::link (tap, pcap, af_packet, af_xdp) on an OS
// interface, owned by the one host on it.
//
// Receiving: the engine asks receive() when the link's descriptor is readable (or from
// lwip::poll()); each frame addressed to the host (its MAC, broadcast or multicast) is copied once,
// from the driver's memory into a pbuf of its exact size, and handed to the host's netif
// (ethernet_input) after the burst, never from inside the driver's callback.
// Sending: lwIP hands linkoutput a pbuf chain; its pieces go to the driver as one gather list
// (copied straight into the ring slot or written with writev), and the engine flushes every link
// once at the end of each pump, so a batching driver sends all of a pump's frames in one system
// call. Frames the driver cannot take yet (ring full) wait here, in order, until it can (the
// engine then polls for POLLOUT).
// Failure: ENODEV (the interface was deleted) marks the link failed and tells the engine, which
// takes the host down outside the pump (host::crash).
//
// Every call is made with the engine lock held, except construction and destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "../../drivers/link.hpp"
#include "medium.hpp"

namespace anysock::lwip_detail {

class engine;

class ethernet_link final : public medium {
 public:
  explicit ethernet_link(engine& eng, std::unique_ptr<drivers::link> link);
  ~ethernet_link() override;

  // medium
  std::string label() const override;
  bool ethernet() const override { return true; }
  /// Starts receiving for `h` (whose netif carries the MAC address frames must be sent to).
  void attach(host* h) override;
  void detach(host* h) override;
  bool transmit(host* from, pbuf* p, bool ipv6) override;
  void add_counters(lwip::link_counters& c) const override;

  // ---- for the engine -------------------------------------------------------------------------
  int fd() const { return link_->fd(); }
  /// What to poll fd() for: POLLIN, and POLLOUT while frames wait for room in the driver.
  short poll_events() const;
  /// Receives up to `budget` waiting frames into the host; returns how many frames arrived.
  size_t receive(size_t budget);
  /// Sends what transmit() queued, then frames that waited for room.
  void flush();
  /// The interface was deleted (ENODEV): the host goes down.
  bool failed() const { return failed_; }
  /// The interface is down, or being deleted: the OS tells only once (libpcap does not even
  /// pass that on), so the engine asks check() on every timer pass until the link is up or gone.
  bool down() const { return down_; }
  /// Asks the OS about the interface now (after an error event on fd(), and while down()): fails
  /// the link if it is gone, marks it down() or clears that.
  void check();
  host* attached() const { return host_; }
  drivers::link& driver() { return *link_; }

  /// A thread polling the links woke because this one was ready.
  void count_wakeup() { ++wakeups_; }

 private:
  void fail(int error);
  /// Notes a data-path error: ENODEV fails the link, ENETDOWN marks it down.
  void note(int error);
  bool send_now(const drivers::tx_frame& f);
  void queue_copy(const drivers::tx_frame& f);

  engine& engine_;
  std::unique_ptr<drivers::link> link_;
  host* host_ = nullptr;
  uint8_t mac_[6] = {};
  bool unflushed_ = false;  // transmit() queued frames since the last flush
  bool stalled_ = false;    // the driver said EAGAIN: wait for POLLOUT
  bool failed_ = false;
  bool down_ = false;
  uint64_t drops_ = 0;     // refused by the driver, no memory, too many waiting for room
  uint64_t oversize_ = 0;  // received frames longer than the MTU allows, dropped
  uint64_t rx_bursts_ = 0;
  uint64_t tx_flushes_ = 0;
  uint64_t wakeups_ = 0;
  std::deque<std::vector<uint8_t>> waiting_;  // frames waiting for room in the driver, in order
  std::vector<pbuf*> received_;               // one burst, handed to the host after the driver
  std::vector<iovec> pieces_;                 // transmit()'s gather list
};

}  // namespace anysock::lwip_detail
