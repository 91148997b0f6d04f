// Smoke test of anysock_lwip: lwIP builds with our options and port, and its raw API carries a TCP
// stream between two hosts of one stack without leaking. It doubles as a worked example of the
// pattern the lwIP engine follows:
// - one netif per host, IP-level (output/output_ip6 callbacks, ip_input for input), up and link up;
// - a source-address route hook so each packet leaves through its sender's netif (with loopback on
// and
//   no hook, host-to-host traffic would go through lwIP's loop queue and never reach the wire);
// - a wire that COPIES each packet into a queue and delivers it on the next poll, never from inside
//   output (the pbuf stays on TCP's unacked list; delivering synchronously re-enters tcp_input);
// - a poll that delivers queued packets, runs netif_poll_all() and sys_check_timeouts();
// - raw-API callbacks that own their pbufs, clear themselves before tcp_close, and a teardown that
//   aborts TIME_WAIT pcbs so lwIP's memory statistics return to where they started.
#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <ostream>
#include <string>
#include <vector>

#include "anysock_lwip_hooks.h"
#include "anysock_lwip_port.h"
#include "lwip/inet_chksum.h"
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip_addr.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"  // tcp_active_pcbs, tcp_tw_pcbs: for the teardown only
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

// ---- Routing by source address: the engine's job, overriding the weak defaults in sys_arch.c
// ------
extern "C" struct netif* anysock_lwip_ip4_route_src(const struct ip4_addr* src,
                                                    const struct ip4_addr* /*dest*/) {
  if (src == nullptr) return nullptr;
  struct netif* netif;
  NETIF_FOREACH(netif) {
    if (netif_is_up(netif) && ip4_addr_cmp(src, netif_ip4_addr(netif))) return netif;
  }
  return nullptr;
}

extern "C" struct netif* anysock_lwip_ip6_route(const struct ip6_addr* src,
                                                const struct ip6_addr* /*dest*/) {
  struct netif* netif;
  NETIF_FOREACH(netif) {
    if (!netif_is_up(netif)) continue;
    for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; ++i) {
      if (ip6_addr_isvalid(netif_ip6_addr_state(netif, i)) &&
          ip6_addr_cmp_zoneless(src, netif_ip6_addr(netif, i))) {
        return netif;
      }
    }
  }
  return nullptr;
}

