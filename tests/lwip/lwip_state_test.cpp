// The lwIP static-state snapshot (stack/lwip/port/state.h): lwIP keeps state that lwip_init() does
// not reset (ip_id, tcp_ticks, the TCP timer phase, netif_num, lwip_stats ...), so a run of lwIP in
// a process depends on every run before it. Restoring the snapshot taken before the first
// lwip_init() makes the hundredth run send byte for byte what the first sent, at the same virtual
// times.
//
// Links anysock_lwip alone (no engine) and drives lwIP's raw API on a virtual clock of its own.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "anysock_lwip_port.h"
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip_addr.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"  // tcp_ticks, tcp_active_pcbs
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "state.h"

namespace {

// lwIP's clock (sys_now), in virtual milliseconds: replaces the weak default of sys_arch.c.
u32_t g_now_ms = 0;

// What one run sent and chose, one line per event, to compare runs with.
std::vector<std::string>* g_trace = nullptr;

void record(const char* kind, struct pbuf* p) {
  std::string line = "t=" + std::to_string(g_now_ms) + " " + kind + " ";
  std::vector<unsigned char> bytes(p->tot_len);
  pbuf_copy_partial(p, bytes.data(), p->tot_len, 0);
  for (unsigned char b : bytes) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", b);
    line += hex;
  }
  g_trace->push_back(line);
}

err_t output_ip4(struct netif*, struct pbuf* p, const ip4_addr_t*) {
  record("ip4", p);
  return ERR_OK;
}

err_t output_ip6(struct netif*, struct pbuf* p, const ip6_addr_t*) {
  record("ip6", p);
  return ERR_OK;
}

err_t init_netif(struct netif* nif) {
  nif->name[0] = 't';
  nif->name[1] = 's';
  nif->output = output_ip4;
  nif->output_ip6 = output_ip6;
  nif->mtu = 1500;
  nif->hwaddr_len = 6;
  const unsigned char mac[6] = {0x02, 0, 0, 0, 0, 1};
  for (int i = 0; i < 6; ++i) nif->hwaddr[i] = mac[i];
  nif->flags = NETIF_FLAG_MLD6;
  return ERR_OK;
}

void run_timers_for(u32_t ms) {
  for (u32_t waited = 0; waited < ms; waited += 50) {
    g_now_ms += 50;
    sys_check_timeouts();
  }
}

// Frees lwIP's timer entries (nothing else frees them; lwip_init() registers its timers again).
void free_timers() {
  sys_timeo** head = sys_timeouts_get_next_timeout();
  while (*head != nullptr) {
    sys_timeo* t = *head;
    *head = t->next;
    memp_free(MEMP_SYS_TIMEOUT, t);
  }
}

bool lwip_holds_no_memory() {
  if (lwip_stats.mem.used != 0) return false;
  for (int i = 0; i < MEMP_MAX; ++i) {
    if (lwip_stats.memp[i] != nullptr && lwip_stats.memp[i]->used != 0) return false;
  }
  return true;
}

// One "world": a netif with IPv4 and IPv6 addresses, a TCP connect to a silent peer (SYN and its
// retransmissions), UDP datagrams over both families, 10 virtual seconds of timers, then a teardown
// that frees everything lwIP allocated. Returns what it sent and the ports and netif number it got.
std::vector<std::string> run_world() {
  std::vector<std::string> trace;
  g_trace = &trace;
  g_now_ms = 1000;
  anysock_lwip_seed_rand(7);
  lwip_init();

  struct netif nif = {};
  ip4_addr_t addr, mask, gw;
  IP4_ADDR(&addr, 10, 0, 0, 1);
  IP4_ADDR(&mask, 255, 255, 255, 0);
  ip4_addr_set_zero(&gw);
  EXPECT_NE(netif_add(&nif, &addr, &mask, &gw, nullptr, init_netif, ip_input), nullptr);
  netif_create_ip6_linklocal_address(&nif, 1);
  ip6_addr_t global6;
  IP6_ADDR(&global6, PP_HTONL(0x20010db8), 0, 0, PP_HTONL(1));
  s8_t index = -1;
  EXPECT_EQ(netif_add_ip6_address(&nif, &global6, &index), ERR_OK);
  netif_ip6_addr_set_state(&nif, index, IP6_ADDR_PREFERRED);
  netif_set_up(&nif);
  netif_set_link_up(&nif);
  trace.push_back("netif num " + std::to_string(nif.num));

  struct tcp_pcb* tcp = tcp_new();
  EXPECT_NE(tcp, nullptr);
  EXPECT_EQ(tcp_bind(tcp, IP_ANY_TYPE, 0), ERR_OK);
  trace.push_back("tcp port " + std::to_string(tcp->local_port));
  ip_addr_t peer4 = IPADDR4_INIT_BYTES(10, 0, 0, 2);
  EXPECT_EQ(tcp_connect(tcp, &peer4, 80, nullptr), ERR_OK);

  struct udp_pcb* udp = udp_new_ip_type(IPADDR_TYPE_ANY);
  EXPECT_NE(udp, nullptr);
  EXPECT_EQ(udp_bind(udp, IP_ANY_TYPE, 0), ERR_OK);
  trace.push_back("udp port " + std::to_string(udp->local_port));
  ip_addr_t peer6 = IPADDR6_INIT_HOST(0x20010db8, 0, 0, 2);
  for (const ip_addr_t* to : {&peer4, &peer6, &peer4}) {
    struct pbuf* p = pbuf_alloc(PBUF_TRANSPORT, 5, PBUF_RAM);
    EXPECT_EQ(pbuf_take(p, "hello", 5), ERR_OK);
    EXPECT_EQ(udp_sendto(udp, p, to, 9), ERR_OK);
    pbuf_free(p);
    run_timers_for(100);
  }

  run_timers_for(10000);

  tcp_abort(tcp);
  udp_remove(udp);
  netif_remove(&nif);
  free_timers();
  EXPECT_TRUE(lwip_holds_no_memory());
  g_trace = nullptr;
  return trace;
}

