#include "pcap_link.hpp"

#include <pcap/pcap.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "../link_support.hpp"

namespace anysock::drivers {
namespace {

constexpr std::array<std::string_view, 3> kKeys{"iface", "promisc", "buffer"};
constexpr uint64_t kDefaultBuffer = 4u << 20;

class pcap_link final : public link {
 public:
  pcap_link(pcap_t* handle, const detail::interface_info& info)
      : link(info.name, info.ifindex, info.mtu, info.mac),
        handle_(handle),
        fd_(pcap_get_selectable_fd(handle)),
        flat_(max_frame()) {}
  ~pcap_link() override { pcap_close(handle_); }

  std::string_view kind() const noexcept override { return "pcap"; }
  int fd() const noexcept override { return fd_; }

  burst receive(size_t max_frames, frame_sink sink) override {
    burst b;
    if ((b.error = standing_error()) != 0 || max_frames == 0) return b;
    dispatch_context ctx{&sink, &stats_, 0};
    int n = pcap_dispatch(handle_, static_cast<int>(std::min<size_t>(max_frames, 1 << 20)),
                          &pcap_link::on_packet, reinterpret_cast<u_char*>(&ctx));
    b.frames = ctx.delivered;
    // libpcap reports a socket error (the interface went down or disappeared) as PCAP_ERROR;
    // "went down" may be stale, left from before the interface came up again.
    if (n < 0) {
      int now = check_interface();
      bool stale = std::strstr(pcap_geterr(handle_), "went down") != nullptr;
      b.error = now != 0 ? now : stale ? 0 : EIO;
    }
    return b;
  }

  burst transmit(std::span<const tx_frame> frames) override {
    burst b;
    if ((b.error = standing_error()) != 0) return b;
    for (const tx_frame& f : frames) {
      if (f.size() > max_frame()) {
        b.error = EMSGSIZE;
        break;
      }
      const void* data = f.pieces()[0].iov_base;
      if (f.pieces().size() > 1) {
        f.copy_to(flat_.data());
        data = flat_.data();
      }
      if (int err = inject(data, f.size())) {
        b.error = err;
        break;
      }
      ++b.frames;
      ++stats_.tx_frames;
      stats_.tx_bytes += f.size();
    }
    return b;
  }

  int flush() override { return standing_error(); }

  link_stats stats() const override {
    link_stats s = stats_;
    pcap_stat ps{};
    if (pcap_stats(handle_, &ps) == 0) s.rx_dropped += ps.ps_drop;
    return s;
  }

 private:
  // Sends one frame: 0 or the error to report.
  int inject(const void* data, size_t len) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      errno = 0;
      if (pcap_inject(handle_, data, len) >= 0) return 0;
      int err = errno != 0 ? errno : EIO;
      if (err == EAGAIN || err == ENOBUFS) return EAGAIN;
      // The kernel leaves "went down" on the socket until a send or read collects it: once the
      // interface is up again, that stale error fails one send. Try again.
      if (err == ENETDOWN && check_interface() == 0) continue;
      return failure(err);
    }
    return EIO;
  }

  struct dispatch_context {
    frame_sink* sink;
    link_stats* stats;
    size_t delivered;
  };

  static void on_packet(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
    auto* ctx = reinterpret_cast<dispatch_context*>(user);
    if (h->caplen < h->len) {  // truncated by the snapshot length: useless to a stack
      ++ctx->stats->rx_dropped;
      return;
    }
    (*ctx->sink)(frame(bytes, h->caplen));
    ++ctx->delivered;
    ++ctx->stats->rx_frames;
    ctx->stats->rx_bytes += h->caplen;
  }

  pcap_t* handle_;
  int fd_;
  std::vector<uint8_t> flat_;  // a gathered frame, flattened for pcap_inject()
};

[[noreturn]] void activation_failed(pcap_t* p, int rc, const std::string& iface) {
  std::string text = pcap_geterr(p);
  pcap_close(p);
  switch (rc) {
    case PCAP_ERROR_NO_SUCH_DEVICE:
      detail::fail(ENODEV, "pcap", "no interface " + iface + " (" + text + ")");
    case PCAP_ERROR_PERM_DENIED:
    case PCAP_ERROR_PROMISC_PERM_DENIED:
      detail::fail(EPERM, "pcap",
                   "capturing on " + iface + " " + detail::privilege_hint("CAP_NET_RAW") + " (" +
                       text + ")");
    case PCAP_ERROR_IFACE_NOT_UP:
      detail::fail(ENETDOWN, "pcap",
                   iface + " is down: bring it up with ip link set " + iface + " up");
    default:
      detail::fail(EIO, "pcap", "libpcap cannot open " + iface + ": " + text);
  }
}

}  // namespace

std::span<const std::string_view> pcap_option_keys() { return kKeys; }

std::unique_ptr<link> open_pcap(const link_options& options) {
  detail::option_reader opts("pcap", options, kKeys);
  std::string iface = opts.iface();
  bool promisc = opts.flag("promisc", true);
  uint64_t buffer = opts.number("buffer", kDefaultBuffer, 64u << 10, 1u << 30);
  detail::interface_info info = detail::find_interface("pcap", iface);

  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(iface.c_str(), errbuf);
  if (p == nullptr) detail::fail(EIO, "pcap", "libpcap cannot open " + iface + ": " + errbuf);
  // Snapshot length: a whole frame, plus room for a VLAN tag the kernel put back.
  pcap_set_snaplen(p, info.mtu + 14 + 4);
  pcap_set_promisc(p, promisc ? 1 : 0);
  pcap_set_immediate_mode(p, 1);
  pcap_set_buffer_size(p, static_cast<int>(buffer));
  int rc = pcap_activate(p);
  if (rc < 0) activation_failed(p, rc, iface);  // rc > 0 is a warning (e.g. no promiscuous mode)
  if (pcap_datalink(p) != DLT_EN10MB) {
    pcap_close(p);
    detail::fail(EPROTONOSUPPORT, "pcap", iface + " is not an Ethernet interface");
  }
  if (pcap_setnonblock(p, 1, errbuf) != 0 || pcap_setdirection(p, PCAP_D_IN) != 0 ||
      pcap_get_selectable_fd(p) < 0) {
    std::string text = errbuf[0] != '\0' ? errbuf : pcap_geterr(p);
    pcap_close(p);
    detail::fail(EIO, "pcap",
                 "libpcap cannot set up " + iface + " (non-blocking, inbound only): " + text);
  }
  try {
    return std::make_unique<pcap_link>(p, info);
  } catch (...) {
    pcap_close(p);
    throw;
  }
}

}  // namespace anysock::drivers