namespace {

// lwip_init() does not reset lwIP's globals, so it runs once per process.
void init_lwip_once() {
  static const bool initialised = [] {
    lwip_init();
    return true;
  }();
  (void)initialised;
}

// ---- The wire: packets queued by output, delivered to the peer netif on the next poll
// ---------------
struct host;

struct frame {
  struct netif* to;
  struct pbuf* packet;
};

struct wire {
  std::deque<frame> queue;
  std::size_t packets = 0;
  std::size_t bytes = 0;
};

struct host {
  struct netif netif {};
  host* peer = nullptr;
  wire* link = nullptr;
};

err_t transmit(struct netif* netif, struct pbuf* p) {
  auto* self = static_cast<host*>(netif->state);
  struct pbuf* copy = pbuf_alloc(PBUF_RAW, p->tot_len, PBUF_RAM);
  if (copy == nullptr) return ERR_MEM;
  if (pbuf_copy(copy, p) != ERR_OK) {
    pbuf_free(copy);
    return ERR_MEM;
  }
  self->link->queue.push_back({&self->peer->netif, copy});
  self->link->packets += 1;
  self->link->bytes += p->tot_len;
  return ERR_OK;
}

err_t output_ip4(struct netif* netif, struct pbuf* p, const ip4_addr_t* /*next_hop*/) {
  return transmit(netif, p);
}

err_t output_ip6(struct netif* netif, struct pbuf* p, const ip6_addr_t* /*next_hop*/) {
  return transmit(netif, p);
}

err_t init_ip_netif(struct netif* netif) {
  netif->name[0] = 's';
  netif->name[1] = 'm';
  netif->mtu = 1500;
  netif->output = output_ip4;
  netif->output_ip6 = output_ip6;
  return ERR_OK;
}

// Delivers what was queued before this call; packets sent in response wait for the next poll.
void poll(wire& link) {
  std::deque<frame> due;
  due.swap(link.queue);
  for (const frame& f : due) {
    if (f.to->input(f.packet, f.to) != ERR_OK) pbuf_free(f.packet);
  }
  netif_poll_all();
  sys_check_timeouts();
}

void drain(wire& link) {
  for (const frame& f : link.queue) pbuf_free(f.packet);
  link.queue.clear();
}

// ---- lwIP's allocation counters, for leak checks
// -----------------------------------------------------
struct allocation_counts {
  std::size_t heap_used = 0;
  std::vector<std::size_t> pool_used;
  bool operator==(const allocation_counts&) const = default;
};

// The pools' descriptions, indexed like lwip_stats.memp (lwIP's own X-macro list of pools).
const char* const kPoolNames[] = {
#define LWIP_MEMPOOL(name, num, size, desc) desc,
#include "lwip/priv/memp_std.h"
};
static_assert(sizeof(kPoolNames) / sizeof(kPoolNames[0]) == MEMP_MAX);

allocation_counts count_allocations() {
  allocation_counts counts;
  counts.heap_used = lwip_stats.mem.used;
  for (int i = 0; i < MEMP_MAX; ++i) counts.pool_used.push_back(lwip_stats.memp[i]->used);
  return counts;
}

// ---- A one-way TCP transfer through the raw API
// ------------------------------------------------------
struct transfer {
  std::vector<std::uint8_t> payload;
  std::size_t written = 0;  // handed to tcp_write
  std::size_t acked = 0;
  std::vector<std::uint8_t> received;
  struct tcp_pcb* client = nullptr;
  bool client_closed = false;
  bool server_saw_fin = false;
  int errors = 0;
};

void send_more(transfer& t) {
  while (t.written < t.payload.size()) {
    const std::size_t chunk =
        std::min<std::size_t>({t.payload.size() - t.written, tcp_sndbuf(t.client), 0xffff});
    if (chunk == 0) break;
    // COPY: lwIP keeps the bytes until they are acknowledged; our buffer must not need to outlive
    // that.
    const err_t err = tcp_write(t.client, t.payload.data() + t.written, static_cast<u16_t>(chunk),
                                TCP_WRITE_FLAG_COPY);
    if (err == ERR_MEM) break;  // queue full (tcp_sndqueuelen): wait for the sent callback
    ASSERT_EQ(err, ERR_OK);
    t.written += chunk;
  }
  tcp_output(t.client);
}

void close_client(transfer& t) {
  tcp_arg(t.client, nullptr);
  tcp_sent(t.client, nullptr);
  tcp_err(t.client, nullptr);
  ASSERT_EQ(tcp_close(t.client), ERR_OK);
  t.client = nullptr;
  t.client_closed = true;
}

err_t on_client_sent(void* arg, struct tcp_pcb* /*pcb*/, u16_t length) {
  auto& t = *static_cast<transfer*>(arg);
  t.acked += length;
  if (t.acked == t.payload.size()) {
    close_client(t);
  } else {
    send_more(t);
  }
  return ERR_OK;
}

err_t on_client_connected(void* arg, struct tcp_pcb* /*pcb*/, err_t err) {
  auto& t = *static_cast<transfer*>(arg);
  EXPECT_EQ(err, ERR_OK);
  send_more(t);
  return ERR_OK;
}

void on_error(void* arg, err_t /*err*/) {  // the pcb is already freed
  auto& t = *static_cast<transfer*>(arg);
  t.errors += 1;
  t.client = nullptr;
}

err_t on_server_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t err) {
  auto& t = *static_cast<transfer*>(arg);
  EXPECT_EQ(err, ERR_OK);
  if (p == nullptr) {  // FIN: the client is done; close our side
    t.server_saw_fin = true;
    tcp_arg(pcb, nullptr);
    tcp_recv(pcb, nullptr);
    tcp_err(pcb, nullptr);
    if (tcp_close(pcb) != ERR_OK) {
      tcp_abort(pcb);
      return ERR_ABRT;
    }
    return ERR_OK;
  }
  const std::size_t offset = t.received.size();
  t.received.resize(offset + p->tot_len);
  pbuf_copy_partial(p, t.received.data() + offset, p->tot_len, 0);
  tcp_recved(pcb, p->tot_len);  // reopen the window
  pbuf_free(p);                 // the callback owns the pbuf
  return ERR_OK;
}

err_t on_accept(void* arg, struct tcp_pcb* pcb, err_t err) {
  if (err != ERR_OK || pcb == nullptr) return ERR_VAL;
  tcp_arg(pcb, arg);
  tcp_recv(pcb, on_server_recv);
  tcp_err(pcb, on_error);
  return ERR_OK;
}