// Every test starts from lwIP's pristine statics; the first save in the process happens before any
// lwip_init().
class LwipState : public ::testing::Test {
 protected:
  void SetUp() override {
    anysock_lwip_state_save();
    anysock_lwip_state_restore();
  }
  void TearDown() override { anysock_lwip_state_restore(); }
};

}  // namespace

extern "C" u32_t sys_now(void) { return g_now_ms; }

TEST_F(LwipState, SnapshotCoversLwipsStaticData) {
  EXPECT_GE(anysock_lwip_state_size(), sizeof lwip_stats + sizeof tcp_ticks + sizeof ip_data);
  auto* const marker = reinterpret_cast<struct tcp_pcb*>(uintptr_t{0x1234});
  tcp_ticks = 777;
  lwip_stats.tcp.xmit = 5;
  lwip_stats.mem.used = 99;
  tcp_active_pcbs = marker;
  netif_list = reinterpret_cast<struct netif*>(marker);
  ip_data.current_ip_header_tot_len = 40;

  anysock_lwip_state_restore();

  EXPECT_EQ(tcp_ticks, 0u);
  EXPECT_EQ(lwip_stats.tcp.xmit, 0u);
  EXPECT_EQ(lwip_stats.mem.used, 0u);
  EXPECT_EQ(tcp_active_pcbs, nullptr);
  EXPECT_EQ(netif_list, nullptr);
  EXPECT_EQ(ip_data.current_ip_header_tot_len, 0u);
}

TEST_F(LwipState, LaterSavesKeepTheFirstCopy) {
  tcp_ticks = 42;
  anysock_lwip_state_save();
  anysock_lwip_state_restore();
  EXPECT_EQ(tcp_ticks, 0u);
}

TEST_F(LwipState, RestoreLeavesThePortsOwnStateAlone) {
  anysock_lwip_set_heap_limit(1u << 20);
  anysock_lwip_seed_rand(99);
  const uint32_t first = anysock_lwip_rand();
  const uint32_t second = anysock_lwip_rand();
  anysock_lwip_seed_rand(99);
  EXPECT_EQ(anysock_lwip_rand(), first);

  anysock_lwip_state_restore();

  EXPECT_EQ(anysock_lwip_heap_limit(), 1u << 20);
  EXPECT_EQ(anysock_lwip_rand(), second);
  anysock_lwip_set_heap_limit(0);
}

TEST_F(LwipState, WithoutARestoreASecondRunDiffers) {
  const std::vector<std::string> first = run_world();
  const std::vector<std::string> second = run_world();
  EXPECT_NE(first, second);  // ip_id, netif_num, tcp_ticks and the TCP timer phase carried over
}

TEST_F(LwipState, HundredthRestoredRunSendsWhatTheFirstSent) {
  const std::vector<std::string> first = run_world();
  size_t syns = 0;  // IPv4 packets whose protocol byte (offset 9) is TCP
  for (const std::string& line : first) {
    const size_t at = line.find(" ip4 ");
    syns += at != std::string::npos && line.compare(at + 5 + 18, 2, "06") == 0;
  }
  ASSERT_GE(syns, 2u);  // the SYN and at least one retransmission, on the virtual clock
  for (int world = 2; world <= 100; ++world) {
    anysock_lwip_state_restore();
    const std::vector<std::string> again = run_world();
    ASSERT_EQ(again, first) << "world " << world;
  }
}
