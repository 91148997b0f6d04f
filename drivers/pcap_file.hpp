// A capture file in the classic pcap format (readable by tcpdump, Wireshark, tshark): the
// `pcap=FILE` key of every lwIP link writes each packet in and out through one of these. Not
// thread-safe: the lwIP engine's lock serialises writers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace anysock::lwip_detail {

class pcap_file {
 public:
  /// pcap link types used by our links.
  static constexpr uint32_t kRawIp = 101;   // LINKTYPE_RAW: packets start with the IP header
  static constexpr uint32_t kEthernet = 1;  // LINKTYPE_ETHERNET

  /// Creates (truncates) `path`; throws anysock::error with errno if it cannot be written.
  pcap_file(const std::string& path, uint32_t link_type, uint32_t snaplen = 65535);
  ~pcap_file();
  pcap_file(const pcap_file&) = delete;
  pcap_file& operator=(const pcap_file&) = delete;

  /// Appends one packet of `len` bytes stamped `seconds` (since the epoch, or virtual seconds).
  void write(double seconds, const void* data, size_t len);
  /// Begins a record of `len` bytes to be filled by append() calls (for scattered packets).
  void begin(double seconds, size_t len);
  void append(const void* data, size_t len);
  void flush();

 private:
  std::FILE* file_ = nullptr;
  uint32_t snaplen_;
  size_t record_left_ = 0;  // bytes of the current record still to write (capped at snaplen)
};

}  // namespace anysock::lwip_detail
