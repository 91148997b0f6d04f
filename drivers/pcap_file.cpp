#include "pcap_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

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

constexpr size_t kBufferBytes = 64 * 1024;

std::string octal(unsigned mode) {
  char text[8];
  std::snprintf(text, sizeof text, "0%03o", mode & 0777);
  return text;
}

// Opens `path` for the capture as the constructor describes; the descriptor.
int open_capture(const std::string& path, unsigned mode) {
  const std::string what = "pcap capture file '" + path + "'";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                  static_cast<mode_t>(mode & 0777));
  if (fd < 0) {
    const int e = errno;
    if (e == ELOOP) throw error(e, what + " is a symbolic link (a capture never follows one)");
    throw error(e, what);
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777 & ~mode) != 0) {
    // An existing file (a capture of an earlier run, say) keeps no access the mode does not give.
    if (::fchmod(fd, st.st_mode & 07777 & mode) != 0) {
      const int e = errno;
      ::close(fd);
      throw error(e, what + ": cannot narrow its mode to " + octal(mode));
    }
  }
  return fd;
}

}  // namespace

pcap_file::pcap_file(const std::string& path, uint32_t link_type, uint32_t snaplen, unsigned mode)
    : fd_(open_capture(path, mode)), snaplen_(snaplen) {
  buffer_.reserve(kBufferBytes);
  file_header h;
  h.snaplen = snaplen;
  h.network = link_type;
  put(&h, sizeof h);
}

pcap_file::~pcap_file() {
  flush();
  ::close(fd_);
}

void pcap_file::put(const void* data, size_t len) {
  if (buffer_.size() + len > kBufferBytes) flush();
  const auto* bytes = static_cast<const unsigned char*>(data);
  buffer_.insert(buffer_.end(), bytes, bytes + len);
}

void pcap_file::begin(double seconds, size_t len) {
  double whole = std::floor(seconds);
  record_header r;
  r.ts_sec = static_cast<uint32_t>(whole);
  r.ts_usec = std::min<uint32_t>(999999, static_cast<uint32_t>((seconds - whole) * 1e6));
  r.incl_len = static_cast<uint32_t>(std::min<size_t>(len, snaplen_));
  r.orig_len = static_cast<uint32_t>(len);
  put(&r, sizeof r);
  record_left_ = r.incl_len;
}

void pcap_file::append(const void* data, size_t len) {
  size_t n = std::min(len, record_left_);
  if (n > 0) put(data, n);
  record_left_ -= n;
}

void pcap_file::write(double seconds, const void* data, size_t len) {
  begin(seconds, len);
  append(data, len);
}

void pcap_file::flush() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a full disk loses packets from the capture, never the traffic
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

}  // namespace anysock::lwip_detail
