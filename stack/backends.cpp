// The backend kinds compiled into this build of anysock (the registry make_backend() starts with).
#include <string>
#include <utility>
#include <vector>

#include "anysock/backend.hpp"

namespace anysock::detail {

backend_factory kernel_factory();

}  // namespace anysock::detail

#ifdef ANYSOCK_HAVE_LWIP
namespace anysock::lwip_detail {
backend_factory sim_factory();
backend_factory ethernet_factory();
}  // namespace anysock::lwip_detail
#endif

namespace anysock::detail {

std::vector<std::pair<std::string, backend_factory>> builtin_backends() {
  return {
      {"kernel", kernel_factory()},
#ifdef ANYSOCK_HAVE_LWIP
      {"lwip+sim", lwip_detail::sim_factory()},
      {"lwip+tap", lwip_detail::ethernet_factory()},
      {"lwip+pcap", lwip_detail::ethernet_factory()},
      {"lwip+af_packet", lwip_detail::ethernet_factory()},
      {"lwip+af_xdp", lwip_detail::ethernet_factory()},
#endif
  };
}

}  // namespace anysock::detail
