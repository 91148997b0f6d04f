// TCP sockets over lwIP's raw API with Linux's semantics.
//
// State lives here, not in the pcb: lwIP frees a pcb on reset or timeout (then pcb_ is null and
// `closed_` set), and received data waits in rx_ until the application reads it — the window is
// reopened (tcp_recved) only for bytes actually read, so the peer can never overrun us.
//
// Acknowledgements are timed as Linux times them (time_ack, ack_if_read_all), not by lwIP's 250 ms
// delayed-ACK tick: with Nagle's algorithm the peer's second small write waits for our ACK of its
// first.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "anysock_lwip_port.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "lwip_socket.hpp"

namespace anysock::lwip_detail {
namespace {

// Takes a socket's reader or writer turn (before the engine lock, never the other way round). In a
// simulated world no task may block outside the scheduler: a busy turn is waited for there (and
// the wait fails if the world stops meanwhile).
int take_turn(std::mutex& mu, engine& eng, std::unique_lock<std::mutex>& turn) {
  turn = std::unique_lock<std::mutex>(mu, std::try_to_lock);
  if (turn.owns_lock()) return 0;
  if (eng.run_mode() != engine::mode::sim) {
    turn.lock();
    return 0;
  }
  while (!turn.try_lock()) {
    std::unique_lock lk(eng.mutex());
    int e = eng.wait(
        lk, wait_spec{},
        [&] {
          if (!mu.try_lock()) return false;
          mu.unlock();
          return true;
        },
        "a turn on a socket another thread is using");
    if (e != 0) return e;
  }
  return 0;
}

// The end of a send that sent something: a switch point in a simulated world (the turn is given
// back first, so whoever runs next may send on this socket too).
int sent_all(engine& eng, std::unique_lock<std::mutex>& writer, std::unique_lock<std::mutex>& lk) {
  writer.unlock();
  eng.switch_point(lk);
  return 0;
}

int map_err(err_t e) {
  switch (e) {
    case ERR_OK:
      return 0;
    case ERR_MEM:
    case ERR_BUF:
      return ENOBUFS;
    case ERR_RTE:
      return ENETUNREACH;
    case ERR_USE:
      return EADDRINUSE;
    case ERR_ISCONN:
      return EISCONN;
    case ERR_ALREADY:
      return EALREADY;
    case ERR_INPROGRESS:
      return EINPROGRESS;
    case ERR_CONN:
      return ENOTCONN;
    case ERR_VAL:
    case ERR_ARG:
      return EINVAL;
    case ERR_RST:
      return ECONNRESET;
    case ERR_ABRT:
      return ECONNABORTED;
    case ERR_CLSD:
      return EPIPE;
    case ERR_TIMEOUT:
      return ETIMEDOUT;
    default:
      return EIO;
  }
}

// Largest single tcp_write (lwIP's lengths are 16-bit).
constexpr size_t kMaxWrite = 0xffff;
// Sends of at least this many bytes copy into a chunk without the engine lock (send_chunked);
// smaller ones are copied by lwIP under it (cheaper for small messages).
constexpr size_t kChunkedMin = 32 * 1024;
constexpr size_t kChunkMax = 512 * 1024;

// Linux's acknowledgement timing (net/ipv4/tcp_input.c): at most this many immediate ACKs in
// quick-ack mode (TCP_MAX_QUICKACKS), and a delayed ACK waits at most this long (TCP_DELACK_MIN,
// its limit on a path with a small round-trip time).
constexpr int kMaxQuickAcks = 16;
constexpr u32_t kDelayedAckMs = 40;
// How soon a full-sized segment the application has read is acknowledged (ack_if_read_all).
constexpr u32_t kStreamAckMs = 1;

}  // namespace

tcp_socket::tcp_socket(host& h, int family, tcp_pcb* accepted) : lwip_socket(h, family) {
  if (accepted != nullptr) {
    attach(accepted);
    bound_ = true;
    connected_ = true;
  }
}

tcp_socket::~tcp_socket() {
  // Connections nobody accepted die after the lock is released (their destructors take it).
  std::deque<std::unique_ptr<tcp_socket>> unaccepted;
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  for (auto& child : accept_queue_) {
    child->listener_ = nullptr;
    // Connections nobody accepted are reset, as Linux does when a listener closes.
    if (child->pcb_ != nullptr) {
      tcp_pcb* p = child->pcb_;
      child->detach_pcb();
      tcp_abort(p);
    }
  }
  unaccepted.swap(accept_queue_);
  cancel_delayed_ack();
  bool closing_gracefully = false;
  if (pcb_ != nullptr) {
    tcp_pcb* p = pcb_;
    // Unread data or SO_LINGER {1, 0}: reset, as Linux does.
    bool unread = rx_bytes_ > 0 || (linger_.l_onoff != 0 && linger_.l_linger == 0);
    detach_pcb();
    if (listening_) {
      tcp_close(p);
    } else if (unread || p->state == CLOSED) {
      tcp_abort(p);  // unread data: reset (Linux), or nothing to close gracefully
    } else if (tcp_close(p) != ERR_OK) {
      tcp_abort(p);
    } else {
      closing_gracefully = true;
    }
  }
  // Chunks still unacknowledged: lwIP keeps sending from them while the connection closes, so the
  // registry watches the pcb from now on; after a reset nothing points into them.
  for (send_chunk* c : chunks_) {
    if (closing_gracefully) {
      c->orphan = true;
    } else {
      eng_.chunks().release_acked(c);
    }
  }
  chunks_.clear();
  release_rx();
  host_.drop_claim(this);
  eng_.pump();
}

void tcp_socket::attach(tcp_pcb* pcb) {
  pcb_ = pcb;
  quick_acks_ = 0;
  data_seen_ = false;
  interactive_ = false;
  peer_streamed_ = false;
  pending_short_ = false;
  tcp_arg(pcb, this);
  if (pcb->state == LISTEN) {
    tcp_accept(pcb, &tcp_socket::on_accept);
    return;
  }
  tcp_recv(pcb, &tcp_socket::on_recv);
  tcp_sent(pcb, &tcp_socket::on_sent);
  tcp_err(pcb, &tcp_socket::on_err);
}

// lwIP counts a queued connection against the backlog only while its pcb lives (tcp_pcb_purge gives
// the place back when it is reset); Linux counts it until accept() takes it, dead or alive. So the
// connections that died in the queue come off the limit lwIP checks SYNs against.
void tcp_socket::update_backlog() {
  if (pcb_ == nullptr || !listening_) return;
  reinterpret_cast<tcp_pcb_listen*>(pcb_)->backlog =
      static_cast<u8_t>(std::clamp(backlog_ - dead_in_queue_, 0, 255));
}

void tcp_socket::detach_pcb() {
  cancel_delayed_ack();
  if (pcb_ == nullptr) return;
  tcp_arg(pcb_, nullptr);
  if (pcb_->state == LISTEN) {
    tcp_accept(pcb_, nullptr);
  } else {
    tcp_recv(pcb_, nullptr);
    tcp_sent(pcb_, nullptr);
    tcp_err(pcb_, nullptr);
  }
  pcb_ = nullptr;
}

void tcp_socket::release_rx() {
  for (pbuf* p : rx_) pbuf_free(p);
  rx_.clear();
  rx_offset_ = 0;
  rx_bytes_ = 0;
}

int tcp_socket::ensure_pcb() {
  if (pcb_ != nullptr) return 0;
  tcp_pcb* p = tcp_new_ip_type(family_ == AF_INET ? IPADDR_TYPE_V4
                                                  : (v6only_ ? IPADDR_TYPE_V6 : IPADDR_TYPE_ANY));
  if (p == nullptr) {
    eng_.count_memory_failure();
    return ENOBUFS;
  }
  tcp_bind_netif(p, host_.nif());
  // Port conflicts are checked per host by us (host::check_claim); lwIP's own check spans every
  // host of the stack, so it is always told "reuse".
  ip_set_option(p, SOF_REUSEADDR);
  attach(p);
  apply_options();
  return 0;
}

void tcp_socket::apply_options() {
  if (pcb_ == nullptr) return;
  pcb_->ttl = static_cast<u8_t>(ttl_);
  pcb_->tos = static_cast<u8_t>(tos_);
  if (reuse_) {
    pcb_->so_options |= kUserReuseAddr;
  } else {
    pcb_->so_options &= static_cast<u8_t>(~kUserReuseAddr);
  }
  if (pcb_->state == LISTEN) return;
  if (nodelay_) {
    tcp_nagle_disable(pcb_);
  } else {
    tcp_nagle_enable(pcb_);
  }
  if (keepalive_) {
    ip_set_option(pcb_, SOF_KEEPALIVE);
  } else {
    ip_reset_option(pcb_, SOF_KEEPALIVE);
  }
  pcb_->keep_idle = static_cast<u32_t>(keep_idle_) * 1000;
  pcb_->keep_intvl = static_cast<u32_t>(keep_intvl_) * 1000;
  pcb_->keep_cnt = static_cast<u32_t>(keep_cnt_);
}

// ---- lwIP callbacks (engine lock held) ---------------------------------------------------------

err_t tcp_socket::on_recv(void* arg, tcp_pcb* pcb, pbuf* p, err_t err) {
  auto* s = static_cast<tcp_socket*>(arg);
  if (s == nullptr) {  // closed by us meanwhile: lwIP's default handler
    return tcp_recv_null(nullptr, pcb, p, err);
  }
  if (p == nullptr) {
    s->peer_fin_ = true;
  } else {
    s->rx_bytes_ += p->tot_len;
    s->rx_.push_back(p);
    s->time_ack(pcb, p);
  }
  s->eng_.changed();
  return ERR_OK;
}

void tcp_socket::time_ack(tcp_pcb* pcb, const pbuf* p) {
  // lwIP has just acknowledged the data in its way (tcp_receive): every second segment at once
  // (TF_ACK_NOW), a first one later (TF_ACK_DELAY), by its 250 ms tick unless data leaves first
  // and carries the ACK. Linux acknowledges at once in quick-ack mode: from the first data of a
  // connection, and again after a silence longer than the retransmission timeout (the sender
  // may be restarting from a small window), for up to 16 segments, fewer if the window holds
  // fewer than 32 (rcv_wnd / (2 * mss)). Otherwise it delays an ACK by 40 ms at most. The ACK
  // leaves from the tcp_output at the end of tcp_input, or from the timer armed here.
  const u32_t now = sys_now();
  const u32_t rto_ms = static_cast<u32_t>(std::max<s16_t>(pcb->rto, 1)) * TCP_SLOW_INTERVAL;
  if (!data_seen_ || now - last_data_ms_ > rto_ms) {
    const size_t per_window = pcb->rcv_wnd / (2 * std::max<size_t>(pcb->mss, 1));
    const int budget =
        per_window == 0 ? 2 : static_cast<int>(std::min<size_t>(per_window, kMaxQuickAcks));
    quick_acks_ = std::max(quick_acks_, budget);
  }
  data_seen_ = true;
  last_data_ms_ = now;
  pending_short_ = p->tot_len < pcb->mss;  // with TF_ACK_DELAY, `p` is all that waits for an ACK
  if (!pending_short_) peer_streamed_ = true;
  if ((pcb->flags & TF_ACK_DELAY) == 0) return;  // acknowledged at once already
  if (quick_acks_ > 0) {
    --quick_acks_;
    tcp_ack_now(pcb);  // tcp_output clears both flags once the ACK is out
    return;
  }
  arm_delayed_ack(kDelayedAckMs);
}

void tcp_socket::ack_if_read_all() {
  // The application has read everything. Linux then acknowledges a short segment at once
  // (tcp_cleanup_rbuf) unless the connection is interactive ("pingpong": the answer will carry
  // the ACK, 40 ms at most later). A write of several segments it acknowledges as a whole at
  // once (more than a full segment unacknowledged, and over loopback or with receive offload the
  // segments arrive as one), so a short segment after full-sized ones is acknowledged at once
  // too, and a full-sized one within a millisecond unless more data comes: lwIP's Nagle holds
  // the peer's short last segment until *everything* is acknowledged (Linux's only behind an
  // unacknowledged short segment), and a full-sized segment is all a receiver sees in between.
  if (pcb_ == nullptr || rx_bytes_ > 0 || (pcb_->flags & TF_ACK_DELAY) == 0) return;
  if (pending_short_ && (!interactive_ || peer_streamed_)) {
    tcp_ack_now(pcb_);
    tcp_output(pcb_);
  } else if (peer_streamed_) {
    arm_delayed_ack(kStreamAckMs);
  }
}

void tcp_socket::note_sent() {
  // Linux's "pingpong" mode: data sent within the delayed-ACK time of data received is an answer.
  if (data_seen_ && sys_now() - last_data_ms_ < kDelayedAckMs) interactive_ = true;
  peer_streamed_ = false;
}

void tcp_socket::arm_delayed_ack(u32_t ms) {
  const u32_t due = sys_now() + ms;
  if (delayed_ack_armed_) {
    if (static_cast<s32_t>(delayed_ack_due_ms_ - due) <= 0) return;  // due as early already
    sys_untimeout(&tcp_socket::on_delayed_ack, this);
  }
  sys_timeout(ms, &tcp_socket::on_delayed_ack, this);
  delayed_ack_armed_ = true;
  delayed_ack_due_ms_ = due;
}

void tcp_socket::on_delayed_ack(void* arg) {
  // A timer of lwIP's (engine lock held); cancelled whenever the socket lets go of its pcb.
  auto* s = static_cast<tcp_socket*>(arg);
  s->delayed_ack_armed_ = false;
  tcp_pcb* pcb = s->pcb_;
  if (pcb == nullptr || (pcb->flags & TF_ACK_DELAY) == 0) return;  // data carried it meanwhile
  s->interactive_ = false;  // no answer came in time (Linux leaves pingpong mode too)
  tcp_ack_now(pcb);
  tcp_output(pcb);
}

void tcp_socket::cancel_delayed_ack() {
  if (!delayed_ack_armed_) return;
  sys_untimeout(&tcp_socket::on_delayed_ack, this);
  delayed_ack_armed_ = false;
}

err_t tcp_socket::on_sent(void* arg, tcp_pcb* pcb, u16_t) {
  if (auto* s = static_cast<tcp_socket*>(arg)) {
    ++s->acks_seen_;
    while (!s->chunks_.empty() && TCP_SEQ_GEQ(pcb->lastack, s->chunks_.front()->end_seq)) {
      s->eng_.chunks().release_acked(s->chunks_.front());
      s->chunks_.pop_front();
    }
    s->eng_.changed();
  }
  return ERR_OK;
}

void tcp_socket::on_err(void* arg, err_t err) {
  auto* s = static_cast<tcp_socket*>(arg);
  if (s == nullptr) return;
  s->pcb_ = nullptr;  // lwIP has freed it, and every segment pointing into our chunks
  s->cancel_delayed_ack();
  s->closed_ = true;
  if (tcp_socket* l = s->listener_) {  // still queued: it keeps its place in the backlog
    ++l->dead_in_queue_;
    l->update_backlog();
  }
  for (send_chunk* c : s->chunks_) s->eng_.chunks().release_acked(c);
  s->chunks_.clear();
  if (err == ERR_CLSD) {
    // Not an error: both FINs were exchanged and acknowledged (LAST_ACK -> CLOSED), and lwIP frees
    // a pcb whose receive side we never shut. What was received stays readable, then EOF.
    s->peer_fin_ = true;
    s->connecting_ = false;
    s->eng_.changed();
    return;
  }
  int e;
  if (s->connecting_) {
    e = err == ERR_RST ? ECONNREFUSED : ETIMEDOUT;  // a reset answers a SYN: refused
  } else {
    e = err == ERR_RST ? ECONNRESET : (err == ERR_ABRT ? ETIMEDOUT : map_err(err));
  }
  s->connecting_ = false;
  s->pending_error_ = e;
  s->eng_.changed();
}

err_t tcp_socket::on_connected(void* arg, tcp_pcb*, err_t) {
  auto* s = static_cast<tcp_socket*>(arg);
  if (s == nullptr) return ERR_OK;
  s->connecting_ = false;
  s->connected_ = true;
  s->eng_.changed();
  return ERR_OK;
}

err_t tcp_socket::on_accept(void* arg, tcp_pcb* pcb, err_t err) {
  auto* l = static_cast<tcp_socket*>(arg);
  if (l == nullptr || err != ERR_OK || pcb == nullptr) return ERR_VAL;
  std::unique_ptr<tcp_socket> child;
  try {
    child = std::make_unique<tcp_socket>(l->host_, l->family_, pcb);
  } catch (const std::bad_alloc&) {
    l->eng_.count_memory_failure();
    return ERR_MEM;
  }
  child->nodelay_ = l->nodelay_;
  child->keepalive_ = l->keepalive_;
  child->keep_idle_ = l->keep_idle_;
  child->keep_intvl_ = l->keep_intvl_;
  child->keep_cnt_ = l->keep_cnt_;
  child->rcvbuf_ = l->rcvbuf_;
  child->sndbuf_ = l->sndbuf_;
  child->v6only_ = l->v6only_;
  child->reuse_ = l->reuse_;  // Linux: an accepted socket inherits the listener's SO_REUSEADDR
  child->apply_options();
  // The connection counts against the backlog until accept() takes it (tcp_backlog_accepted).
  tcp_backlog_delayed(pcb);
  child->listener_ = l;
  child->host_.set_claim({child.get(), true, pcb->local_ip, pcb->local_port, l->reuse_, false});
  l->accept_queue_.push_back(std::move(child));
  l->eng_.changed();
  return ERR_OK;
}

// ---- socket_impl ------------------------------------------------------------------------------

int tcp_socket::bind_locked(ip_addr_t ip, uint16_t port) {
  if (bound_ || connected_ || connecting_ || listening_) return EINVAL;
  if (!host_.is_local(ip)) return EADDRNOTAVAIL;
  port_claim claim{this, true, ip, port, reuse_, false};
  if (port != 0) {
    if (int e = host_.check_claim(claim, v6only_, family_ == AF_INET6); e != 0) return e;
  }
  if (int e = ensure_pcb(); e != 0) return e;
  err_t r = tcp_bind(pcb_, &ip, port);
  if (r != ERR_OK) return map_err(r);
  claim.port = pcb_->local_port;
  host_.set_claim(claim);
  bound_ = true;
  return 0;
}

int tcp_socket::listen(int backlog) {
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  if (connected_ || connecting_ || closed_) return EINVAL;
  backlog = std::clamp(backlog, 0, 254) + 1;  // Linux admits backlog + 1 connections
  if (listening_) {
    backlog_ = backlog;
    update_backlog();
    return 0;
  }
  if (!bound_) {
    if (int e = bind_locked(wildcard(), 0); e != 0) return e;
  }
  // Listening sockets conflict with any other socket on the port, whatever SO_REUSEADDR says.
  port_claim claim{this, true, pcb_->local_ip, pcb_->local_port, reuse_, true};
  if (int e = host_.check_claim(claim, v6only_, family_ == AF_INET6); e != 0) return e;
  // lwIP refuses a second listener on the same address if SOF_REUSEADDR is set, across every host:
  // clear it for the call (our claim check already ran), then set it again on the listening pcb.
  ip_reset_option(pcb_, SOF_REUSEADDR);
  err_t err = ERR_OK;
  tcp_pcb* old = pcb_;
  tcp_pcb* lpcb = tcp_listen_with_backlog_and_err(old, static_cast<u8_t>(backlog), &err);
  if (lpcb == nullptr) {
    ip_set_option(old, SOF_REUSEADDR);
    if (err == ERR_MEM) eng_.count_memory_failure();
    return map_err(err);
  }
  pcb_ = nullptr;  // old was freed by lwIP
  ip_set_option(lpcb, SOF_REUSEADDR);
  attach(lpcb);
  listening_ = true;
  backlog_ = backlog;
  update_backlog();
  host_.set_claim(claim);
  return 0;
}

int tcp_socket::connect(const sockaddr* addr, socklen_t len, const wait_spec& w) {
  ip_addr_t ip;
  uint16_t port = 0;
  int conv = from_sockaddr(addr, len, ip, port);
  if (conv != 0) return conv;
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  if (listening_) return EISCONN;
  if (connected_ && !closed_) return EISCONN;
  if (!connecting_) {
    if (closed_) {  // an earlier attempt failed: report it once, then start afresh
      if (int e = take_error(); e != 0) return e;
      closed_ = false;
    }
    // No route (an IPv6 destination outside the host's prefixes, no router): Linux's ENETUNREACH.
    if (IP_IS_V6_VAL(ip)) {
      if (int e = host_.route6(*ip_2_ip6(&ip)); e != 0) return e;
    }
    // Port 0 is refused; INADDR_ANY / :: is the local host (below), as on Linux.
    if (port == 0) return ECONNREFUSED;
    if (int e = ensure_pcb(); e != 0) return e;
    if (!bound_ || is_any(pcb_->local_ip)) {
      // Pick the source now: the loopback for loopback, else this host's address. (Unbound, lwIP
      // would pick from the route, and an ANY bind would take this port on every host.)
      ip_addr_t dest = ip;
      if (is_any(dest)) {
        ip_addr_set_loopback(IP_IS_V6_VAL(dest), &dest);
      }
      ip_addr_t src = host_.source_for(dest);
      ip = dest;
      if (!bound_) {
        if (int e = bind_locked(src, 0); e != 0) return e;
      } else {
        ip_addr_copy(pcb_->local_ip, src);
      }
    }
    err_t r = tcp_connect(pcb_, &ip, port, &tcp_socket::on_connected);
    if (r != ERR_OK) {
      if (r == ERR_MEM) eng_.count_memory_failure();
      return map_err(r);
    }
    host_.set_claim({this, true, pcb_->local_ip, pcb_->local_port, reuse_, false});
    connecting_ = true;
    eng_.pump();
    // Even when the handshake already finished (in-process peers answer at once), a non-blocking
    // connect reports EINPROGRESS, as the kernel's does over loopback.
    if (w.how == wait_spec::mode::nonblock) {
      eng_.poll_point(lk);
      return EINPROGRESS;
    }
  } else if (w.how == wait_spec::mode::nonblock) {
    eng_.poll_point(lk);
    return EALREADY;
  }
  int e = eng_.wait(
      lk, w, [&] { return !connecting_; }, "connect");
  if (host_.down()) return ENETDOWN;  // crashed while waiting
  if (e != 0) return e;
  if (connected_) return 0;
  return take_error();
}

int tcp_socket::accept(const wait_spec& w, std::unique_ptr<socket_impl>& out,
                       sockaddr_storage& peer, socklen_t& peer_len) {
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  if (!listening_) return EINVAL;
  int e = eng_.wait(
      lk, w, [&] { return !accept_queue_.empty() || rd_shut_ || pcb_ == nullptr || host_.down(); },
      "accept");
  if (host_.down()) return ENETDOWN;  // crashed while waiting
  if (e != 0) return e;
  if (accept_queue_.empty()) return EINVAL;
  std::unique_ptr<tcp_socket> child = std::move(accept_queue_.front());
  accept_queue_.pop_front();
  child->listener_ = nullptr;
  if (child->pcb_ != nullptr) {
    tcp_backlog_accepted(child->pcb_);
    to_sockaddr(child->pcb_->remote_ip, child->pcb_->remote_port, peer, peer_len);
  } else {
    // Reset before accept(): Linux still hands it out; its first recv reports the reset.
    to_sockaddr(*IP4_ADDR_ANY, 0, peer, peer_len);
    --dead_in_queue_;
    update_backlog();
  }
  out = std::move(child);
  eng_.pump();
  return 0;
}

size_t tcp_socket::peek_into(char* dst, size_t len) const {
  // MSG_PEEK: copy without consuming (under the lock; take_out() is the consuming path).
  size_t copied = 0;
  size_t offset = rx_offset_;
  for (auto it = rx_.begin(); copied < len && it != rx_.end(); ++it, offset = 0) {
    size_t n = std::min<size_t>((*it)->tot_len - offset, len - copied);
    pbuf_copy_partial(*it, dst + copied, static_cast<u16_t>(n), static_cast<u16_t>(offset));
    copied += n;
  }
  return copied;
}

size_t tcp_socket::take_out(std::unique_lock<std::mutex>& lk, char* dst, size_t len) {
  // Under the lock: take the bytes off the receive queue (this thread is the only reader). Without
  // it: copy them, so the peer's sender keeps the engine meanwhile. Under it again: free what was
  // consumed whole and reopen the window.
  std::vector<rx_piece>& pieces = pieces_;
  pieces.clear();
  size_t total = 0;
  while (total < len && !rx_.empty()) {
    pbuf* p = rx_.front();
    size_t avail = p->tot_len - rx_offset_;
    size_t n = std::min(avail, len - total);
    pieces.push_back({p, rx_offset_, n, n == avail});
    if (n == avail) {
      rx_.pop_front();
      rx_offset_ = 0;
    } else {
      rx_offset_ += n;
    }
    total += n;
  }
  rx_bytes_ -= total;
  lk.unlock();
  size_t at = 0;
  for (const rx_piece& pc : pieces) {
    pbuf_copy_partial(pc.p, dst + at, static_cast<u16_t>(pc.n), static_cast<u16_t>(pc.offset));
    at += pc.n;
  }
  lk.lock();
  for (const rx_piece& pc : pieces) {
    if (pc.whole) pbuf_free(pc.p);
  }
  pieces.clear();
  if (pcb_ != nullptr) {
    for (size_t left = total; left > 0;) {
      u16_t step = static_cast<u16_t>(std::min<size_t>(left, 0xffff));
      tcp_recved(pcb_, step);
      left -= step;
    }
    ack_if_read_all();
  }
  return total;
}

int tcp_socket::recv(void* buf, size_t len, int flags, const wait_spec& w_in, size_t& got,
                     sockaddr_storage* from, socklen_t* from_len) {
  got = 0;
  if (flags & ~(MSG_PEEK | MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL)) return EOPNOTSUPP;
  wait_spec w = w_in;
  if (flags & MSG_DONTWAIT) w.how = wait_spec::mode::nonblock;
  std::unique_lock<std::mutex> reader;
  if (int e = take_turn(reader_mu_, eng_, reader); e != 0) return e;  // before the engine lock
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  if (listening_) return ENOTCONN;
  if (!connected_ && !connecting_ && !closed_) return ENOTCONN;
  const bool peek = flags & MSG_PEEK;
  const bool waitall = (flags & MSG_WAITALL) && !peek;
  while (true) {
    int e = eng_.wait(
        lk, w,
        [&] {
          return rx_bytes_ > 0 || peer_fin_ || rd_shut_ || closed_ || (!connecting_ && !connected_);
        },
        "recv");
    if (host_.down()) return ENETDOWN;  // crashed while waiting
    if (e != 0) {
      if (got > 0) return 0;
      return e;
    }
    // recv(0) waits like any receive (Linux): once data, end of stream or an error is there it
    // returns nothing, consuming nothing.
    if (len == 0 && rx_bytes_ > 0) break;
    if (rx_bytes_ > 0) {
      got += peek ? peek_into(static_cast<char*>(buf) + got, len - got)
                  : take_out(lk, static_cast<char*>(buf) + got, len - got);
      eng_.pump();
      if (!waitall || got == len) break;
      continue;
    }
    if (got > 0) break;
    if (closed_ && pending_error_ != 0) return take_error();
    break;  // end of stream (FIN, SHUT_RD, or a connection that is gone)
  }
  if (from != nullptr && from_len != nullptr) *from_len = 0;
  return 0;
}

int tcp_socket::send_locked(const char* data, size_t len, size_t& sent) {
  const size_t sent_before = sent;
  while (sent < len && pcb_ != nullptr) {
    size_t room = tcp_sndbuf(pcb_);
    if (room == 0 || tcp_sndqueuelen(pcb_) >= TCP_SND_QUEUELEN - 4) break;
    size_t n = std::min({len - sent, room, kMaxWrite});
    u8_t flags = TCP_WRITE_FLAG_COPY;
    if (sent + n < len) flags |= TCP_WRITE_FLAG_MORE;
    err_t r = tcp_write(pcb_, data + sent, static_cast<u16_t>(n), flags);
    if (r == ERR_MEM) {
      // lwIP could not allocate the segment: memory is exhausted (the buffer had room). With data
      // in flight, acknowledgements will free some: wait for them. With none, nothing will:
      // ENOBUFS.
      eng_.count_memory_failure();
      if (pcb_->unsent == nullptr && pcb_->unacked == nullptr && sent == 0) return ENOBUFS;
      memory_wait_ = acks_seen_;
      break;
    }
    if (r != ERR_OK) return map_err(r);
    sent += n;
  }
  if (pcb_ != nullptr) {
    if (sent > sent_before) note_sent();
    tcp_output(pcb_);
  }
  return 0;
}

size_t tcp_socket::send_chunked(std::unique_lock<std::mutex>& lk, const char* data, size_t len) {
  // What lwIP will take now: buffer space, and queue slots (two pbufs per segment: header and
  // data).
  const size_t seg = std::max<size_t>(pcb_->mss, 536);
  const size_t queued = tcp_sndqueuelen(pcb_);
  if (queued + 8 >= TCP_SND_QUEUELEN) return 0;
  const size_t slots = (TCP_SND_QUEUELEN - 4 - queued) / 2;
  size_t n = std::min({len, static_cast<size_t>(pcb_->snd_buf), (slots - 1) * seg, kChunkMax});
  if (n < kChunkedMin) return 0;
  send_chunk_registry& reg = eng_.chunks();
  // Chunks are send-buffer memory: they count against the memory cap (set_memory_limit), and past
  // it the copying path reports what lwIP can still allocate.
  if (size_t cap = anysock_lwip_heap_limit();
      cap != 0 && lwip_stats.mem.used + reg.bytes_held() + n > cap) {
    return 0;
  }
  send_chunk* c = reg.take_cached(n);
  lk.unlock();
  if (c == nullptr) c = send_chunk_registry::allocate(n);
  if (c != nullptr) std::memcpy(c->data, data, n);
  lk.lock();
  if (c == nullptr) return 0;
  if (!connected_ || pcb_ == nullptr || wr_shut_ || closed_) {
    reg.discard(c);
    return 0;  // the caller's checks report what happened
  }
  reg.add(c);
  size_t done = 0;
  while (done < n) {
    size_t piece = std::min(n - done, kMaxWrite);
    u8_t flags = done + piece < n ? TCP_WRITE_FLAG_MORE : 0;
    if (tcp_write(pcb_, c->data + done, static_cast<u16_t>(piece), flags) != ERR_OK) break;
    done += piece;
  }
  if (done == 0) {
    reg.discard(c);
    return 0;
  }
  c->pcb = pcb_;
  c->end_seq = pcb_->snd_lbb;
  chunks_.push_back(c);
  note_sent();
  tcp_output(pcb_);
  return done;
}

int tcp_socket::send(const void* buf, size_t len, int flags, const wait_spec& w_in, size_t& sent,
                     const sockaddr*, socklen_t) {
  sent = 0;
  if (flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE)) return EOPNOTSUPP;
  wait_spec w = w_in;
  if (flags & MSG_DONTWAIT) w.how = wait_spec::mode::nonblock;
  std::unique_lock<std::mutex> writer;
  if (int e = take_turn(writer_mu_, eng_, writer); e != 0) return e;  // before the engine lock
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  const char* data = static_cast<const char*>(buf);
  while (true) {
    if (pending_error_ != 0 && closed_) return take_error();
    if (wr_shut_ || closed_) return EPIPE;
    if (!connected_ && !connecting_) return EPIPE;
    if (connected_ && pcb_ != nullptr && len - sent >= kChunkedMin) {
      size_t n = send_chunked(lk, data + sent, len - sent);
      if (n > 0) {
        sent += n;
        eng_.pump();
        if (sent == len) return sent_all(eng_, writer, lk);
        continue;
      }
    }
    if (connected_ && pcb_ != nullptr) {
      if (int e = send_locked(data, len, sent); e != 0) return e;
      eng_.pump();
      if (sent == len) return sent_all(eng_, writer, lk);
      // Blocking sockets send everything (as the kernel does); others return what fit.
      if (sent > 0 && w.how != wait_spec::mode::block) return sent_all(eng_, writer, lk);
    }
    int e = eng_.wait(
        lk, w,
        [&] {
          if (closed_ || wr_shut_ || pcb_ == nullptr) return true;
          if (memory_wait_ && *memory_wait_ == acks_seen_) return false;  // no acknowledgement yet
          return connected_ && tcp_sndbuf(pcb_) > 0 && tcp_sndqueuelen(pcb_) < TCP_SND_QUEUELEN - 4;
        },
        "send");
    if (host_.down()) return ENETDOWN;  // crashed while waiting
    memory_wait_.reset();
    if (e != 0) return sent > 0 ? 0 : e;
  }
}

