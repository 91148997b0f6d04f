// Sockets over lwIP's raw API with the kernel's semantics (the conformance suite compares them).
//
// Every method takes the engine lock, works on lwIP, runs engine::pump() (so what it sent is
// delivered at once) and, when it must wait, waits on the engine with its wait_spec. lwIP callbacks
// (receive, sent, error, accept, connected) update the socket's state and call engine::changed().
// Where lwIP's behaviour differs from Linux, the socket translates: a reset during connect is
// ECONNREFUSED, listen() on an unbound socket binds an ephemeral port, a second bind is EINVAL,
// binding a foreign address is EADDRNOTAVAIL, send after SHUT_WR is EPIPE, an ICMP port unreachable
// is ECONNREFUSED on a connected UDP socket (icmp_errors.cpp), options read back as the kernel
// reports them.
#pragma once

#include <sys/socket.h>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "anysock/backend.hpp"
#include "host.hpp"
#include "lwip/tcp.h"
#include "lwip/udp.h"

namespace anysock::lwip_detail {

/// Options and state common to TCP and UDP sockets.
class lwip_socket : public socket_impl {
 public:
  lwip_socket(host& h, int family);
  ~lwip_socket() override;
  lwip_socket(const lwip_socket&) = delete;
  lwip_socket& operator=(const lwip_socket&) = delete;

  int fileno() const override { return fileno_; }
  /// Binds (TCP and UDP alike): address checks here, the protocol's part in bind_locked().
  int bind(const sockaddr* addr, socklen_t len) final;
  host& owner() const { return host_; }
  int family() const { return family_; }

 protected:
  /// sockaddr -> lwIP address for this socket's family (IPv4-mapped IPv6 becomes IPv4).
  int from_sockaddr(const sockaddr* sa, socklen_t len, ip_addr_t& ip, uint16_t& port) const;
  /// lwIP address -> sockaddr of this socket's family.
  void to_sockaddr(const ip_addr_t& ip, uint16_t port, sockaddr_storage& out, socklen_t& len) const;
  /// The wildcard address of this socket (dual-stack ANY for AF_INET6 unless V6ONLY).
  ip_addr_t wildcard() const;
  /// SOL_SOCKET/IPPROTO_IP/IPPROTO_IPV6 options both kinds share. `handled` = false if not one.
  int common_getsockopt(int level, int opt, int& value, bool& handled) const;
  int common_setsockopt(int level, int opt, int value, bool& handled);
  /// Binds `ip`:`port` with the engine lock held (port 0: an ephemeral one).
  virtual int bind_locked(ip_addr_t ip, uint16_t port) = 0;
  /// Writes an int option value as getsockopt does (truncated to `len`, EINVAL for len <= 0).
  static int put_int(int v, void* value, socklen_t& len);
  /// Takes the pending SO_ERROR value.
  int take_error() {
    int e = pending_error_;
    pending_error_ = 0;
    return e;
  }

  host& host_;
  engine& eng_;
  int family_;
  int fileno_;
  int pending_error_ = 0;
  bool reuse_ = false;
  bool v6only_ = false;
  bool broadcast_ = false;
  int rcvbuf_;
  int sndbuf_;
  int ttl_ = 64;
  int tos_ = 0;
};

class tcp_socket final : public lwip_socket {
 public:
  /// A new socket (pcb == nullptr) or an accepted connection (pcb from the accept callback).
  tcp_socket(host& h, int family, tcp_pcb* accepted = nullptr);
  ~tcp_socket() override;

  int listen(int backlog) override;
  int connect(const sockaddr* addr, socklen_t len, const wait_spec& wait) override;
  int accept(const wait_spec& wait, std::unique_ptr<socket_impl>& out, sockaddr_storage& peer,
             socklen_t& peer_len) override;
  int recv(void* buf, size_t len, int flags, const wait_spec& wait, size_t& got,
           sockaddr_storage* from, socklen_t* from_len) override;
  int send(const void* buf, size_t len, int flags, const wait_spec& wait, size_t& sent,
           const sockaddr* to, socklen_t to_len) override;
  int shutdown(int how) override;
  int getsockname(sockaddr_storage& addr, socklen_t& len) const override;
  int getpeername(sockaddr_storage& addr, socklen_t& len) const override;
  int getsockopt(int level, int opt, void* value, socklen_t& len) const override;
  int setsockopt(int level, int opt, const void* value, socklen_t len) override;
  short poll_now(short events) override;
  /// poll_now with the engine lock already held.
  short readiness(short events);

 private:
  static err_t on_recv(void* arg, tcp_pcb* pcb, pbuf* p, err_t err);
  static err_t on_sent(void* arg, tcp_pcb* pcb, u16_t len);
  static void on_err(void* arg, err_t err);
  static err_t on_connected(void* arg, tcp_pcb* pcb, err_t err);
  static err_t on_accept(void* arg, tcp_pcb* pcb, err_t err);
  static void on_delayed_ack(void* arg);

  // Acknowledgements timed as Linux times them (engine lock held): of data `p` lwIP just
  // received (on_recv), once the application has read everything (take_out), and what sending
  // tells about the connection (send_locked, send_chunked).
  void time_ack(tcp_pcb* pcb, const pbuf* p);
  void ack_if_read_all();
  void note_sent();
  /// Arms the delayed-ACK timer to fire in `ms` ms, or leaves it if it fires as soon already.
  void arm_delayed_ack(u32_t ms);
  void cancel_delayed_ack();

