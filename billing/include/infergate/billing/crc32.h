// CRC-32 as zlib, PNG and Ethernet compute it (IEEE 802.3 polynomial, reflected, initial and
// final value 0xFFFFFFFF; check value 0xCBF43926 for "123456789"): the usage journal's frame
// checksum.
#pragma once

#include <cstdint>
#include <string_view>

namespace infergate::billing {

std::uint32_t crc32(std::string_view data);

}  // namespace infergate::billing