int tcp_socket::shutdown(int how) {
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return EINVAL;
  std::unique_lock lk(eng_.mutex());
  eng_.enter(&host_);
  if (host_.down()) return ENETDOWN;
  if (listening_) {
    if (how == SHUT_WR) return ENOTCONN;
    rd_shut_ = true;  // Linux stops listening: a blocked accept() returns EINVAL
    eng_.changed();
    eng_.pump();
    return 0;
  }
  bool was_connected = connected_ || connecting_;
  if (how != SHUT_WR) rd_shut_ = true;
  if (how != SHUT_RD) {
    bool first = !wr_shut_;
    wr_shut_ = true;
    if (first && pcb_ != nullptr && connected_) tcp_shutdown(pcb_, 0, 1);
  }
  eng_.changed();
  eng_.pump();
  return was_connected ? 0 : ENOTCONN;
}

int tcp_socket::getsockname(sockaddr_storage& addr, socklen_t& len) const {
  std::unique_lock lk(eng_.mutex());
  if (pcb_ == nullptr) {
    ip_addr_t any = wildcard();
    to_sockaddr(any, 0, addr, len);
    return 0;
  }
  to_sockaddr(pcb_->local_ip, pcb_->local_port, addr, len);
  return 0;
}

int tcp_socket::getpeername(sockaddr_storage& addr, socklen_t& len) const {
  std::unique_lock lk(eng_.mutex());
  if (pcb_ == nullptr || !connected_ || listening_) return ENOTCONN;
  to_sockaddr(pcb_->remote_ip, pcb_->remote_port, addr, len);
  return 0;
}