struct family_case {
  const char* name;
  u8_t type;  // IPADDR_TYPE_V4 or IPADDR_TYPE_V6
  const char* server_address;
  const char* client_address;
};

void PrintTo(const family_case& c, std::ostream* os) { *os << c.name; }  // names in test output

class LwipBuild : public ::testing::TestWithParam<family_case> {};

ip_addr_t parse(const char* text) {
  ip_addr_t address;
  EXPECT_EQ(ipaddr_aton(text, &address), 1) << text;
  return address;
}

void add_host(host& h, const char* ip4, const char* ip6) {
  ip4_addr_t address;
  ip4_addr_t netmask;
  ip4_addr_t gateway;
  ASSERT_EQ(ip4addr_aton(ip4, &address), 1);
  IP4_ADDR(&netmask, 255, 255, 255, 0);
  ip4_addr_set_zero(&gateway);
  ASSERT_NE(netif_add(&h.netif, &address, &netmask, &gateway, &h, init_ip_netif, ip_input),
            nullptr);
  ip6_addr_t address6;
  ASSERT_EQ(ip6addr_aton(ip6, &address6), 1);
  s8_t index = -1;
  ASSERT_EQ(netif_add_ip6_address(&h.netif, &address6, &index), ERR_OK);
  netif_ip6_addr_set_state(&h.netif, index, IP6_ADDR_PREFERRED);  // configured: no DAD
  netif_set_up(&h.netif);
  netif_set_link_up(&h.netif);
}