  int ensure_pcb();
  void attach(tcp_pcb* pcb);
  void detach_pcb();
  void apply_options();
  /// Sets the limit lwIP checks new connections against (listening sockets).
  void update_backlog();
  int bind_locked(ip_addr_t ip, uint16_t port) override;
  size_t peek_into(char* dst, size_t len) const;
  size_t take_out(std::unique_lock<std::mutex>& lk, char* dst, size_t len);
  int send_locked(const char* data, size_t len, size_t& sent);
  /// Zero-copy part of send(): copies into a chunk without the lock. Returns bytes written (0: use
  /// the copying path).
  size_t send_chunked(std::unique_lock<std::mutex>& lk, const char* data, size_t len);
  void release_rx();

  tcp_pcb* pcb_ = nullptr;
  bool bound_ = false;
  bool listening_ = false;
  bool connecting_ = false;
  bool connected_ = false;  // established at some point
  bool closed_ = false;     // lwIP freed the pcb (reset, abort, timeout)
  bool peer_fin_ = false;
  bool rd_shut_ = false;
  bool wr_shut_ = false;
  bool nodelay_ = false;
  bool keepalive_ = false;
  int keep_idle_ = 7200, keep_intvl_ = 75, keep_cnt_ = 9;  // seconds, as Linux
  int backlog_ = 0;                 // listen(): connections queued at most (Linux: backlog + 1)
  int dead_in_queue_ = 0;           // queued connections lwIP has freed (reset or timed out)
  tcp_socket* listener_ = nullptr;  // whose accept queue holds this connection, until accepted
  uint64_t acks_seen_ = 0;          // sent-callbacks so far
  // Acknowledgement timing (time_ack): immediate ACKs left in quick-ack mode, whether data arrived
  // on this connection yet and when last (sys_now() ms), whether the delayed-ACK timer is armed
  // and when it fires, whether we answer the peer's data within the delayed-ACK time (Linux's
  // "pingpong" mode), whether a full-sized segment arrived since we last sent, and whether the
  // data last received (all that waits for an ACK when one is delayed) is shorter than a segment.
  int quick_acks_ = 0;
  bool data_seen_ = false;
  uint32_t last_data_ms_ = 0;
  bool delayed_ack_armed_ = false;
  uint32_t delayed_ack_due_ms_ = 0;
  bool interactive_ = false;
  bool peer_streamed_ = false;
  bool pending_short_ = false;
  std::optional<uint64_t> memory_wait_;  // a send waits for an ack because memory ran out
  linger linger_{};                      // SO_LINGER: {1, 0} makes close() reset the connection
  std::deque<pbuf*> rx_;
  size_t rx_offset_ = 0;  // bytes of rx_.front() already consumed
  size_t rx_bytes_ = 0;
  std::deque<std::unique_ptr<tcp_socket>> accept_queue_;
  std::mutex reader_mu_;  // one recv at a time: it copies out of rx_ without the engine lock
  std::mutex writer_mu_;  // one send at a time: it copies into a chunk without the engine lock
  std::deque<send_chunk*> chunks_;  // zero-copy sends not yet acknowledged, oldest first
  struct rx_piece {
    pbuf* p;
    size_t offset, n;
    bool whole;  // consumed to its end: freed after the copy
  };
  std::vector<rx_piece> pieces_;  // take_out's plan, kept to reuse its memory
};

class udp_socket final : public lwip_socket {
 public:
  udp_socket(host& h, int family);
  ~udp_socket() override;

  int listen(int) override { return EOPNOTSUPP; }
  int connect(const sockaddr* addr, socklen_t len, const wait_spec& wait) override;
  int accept(const wait_spec&, std::unique_ptr<socket_impl>&, sockaddr_storage&,
             socklen_t&) override {
    return EOPNOTSUPP;
  }
  int recv(void* buf, size_t len, int flags, const wait_spec& wait, size_t& got,
           sockaddr_storage* from, socklen_t* from_len) override;
  int send(const void* buf, size_t len, int flags, const wait_spec& wait, size_t& sent,
           const sockaddr* to, socklen_t to_len) override;
  int shutdown(int how) override;
  int getsockname(sockaddr_storage& addr, socklen_t& len) const override;
  int getpeername(sockaddr_storage& addr, socklen_t& len) const override;
  int getsockopt(int level, int opt, void* value, socklen_t& len) const override;
  int setsockopt(int level, int opt, const void* value, socklen_t len) override;
  short poll_now(short events) override;
  short readiness(short events);

  /// An ICMP port unreachable arrived on `inp` about a datagram from local:local_port to
  /// remote:remote_port: the connected socket of that host with this 4-tuple gets ECONNREFUSED,
  /// reported once by its next recv or send (or SO_ERROR), as Linux does. Engine lock held.
  static void port_unreachable(const netif* inp, const ip_addr_t& local, u16_t local_port,
                               const ip_addr_t& remote, u16_t remote_port);

 private:
  static void on_recv(void* arg, udp_pcb* pcb, pbuf* p, const ip_addr_t* addr, u16_t port);
  int bind_locked(ip_addr_t ip, uint16_t port) override;
  bool is_broadcast(const ip_addr_t& ip) const;

  struct datagram {
    pbuf* p;
    ip_addr_t from;
    uint16_t port;
  };
  udp_pcb* pcb_ = nullptr;
  bool bound_ = false;
  bool connected_ = false;
  bool rd_shut_ = false;
  bool wr_shut_ = false;
  std::deque<datagram> rx_;
  size_t rx_charged_ = 0;  // what rx_ counts against SO_RCVBUF: payloads and overheads
};

/// Readiness of any lwIP socket, engine lock held.
short readiness_locked(socket_impl* s, short events);

}  // namespace anysock::lwip_detail
