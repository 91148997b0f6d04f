// IPv6 fragments lwIP must never reassemble (reassembly_guard.cpp). Called by the engine's input
// hook (LWIP_HOOK_IP6_INPUT) with the engine lock held.
#pragma once

#include "lwip/pbuf.h"

namespace anysock::lwip_detail {

/// True when `p` (an IPv6 packet a netif received, p->payload at its header, nothing checked but
/// the version) is a fragment that ends past what lwIP can reassemble: the headers before the
/// fragment header and the fragmentable part together over 65,535 bytes. The caller drops it.
bool ends_past_lwip_reassembly(const pbuf* p);

}  // namespace anysock::lwip_detail