TEST_P(LwipBuild, TransfersOneMebibyteBetweenTwoNetifsAndLeaksNothing) {
  init_lwip_once();
  const family_case& fc = GetParam();
  const allocation_counts before = count_allocations();

  wire link;
  host server_host;
  host client_host;
  server_host.peer = &client_host;
  client_host.peer = &server_host;
  server_host.link = client_host.link = &link;
  add_host(server_host, "10.77.0.1", "fd00:77::1");
  add_host(client_host, "10.77.0.2", "fd00:77::2");

  transfer t;
  t.payload.resize(1024 * 1024);
  for (std::size_t i = 0; i < t.payload.size(); ++i) {
    t.payload[i] = static_cast<std::uint8_t>((i * 131 + i / 4096) & 0xff);
  }

  // Server: bind to the host's address (never ANY: that would take the port on every host), listen.
  const ip_addr_t server_address = parse(fc.server_address);
  struct tcp_pcb* listener = tcp_new_ip_type(fc.type);
  ASSERT_NE(listener, nullptr);
  ASSERT_EQ(tcp_bind(listener, &server_address, 0), ERR_OK);
  const u16_t port = listener->local_port;
  listener = tcp_listen_with_backlog(listener, 4);  // frees the old pcb, returns a new one
  ASSERT_NE(listener, nullptr);
  tcp_arg(listener, &t);
  tcp_accept(listener, on_accept);

  // Client: bound to its host's address first, so the route hook sends it out of its own netif.
  const ip_addr_t client_address = parse(fc.client_address);
  t.client = tcp_new_ip_type(fc.type);
  ASSERT_NE(t.client, nullptr);
  ASSERT_EQ(tcp_bind(t.client, &client_address, 0), ERR_OK);
  tcp_arg(t.client, &t);
  tcp_sent(t.client, on_client_sent);
  tcp_err(t.client, on_error);
  ASSERT_EQ(tcp_connect(t.client, &server_address, port, on_client_connected), ERR_OK);

  // Run until both sides have closed and only the client's TIME_WAIT pcb is left (30 s: never
  // hang).
  const u32_t started = sys_now();
  while (!(t.server_saw_fin && t.client_closed && tcp_active_pcbs == nullptr) && t.errors == 0 &&
         static_cast<u32_t>(sys_now() - started) < 30000) {
    poll(link);
  }

  EXPECT_EQ(t.errors, 0);
  EXPECT_TRUE(t.client_closed);
  EXPECT_TRUE(t.server_saw_fin);
  ASSERT_EQ(t.received.size(), t.payload.size());
  EXPECT_TRUE(t.received == t.payload) << "received bytes differ from the sent bytes";
  // Every byte crossed the wire (not lwIP's loopback): the route hook did its job.
  EXPECT_GT(link.bytes, t.payload.size());
  EXPECT_GT(link.packets, t.payload.size() / TCP_MSS);

  // Teardown: the listener closes at once; TIME_WAIT would last 2 MSL, so abort it.
  tcp_arg(listener, nullptr);
  tcp_accept(listener, nullptr);
  ASSERT_EQ(tcp_close(listener), ERR_OK);
  EXPECT_NE(tcp_tw_pcbs, nullptr) << "the active closer should be in TIME_WAIT";
  while (tcp_tw_pcbs != nullptr) tcp_abort(tcp_tw_pcbs);
  netif_remove(&client_host.netif);
  netif_remove(&server_host.netif);
  drain(link);

  // lwIP's TCP timer unregisters itself on its first tick with no pcb left (<= 250 ms later),
  // freeing its timeout entry: run the timers until the counts settle, or 2 s have passed.
  const u32_t settling = sys_now();
  while (count_allocations() != before && static_cast<u32_t>(sys_now() - settling) < 2000) {
    timespec tick{0, 1000 * 1000};
    nanosleep(&tick, nullptr);
    sys_check_timeouts();
  }
  const allocation_counts after = count_allocations();
  EXPECT_EQ(after.heap_used, before.heap_used) << "lwIP heap bytes still allocated";
  for (int i = 0; i < MEMP_MAX; ++i) {
    EXPECT_EQ(after.pool_used[i], before.pool_used[i])
        << "pool " << kPoolNames[i] << " still has elements in use";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Families, LwipBuild,
    ::testing::Values(family_case{"IPv4", IPADDR_TYPE_V4, "10.77.0.1", "10.77.0.2"},
                      family_case{"IPv6", IPADDR_TYPE_V6, "fd00:77::1", "fd00:77::2"}),
    [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(LwipPort, SameSeedGivesTheSameRandomSequence) {
  auto draw = [](std::uint64_t seed) {
    anysock_lwip_seed_rand(seed);
    std::vector<std::uint32_t> values;
    for (int i = 0; i < 8; ++i) values.push_back(LWIP_RAND());
    return values;
  };
  const std::vector<std::uint32_t> first = draw(42);
  EXPECT_EQ(draw(42), first);
  EXPECT_NE(draw(43), first);
  EXPECT_NE(std::count(first.begin(), first.end(), first[0]), 8) << "the generator is stuck";
}

TEST(LwipPort, SysNowFollowsTheMonotonicClockInMilliseconds) {
  const u32_t start = sys_now();
  timespec pause{0, 50 * 1000 * 1000};
  nanosleep(&pause, nullptr);
  const u32_t elapsed = sys_now() - start;
  EXPECT_GE(elapsed, 45u);
  EXPECT_LT(elapsed, 5000u);
}

}  // namespace

// LWIP_CHKSUM (port/checksum.c) against RFC 1071 written out 16 bits at a time: every length up
// to 300 bytes at every start offset within 8, plus a jumbo buffer, and what lwIP builds on it.
namespace {
uint16_t reference_checksum(const uint8_t* p, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) {
    uint16_t word;
    std::memcpy(&word, p + i, 2);  // the 16-bit word as it lies in memory
    sum += word;
  }
  if (len % 2 != 0) {
    uint8_t last[2] = {p[len - 1], 0};
    uint16_t word;
    std::memcpy(&word, last, 2);
    sum += word;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
}  // namespace

TEST(LwipPort, ChecksumMatchesRfc1071AtEveryLengthAndAlignment) {
  std::vector<uint8_t> data(70000);
  uint32_t x = 12345;
  for (uint8_t& b : data) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 23);
  }
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t len = 0; len <= 300; ++len) {
      ASSERT_EQ(anysock_lwip_chksum(data.data() + offset, static_cast<int>(len)),
                reference_checksum(data.data() + offset, len))
          << "offset " << offset << ", length " << len;
    }
  }
  EXPECT_EQ(anysock_lwip_chksum(data.data() + 3, 65535),
            reference_checksum(data.data() + 3, 65535));
  std::vector<uint8_t> ones(65535, 0xff);  // the largest sums fold correctly
  EXPECT_EQ(anysock_lwip_chksum(ones.data(), 65535), reference_checksum(ones.data(), 65535));
  // lwIP's inet_chksum complements it: a buffer that carries its own checksum sums to zero.
  std::vector<uint8_t> packet(data.begin(), data.begin() + 1000);
  packet[10] = packet[11] = 0;
  const uint16_t c = inet_chksum(packet.data(), 1000);
  std::memcpy(&packet[10], &c, 2);
  EXPECT_EQ(inet_chksum(packet.data(), 1000), 0);
}
