// The pieces of the scheduling framework that policies share besides the
// cycle (framework.cc): the queue index and PolicyOptions (policy.h).
#include <algorithm>
#include <cstring>

#include "sched/policy.h"

namespace berth::sched {

// ------------------------------------------------------------ queue index

void QueueIndex::Clear() {
  names_.clear();
  prefixes_.clear();
  map_.clear();
  table_.fill(0);
  last_ = -1;
}

uint64_t QueueIndex::Prefix(const std::string& s) {
  uint64_t p = 0;
  if (s.size() >= sizeof p) {
    std::memcpy(&p, s.data(), sizeof p);  // a fixed size: no call
  } else {
    for (size_t k = 0; k < s.size(); ++k)
      p |= static_cast<uint64_t>(static_cast<unsigned char>(s[k])) << (8 * k);
  }
  return p ^ (static_cast<uint64_t>(s.size()) << 59);  // names of up to 8 bytes differ in p
}

bool QueueIndex::Is(int i, const std::string& queue, uint64_t prefix) const {
  return prefixes_[i] == prefix && names_[i].size() == queue.size() &&
         (queue.size() <= sizeof prefix || names_[i] == queue);
}

int QueueIndex::Scan(const std::string& queue, uint64_t prefix) const {
  if (last_ >= 0 && Is(last_, queue, prefix)) return last_;  // jobs of one queue often come in runs
  if (!map_.empty()) {
    auto it = map_.find(queue);
    return it == map_.end() ? -1 : (last_ = it->second);
  }
  for (size_t slot = Slot(prefix);; slot = (slot + 1) % kSlots) {
    int i = table_[slot] - 1;
    if (i < 0) return -1;
    if (Is(i, queue, prefix)) return last_ = i;
  }
}

int QueueIndex::Lookup(const std::string& queue) const { return Scan(queue, Prefix(queue)); }

int QueueIndex::Find(const std::string& queue) {
  uint64_t prefix = Prefix(queue);
  int i = Scan(queue, prefix);
  if (i >= 0) return i;
  i = static_cast<int>(names_.size());
  names_.push_back(queue);
  prefixes_.push_back(prefix);
  if (names_.size() > kSlots / 2) {  // the table stays at most half full; then hash
    if (map_.empty()) {
      for (size_t k = 0; k < names_.size(); ++k) map_.emplace(names_[k], static_cast<int>(k));
    } else {
      map_.emplace(queue, i);
    }
  } else {
    size_t slot = Slot(prefix);
    while (table_[slot] != 0) slot = (slot + 1) % kSlots;
    table_[slot] = static_cast<int16_t>(i + 1);
  }
  return last_ = i;
}

// ---------------------------------------------------------------- options

Result<double> PolicyOptions::GetDouble(const std::string& key, double fallback) {
  known_.push_back(key);
  auto it = options_.find(key);
  if (it == options_.end()) return fallback;
  try {
    size_t used = 0;
    double v = std::stod(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    return InvalidArgument("option " + key + ": not a number: \"" + it->second + "\"");
  }
}

Result<int64_t> PolicyOptions::GetInt(const std::string& key, int64_t fallback) {
  known_.push_back(key);
  auto it = options_.find(key);
  if (it == options_.end()) return fallback;
  try {
    size_t used = 0;
    int64_t v = std::stoll(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    return InvalidArgument("option " + key + ": not an integer: \"" + it->second + "\"");
  }
}

std::string PolicyOptions::GetString(const std::string& key, const std::string& fallback) {
  known_.push_back(key);
  auto it = options_.find(key);
  return it == options_.end() ? fallback : it->second;
}

std::map<std::string, std::string> PolicyOptions::WithPrefix(const std::string& prefix) {
  prefixes_.push_back(prefix);
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : options_) {
    if (k.rfind(prefix, 0) == 0) out[k] = v;
  }
  return out;
}

Status PolicyOptions::Check(const std::string& policy) const {
  for (const auto& [k, v] : options_) {
    bool ok = std::find(known_.begin(), known_.end(), k) != known_.end();
    for (const auto& p : prefixes_) ok = ok || k.rfind(p, 0) == 0;
    if (ok) continue;
    std::string known;
    for (const auto& n : known_) known += (known.empty() ? "" : ", ") + n;
    for (const auto& p : prefixes_) known += (known.empty() ? "" : ", ") + p + "*";
    return InvalidArgument("option " + k + ": unknown for policy " + policy +
                           " (known: " + (known.empty() ? "none" : known) + ")");
  }
  return Status::Ok();
}

}  // namespace berth::sched
