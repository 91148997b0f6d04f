#include "pcap_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>

#include "anysock/error.hpp"

namespace anysock::lwip_detail {
namespace {

struct file_header {
  uint32_t magic = 0xa1b2c3d4;  // microsecond timestamps, host byte order
  uint16_t version_major = 2;
  uint16_t version_minor = 4;
  int32_t thiszone = 0;
  uint32_t sigfigs = 0;
  uint32_t snaplen;
  uint32_t network;
};

struct record_header {
  uint32_t ts_sec;
  uint32_t ts_usec;
  uint32_t incl_len;
  uint32_t orig_len;
};

}  // namespace

pcap_file::pcap_file(const std::string& path, uint32_t link_type, uint32_t snaplen)
    : snaplen_(snaplen) {
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) throw error(errno, "pcap capture file " + path);
  file_header h;
  h.snaplen = snaplen;
  h.network = link_type;
  std::fwrite(&h, sizeof h, 1, file_);
}

pcap_file::~pcap_file() {
  if (file_ != nullptr) std::fclose(file_);
}

void pcap_file::begin(double seconds, size_t len) {
  double whole = std::floor(seconds);
  record_header r;
  r.ts_sec = static_cast<uint32_t>(whole);
  r.ts_usec = std::min<uint32_t>(999999, static_cast<uint32_t>((seconds - whole) * 1e6));
  r.incl_len = static_cast<uint32_t>(std::min<size_t>(len, snaplen_));
  r.orig_len = static_cast<uint32_t>(len);
  std::fwrite(&r, sizeof r, 1, file_);
  record_left_ = r.incl_len;
}

void pcap_file::append(const void* data, size_t len) {
  size_t n = std::min(len, record_left_);
  if (n > 0) std::fwrite(data, 1, n, file_);
  record_left_ -= n;
}

void pcap_file::write(double seconds, const void* data, size_t len) {
  begin(seconds, len);
  append(data, len);
}

void pcap_file::flush() { std::fflush(file_); }

}  // namespace anysock::lwip_detail
