#include "checkpoint/manifest.h"

#include <cstdio>
#include <set>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "checkpoint/format.h"
#include "core/error.h"

namespace kervan {

using nlohmann::json;

namespace {

constexpr const char* kFormatName = "kervan-checkpoint";

// A field that parses but makes no sense; reported like nlohmann's own errors.
struct BadField : std::runtime_error {
  using std::runtime_error::runtime_error;
};

DType dtype_from_name(const std::string& name) {
  for (DType t : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::U16})
    if (dtype_name(t) == name) return t;
  throw BadField("unknown dtype '" + name + "'");
}

uint64_t checksum_from_hex(const std::string& hex) {
  if (hex.size() != 16 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw BadField("checksum '" + hex + "' is not 16 hex digits");
  return std::stoull(hex, nullptr, 16);
}

json layout_json(const WriterLayout& l, bool with_rank) {
  json j = {{"world_size", l.world_size}, {"dp", l.dp}, {"tp", l.tp}, {"zero1", l.zero1}};
  if (with_rank) {
    j["rank"] = l.rank;
    j["dp_rank"] = l.dp_rank;
    j["tp_rank"] = l.tp_rank;
  }
  return j;
}

WriterLayout layout_from(const json& j, bool with_rank) {
  WriterLayout l;
  l.world_size = j.at("world_size").get<int>();
  l.dp = j.at("dp").get<int>();
  l.tp = j.at("tp").get<int>();
  l.zero1 = j.at("zero1").get<bool>();
  if (with_rank) {
    l.rank = j.at("rank").get<int>();
    l.dp_rank = j.at("dp_rank").get<int>();
    l.tp_rank = j.at("tp_rank").get<int>();
  }
  return l;
}

json file_json(const SavedFile& f) {
  return {{"name", f.name}, {"bytes", f.bytes}, {"xxh3", xxh3_hex(f.checksum)}};
}

// A file a manifest names lies in its step folder: a plain name, never a path that leads out of
// it ("../../etc/passwd", "/etc/passwd") nor the folder itself.
std::string plain_file_name(const std::string& name, const std::string& entry) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos)
    throw BadField(entry + " names the file '" + name +
                   "', which is not a plain file name in the step folder (a path with '/' or '..' "
                   "would lead out of it)");
  return name;
}

SavedFile file_from(const json& j) {
  const std::string name = j.at("name").get<std::string>();
  return {plain_file_name(name, "the files entry '" + name + "'"), j.at("bytes").get<int64_t>(),
          checksum_from_hex(j.at("xxh3").get<std::string>())};
}

json tensor_json(const SavedTensor& t) {
  return {{"name", t.name},
          {"global_shape", t.slice.global_shape},
          {"offsets", t.slice.offsets},
          {"box", t.slice.box},
          {"flat_begin", t.slice.flat_begin},
          {"flat_count", t.slice.flat_count},
          {"dtype", dtype_name(t.dtype)},
          {"replica", t.replica},
          {"file", t.file},
          {"dataset", t.dataset},
          {"xxh3", xxh3_hex(t.checksum)}};
}

SavedTensor tensor_from(const json& j) {
  SavedTensor t;
  t.name = j.at("name").get<std::string>();
  t.slice.global_shape = j.at("global_shape").get<Shape>();
  t.slice.offsets = j.at("offsets").get<std::vector<int64_t>>();
  t.slice.box = j.at("box").get<Shape>();
  t.slice.flat_begin = j.at("flat_begin").get<int64_t>();
  t.slice.flat_count = j.at("flat_count").get<int64_t>();
  t.dtype = dtype_from_name(j.at("dtype").get<std::string>());
  t.replica = j.at("replica").get<int>();
  t.file = plain_file_name(j.at("file").get<std::string>(), "tensor '" + t.name + "'");
  t.dataset = j.at("dataset").get<std::string>();
  t.checksum = checksum_from_hex(j.at("xxh3").get<std::string>());
  // The slice must lie inside its global tensor, or reading it would index out of bounds.
  const size_t n = t.slice.global_shape.size();
  bool ok = t.slice.offsets.size() == n && t.slice.box.size() == n && t.slice.flat_begin >= 0 &&
            t.slice.flat_count >= 0;
  for (size_t d = 0; ok && d < n; ++d)
    ok = t.slice.offsets[d] >= 0 && t.slice.box[d] >= 0 &&
         t.slice.offsets[d] + t.slice.box[d] <= t.slice.global_shape[d];
  if (!ok || t.slice.flat_begin + t.slice.flat_count > shape_numel(t.slice.box))
    throw BadField("tensor '" + t.name + "' has an impossible slice");
  return t;
}

// Values keep their C++ type through JSON: {"int": 5}, {"float": 0.5}, {"string": "x"},
// {"floats": [..]}, {"strings": [..]}.
json value_json(const StateValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return {{"int", *i}};
  if (const auto* d = std::get_if<double>(&v)) return {{"float", *d}};
  if (const auto* s = std::get_if<std::string>(&v)) return {{"string", *s}};
  if (const auto* ds = std::get_if<std::vector<double>>(&v)) return {{"floats", *ds}};
  return {{"strings", std::get<std::vector<std::string>>(v)}};
}