int tcp_socket::getsockopt(int level, int opt, void* value, socklen_t& len) const {
  std::unique_lock lk(eng_.mutex());
  int v = 0;
  bool handled = false;
  if (level == SOL_SOCKET && opt == SO_LINGER) {
    if (len < static_cast<socklen_t>(sizeof(linger))) return EINVAL;
    std::memcpy(value, &linger_, sizeof linger_);
    len = sizeof linger_;
    return 0;
  }
  if (level == SOL_SOCKET) {
    switch (opt) {
      case SO_TYPE:
        v = SOCK_STREAM;
        handled = true;
        break;
      case SO_PROTOCOL:
        v = IPPROTO_TCP;
        handled = true;
        break;
      case SO_ACCEPTCONN:
        v = listening_ && !rd_shut_ ? 1 : 0;
        handled = true;
        break;
      case SO_KEEPALIVE:
        v = keepalive_ ? 1 : 0;
        handled = true;
        break;
      case SO_ERROR:
        v = const_cast<tcp_socket*>(this)->take_error();
        handled = true;
        break;
      default:
        break;
    }
  } else if (level == IPPROTO_TCP) {
    switch (opt) {
      case TCP_NODELAY:
        v = nodelay_ ? 1 : 0;
        handled = true;
        break;
      case TCP_KEEPIDLE:
        v = keep_idle_;
        handled = true;
        break;
      case TCP_KEEPINTVL:
        v = keep_intvl_;
        handled = true;
        break;
      case TCP_KEEPCNT:
        v = keep_cnt_;
        handled = true;
        break;
      case TCP_MAXSEG:
        v = pcb_ != nullptr && connected_ ? pcb_->mss : 536;
        handled = true;
        break;
      default:
        return ENOPROTOOPT;
    }
  }
  if (!handled) {
    if (int e = common_getsockopt(level, opt, v, handled); e != 0) return e;
    if (!handled) return ENOPROTOOPT;
  }
  return put_int(v, value, len);
}

