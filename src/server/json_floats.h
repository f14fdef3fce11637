// JSON text of float32 arrays (embeddings, hidden states), written directly: each value in the
// shortest decimal form that reads back as the same float32 (what TEI's serde_json writes), not
// as the double nlohmann::json would hold it (0.1f would be 0.10000000149011612). Embedding
// replies come out ~40 % smaller and twice as fast to write (bench/json_floats_bench.cc; figures
// in bench/RESULTS.md). Values must be finite (the routes check that first: JSON has no inf or
// nan).
#pragma once

#include <span>
#include <string>
#include <vector>

namespace radix::server {

// One value; integral ones keep a ".0" (1.0f is "1.0", so that clients read a float, not an int).
void append_json_float(std::string& out, float value);
// [v0,v1,...]
void append_json_floats(std::string& out, std::span<const float> values);
// The double nlohmann::json should hold for a float32 so that it prints the float's shortest
// form too (scores inside JSON objects): the double read from that form.
double json_number(float value);
// [[...],[...]] and [[[...]]]: the /embed and /embed_all bodies.
std::string json_float_rows(const std::vector<std::vector<float>>& rows);
std::string json_float_rows(const std::vector<std::vector<std::vector<float>>>& batches);

}  // namespace radix::server
