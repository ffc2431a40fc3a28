// The two primitives authentication needs, from OpenSSL's libcrypto: it is
// well kept and audited, and berthd links it anyway for TLS.
#pragma once

#include <string>
#include <string_view>

namespace berth::auth {

// Lower-case hex of SHA-256(data).
std::string Sha256Hex(std::string_view data);

// Whether a == b, taking the same time whatever bytes differ (CRYPTO_memcmp):
// comparing secrets with == would leak how many leading bytes matched. The
// lengths are not secret (always 64 hex digits here); unequal lengths are
// unequal.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// How many times ConstantTimeEqual ran in this process: tests check that
// every secret comparison goes through it.
long ConstantTimeCompareCount();

}  // namespace berth::auth