int tcp_socket::setsockopt(int level, int opt, const void* value, socklen_t len) {
  if (level == SOL_SOCKET && opt == SO_LINGER) {
    if (len < static_cast<socklen_t>(sizeof(linger))) return EINVAL;
    // Kept and reported back. {1, 0} makes close() reset; a positive linger time does not make
    // close() block here: the data is still delivered in the background.
    std::unique_lock lk(eng_.mutex());
    std::memcpy(&linger_, value, sizeof linger_);
    linger_.l_onoff = linger_.l_onoff != 0 ? 1 : 0;
    return 0;
  }
  if (len < static_cast<socklen_t>(sizeof(int))) return EINVAL;
  int v;
  std::memcpy(&v, value, sizeof v);
  std::unique_lock lk(eng_.mutex());
  if (level == IPPROTO_IPV6 && opt == IPV6_V6ONLY && family_ == AF_INET6) {
    if (bound_ || listening_ || connected_ || connecting_) return EINVAL;
    v6only_ = v != 0;
    if (pcb_ != nullptr) {
      // A dual-stack pcb cannot become IPv6-only: start from a fresh one (nothing is bound yet).
      tcp_pcb* p = pcb_;
      detach_pcb();
      tcp_abort(p);
    }
    return 0;
  }
  if (level == SOL_SOCKET) {
    switch (opt) {
      case SO_KEEPALIVE:
        keepalive_ = v != 0;
        apply_options();
        return 0;
      default:
        break;
    }
  } else if (level == IPPROTO_TCP) {
    switch (opt) {
      case TCP_NODELAY:
        nodelay_ = v != 0;
        break;
      case TCP_KEEPIDLE:
        if (v < 1 || v > 32767) return EINVAL;
        keep_idle_ = v;
        break;
      case TCP_KEEPINTVL:
        if (v < 1 || v > 32767) return EINVAL;
        keep_intvl_ = v;
        break;
      case TCP_KEEPCNT:
        if (v < 1 || v > 127) return EINVAL;
        keep_cnt_ = v;
        break;
      default:
        return ENOPROTOOPT;
    }
    apply_options();
    if (opt == TCP_NODELAY && nodelay_ && pcb_ != nullptr && connected_) {
      tcp_output(pcb_);  // Linux pushes pending data when Nagle is switched off
      eng_.pump();
    }
    return 0;
  }
  bool handled = false;
  if (int e = common_setsockopt(level, opt, v, handled); e != 0) return e;
  if (!handled) return ENOPROTOOPT;
  apply_options();
  return 0;
}