StateValue value_from(const json& j) {
  if (j.contains("int")) return j.at("int").get<int64_t>();
  if (j.contains("float")) return j.at("float").get<double>();
  if (j.contains("string")) return j.at("string").get<std::string>();
  if (j.contains("floats")) return j.at("floats").get<std::vector<double>>();
  return j.at("strings").get<std::vector<std::string>>();
}

json parse_or_throw(const std::string& text, const std::string& path) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw UserError(path + ": damaged (not JSON): " + e.what());
  }
}

// A file or a tensor slice listed twice: a reader would take either copy and a verifier would pass
// a checkpoint whose other copy is missing from the count.
void refuse_repeated_entries(const Manifest& m) {
  std::set<std::string> seen;
  for (const SavedFile& f : m.files)
    if (!seen.insert(f.name).second) throw BadField("file " + f.name + " is listed twice");
  seen.clear();
  for (const SavedTensor& t : m.tensors) {
    const std::string key = t.name + " " + t.slice.describe() + " (replica " + std::to_string(t.replica) + ")";
    if (!seen.insert(key).second) throw BadField("tensor " + key + " is listed twice");
  }
}

}  // namespace

std::string WriterLayout::describe() const {
  std::string s = "DP=" + std::to_string(dp) + " x TP=" + std::to_string(tp);
  if (zero1) s += ", ZeRO-1";
  return s + " (" + std::to_string(world_size) + (world_size == 1 ? " rank)" : " ranks)");
}

std::string xxh3_hex(uint64_t checksum) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(checksum));
  return buf;
}

std::string manifest_to_json(const Manifest& m) {
  json j = {{"format", kFormatName},
            {"format_version", m.format_version},
            {"step", m.step},
            {"kervan_version", m.kervan_version},
            {"git_commit", m.git_commit},
            {"created", m.created},
            {"layout", layout_json(m.layout, false)},
            {"files", json::array()},
            {"tensors", json::array()},
            {"values", json::object()}};
  for (const SavedFile& f : m.files) j["files"].push_back(file_json(f));
  for (const SavedTensor& t : m.tensors) j["tensors"].push_back(tensor_json(t));
  for (const auto& [key, v] : m.values) j["values"][key] = value_json(v);
  return j.dump(1) + "\n";
}

Manifest manifest_from_json(const std::string& text, const std::string& path) {
  const json j = parse_or_throw(text, path);
  Manifest m;
  try {
    if (j.at("format").get<std::string>() != kFormatName)
      throw UserError(path + ": not a kervan checkpoint manifest (format '" +
                      j.at("format").get<std::string>() + "')");
    m.format_version = j.at("format_version").get<int>();
    if (m.format_version != kCheckpointFormatVersion)
      throw CheckpointVersionError(path + ": checkpoint format version " + std::to_string(m.format_version) +
                                   " (written by kervan " + j.value("kervan_version", std::string("?")) +
                                   "); this kervan reads version " +
                                   std::to_string(kCheckpointFormatVersion));
    m.step = j.at("step").get<int64_t>();
    m.kervan_version = j.at("kervan_version").get<std::string>();
    m.git_commit = j.at("git_commit").get<std::string>();
    m.created = j.at("created").get<std::string>();
    m.layout = layout_from(j.at("layout"), false);
    for (const json& f : j.at("files")) m.files.push_back(file_from(f));
    for (const json& t : j.at("tensors")) m.tensors.push_back(tensor_from(t));
    for (const auto& [key, v] : j.at("values").items()) m.values[key] = value_from(v);
    refuse_repeated_entries(m);
  } catch (const json::exception& e) {
    throw UserError(path + ": damaged manifest: " + e.what());
  } catch (const BadField& e) {
    throw UserError(path + ": damaged manifest: " + e.what());
  }
  return m;
}

std::string rank_record_to_json(const RankRecord& r) {
  json j = {{"layout", layout_json(r.layout, true)}, {"tensors", json::array()}};
  if (r.file) j["file"] = file_json(*r.file);
  for (const SavedTensor& t : r.tensors) j["tensors"].push_back(tensor_json(t));
  return j.dump() + "\n";
}

RankRecord rank_record_from_json(const std::string& text, const std::string& path) {
  const json j = parse_or_throw(text, path);
  RankRecord r;
  try {
    r.layout = layout_from(j.at("layout"), true);
    if (j.contains("file")) r.file = file_from(j.at("file"));
    for (const json& t : j.at("tensors")) r.tensors.push_back(tensor_from(t));
  } catch (const json::exception& e) {
    throw UserError(path + ": damaged rank record: " + e.what());
  } catch (const BadField& e) {
    throw UserError(path + ": damaged rank record: " + e.what());
  }
  return r;
}

}  // namespace kervan
