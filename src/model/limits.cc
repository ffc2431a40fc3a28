#include "model/limits.h"

#include "common/text.h"

namespace berth::model {
namespace {

std::string Bytes(size_t n) {
  if (n >= (1 << 20) && n % (1 << 20) == 0) return std::to_string(n >> 20) + " MiB";
  if (n >= (1 << 10) && n % (1 << 10) == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

}  // namespace

Status CheckText(const std::string& value, const std::string& field, size_t max_bytes) {
  if (value.size() > max_bytes)
    return InvalidArgument(field + ": is " + std::to_string(value.size()) +
                           " bytes long, the most is " + Bytes(max_bytes));
  if (!IsValidUtf8(value)) return InvalidArgument(field + ": is not valid UTF-8");
  return Status::Ok();
}

Status CheckName(const std::string& value, const std::string& field) {
  RETURN_IF_ERROR(CheckText(value, field, kMaxNameBytes));
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7F)
      return InvalidArgument(field + ": must not contain control characters, got \"" +
                             EscapeForTerminal(value) + "\"");
  return Status::Ok();
}

Status CheckCommand(const std::vector<std::string>& argv, const std::string& field) {
  if (argv.size() > kMaxArgs)
    return InvalidArgument(field + ": has " + std::to_string(argv.size()) +
                           " arguments, the most is " + std::to_string(kMaxArgs));
  size_t total = 0;
  for (size_t i = 0; i < argv.size(); ++i) {
    RETURN_IF_ERROR(CheckText(argv[i], field + "[" + std::to_string(i) + "]", kMaxArgBytes));
    total += argv[i].size() + 1;
  }
  if (total > kMaxCommandBytes)
    return InvalidArgument(field + ": the arguments take " + std::to_string(total) +
                           " bytes in all, the most is " + Bytes(kMaxCommandBytes));
  return Status::Ok();
}

Status CheckEnv(const std::map<std::string, std::string>& env, const std::string& field) {
  if (env.size() > kMaxEnvVars)
    return InvalidArgument(field + ": has " + std::to_string(env.size()) +
                           " variables, the most is " + std::to_string(kMaxEnvVars));
  size_t total = 0;
  for (const auto& [k, v] : env) {
    RETURN_IF_ERROR(CheckName(k, field + " name"));
    if (k.empty() || k.find('=') != std::string::npos)
      return InvalidArgument(field + "." + k + ": not a valid variable name");
    RETURN_IF_ERROR(CheckText(v, field + "." + k, kMaxArgBytes));
    total += k.size() + v.size() + 2;
  }
  if (total > kMaxEnvBytes)
    return InvalidArgument(field + ": the variables take " + std::to_string(total) +
                           " bytes in all, the most is " + Bytes(kMaxEnvBytes));
  return Status::Ok();
}

Status CheckLabels(const std::map<std::string, std::string>& labels, const std::string& field) {
  if (labels.size() > kMaxLabels)
    return InvalidArgument(field + ": has " + std::to_string(labels.size()) +
                           " labels, the most is " + std::to_string(kMaxLabels));
  for (const auto& [k, v] : labels) {
    RETURN_IF_ERROR(CheckName(k, field + " key"));
    RETURN_IF_ERROR(CheckText(v, field + "." + k, kMaxLabelValueBytes));
  }
  return Status::Ok();
}

Status CheckFanOut(int64_t items, int64_t cap, const std::string& field) {
  if (items > cap)
    return InvalidArgument(field + ": fans out to " + std::to_string(items) +
                           " children, the most is " + std::to_string(cap) +
                           " (berthd's pipelines.maxFanOut)");
  return Status::Ok();
}

Status CheckDuration(DurationMs d, const std::string& field) {
  if (d < 0) return InvalidArgument(field + ": must be >= 0");
  if (d > kMaxDuration)
    return InvalidArgument(field + ": is too long, the most is " + std::string(kMaxDurationText));
  return Status::Ok();
}

}  // namespace berth::model