short tcp_socket::readiness(short events) {
  short r = 0;
  if (listening_) {
    if (!accept_queue_.empty() || rd_shut_) r |= POLLIN;
    return static_cast<short>(r & (events | POLLERR | POLLHUP));
  }
  const bool dead = closed_;
  if (rx_bytes_ > 0 || peer_fin_ || rd_shut_ || dead) r |= POLLIN | POLLRDNORM;
  if (dead || (!connected_ && !connecting_)) {
    r |= POLLOUT | POLLWRNORM | POLLHUP;
  } else if (connected_ && !wr_shut_ && pcb_ != nullptr && tcp_sndbuf(pcb_) > 0 &&
             tcp_sndqueuelen(pcb_) < TCP_SND_QUEUELEN - 4) {
    r |= POLLOUT | POLLWRNORM;
  } else if (wr_shut_) {
    r |= POLLOUT | POLLWRNORM;
  }
  if (peer_fin_ && wr_shut_) r |= POLLHUP;
  if (pending_error_ != 0) r |= POLLERR;
  return static_cast<short>(r & (events | POLLERR | POLLHUP));
}

short tcp_socket::poll_now(short events) {
  std::unique_lock lk(eng_.mutex());
  return readiness(events);
}

}  // namespace anysock::lwip_detail
