#include "auth/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <atomic>

#include "common/secure_random.h"

namespace berth::auth {
namespace {
std::atomic<long> g_compares{0};
}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest only fails on allocation failure; an empty digest then
  // matches no stored hash.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  return HexEncode(std::string(reinterpret_cast<const char*>(md), len));
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  g_compares.fetch_add(1, std::memory_order_relaxed);
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

long ConstantTimeCompareCount() { return g_compares.load(std::memory_order_relaxed); }

}  // namespace berth::auth
