#include "server/json_floats.h"

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace radix::server {

void append_json_float(std::string& out, float value) {
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), value);
  if (r.ec != std::errc()) throw std::runtime_error("json: cannot format a float");
  const size_t n = static_cast<size_t>(r.ptr - buf);
  out.append(buf, n);
  // Shortest form of an integral value has neither a point nor an exponent ("1", "-0", "120").
  if (std::memchr(buf, '.', n) == nullptr && std::memchr(buf, 'e', n) == nullptr) out += ".0";
}

double json_number(float value) {
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), value);
  double out = 0.0;
  if (r.ec != std::errc() || std::from_chars(buf, r.ptr, out).ec != std::errc()) {
    return static_cast<double>(value);  // (cannot happen for a finite float)
  }
  return out;
}

void append_json_floats(std::string& out, std::span<const float> values) {
  out += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    append_json_float(out, values[i]);
  }
  out += ']';
}

std::string json_float_rows(const std::vector<std::vector<float>>& rows) {
  std::string out;
  size_t values = 0;
  for (const auto& row : rows) values += row.size();
  out.reserve(2 + rows.size() * 3 + values * 14);
  out += '[';
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i > 0) out += ',';
    append_json_floats(out, rows[i]);
  }
  out += ']';
  return out;
}

std::string json_float_rows(const std::vector<std::vector<std::vector<float>>>& batches) {
  std::string out = "[";
  for (size_t i = 0; i < batches.size(); ++i) {
    if (i > 0) out += ',';
    out += json_float_rows(batches[i]);
  }
  out += ']';
  return out;
}

}  // namespace radix::server
