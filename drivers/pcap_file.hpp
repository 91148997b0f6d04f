// A capture file in the classic pcap format (readable by tcpdump, Wireshark, tshark): the
// `pcap=FILE` key of every lwIP link writes each packet in and out through one of these. Captures
// hold payloads, so the file is its owner's only unless asked otherwise (`pcap_mode=`), and it is
// never reached through a symbolic link. Not thread-safe: the lwIP engine's lock serialises
// writers. Buffered by this object itself (not stdio), so a forked child that exits never writes
// the parent's buffered packets a second time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace anysock::lwip_detail {

class pcap_file {
 public:
  /// pcap link types used by our links.
  static constexpr uint32_t kRawIp = 101;   // LINKTYPE_RAW: packets start with the IP header
  static constexpr uint32_t kEthernet = 1;  // LINKTYPE_ETHERNET
  /// Permission bits of a new capture file unless the user asks otherwise: owner only.
  static constexpr unsigned kDefaultMode = 0600;

  /// Creates (truncates) `path` with permission bits `mode` (less the umask), without following
  /// a symbolic link there: anysock::error(ELOOP) naming the file if `path` is one (dangling or
  /// not), anysock::error(errno) if it cannot be written. An existing regular file loses every
  /// permission bit outside `mode` (narrowed, never widened; EPERM if that is not allowed).
  pcap_file(const std::string& path, uint32_t link_type, uint32_t snaplen = 65535,
            unsigned mode = kDefaultMode);
  ~pcap_file();
  pcap_file(const pcap_file&) = delete;
  pcap_file& operator=(const pcap_file&) = delete;

  /// Appends one packet of `len` bytes stamped `seconds` (since the epoch, or virtual seconds).
  void write(double seconds, const void* data, size_t len);
  /// Begins a record of `len` bytes to be filled by append() calls (for scattered packets).
  void begin(double seconds, size_t len);
  void append(const void* data, size_t len);
  /// Writes what is buffered to the file.
  void flush();

 private:
  void put(const void* data, size_t len);

  int fd_ = -1;
  std::vector<unsigned char> buffer_;  // bytes not yet written (flushed when full)
  uint32_t snaplen_;
  size_t record_left_ = 0;  // bytes of the current record still to write (capped at snaplen)
};

}  // namespace anysock::lwip_detail
