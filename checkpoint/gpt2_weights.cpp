#include "checkpoint/gpt2_weights.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "checkpoint/checkpoint_dir.h"
#include "checkpoint/saver.h"
#include "core/error.h"
#include "core/model/gpt.h"
#include "core/paths.h"

namespace kervan {

using nlohmann::json;

namespace {

constexpr const char* kHfPrefix = "transformer.";
constexpr int32_t kLlmcMagic = 20240326;
constexpr int kLlmcHeaderInts = 256;

// The tensors of one block, in kervan's declaration order (which is also llm.c's order of kinds).
const char* const kBlockTensors[] = {"ln_1.weight",      "ln_1.bias",          "attn.c_attn.weight",
                                     "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
                                     "ln_2.weight",      "ln_2.bias",          "mlp.c_fc.weight",
                                     "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias"};

std::string block_tensor(int layer, const char* suffix) {
  return "h." + std::to_string(layer) + "." + suffix;
}

// HF's Conv1D keeps [in, out]; kervan's Linear [out, in]: the 2-D weights inside blocks transpose.
bool conv1d_weight(const std::string& kervan_name) {
  return kervan_name.starts_with("h.") && kervan_name.ends_with(".weight") &&
         kervan_name.find(".ln_") == std::string::npos;
}

HostTensor transposed(const HostTensor& t) {
  const int64_t r = t.shape[0], c = t.shape[1];
  HostTensor out{{c, r}, std::vector<float>(t.data.size())};
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) out.data[j * r + i] = t.data[i * c + j];
  return out;
}

// wte's first `rows` rows, or padded with zero rows to `rows`.
HostTensor with_rows(const HostTensor& t, int64_t rows) {
  const int64_t width = t.shape[1];
  HostTensor out{{rows, width}, std::vector<float>(rows * width, 0.0f)};
  std::memcpy(out.data.data(), t.data.data(), std::min(rows, t.shape[0]) * width * sizeof(float));
  return out;
}

int64_t int_field(const json& j, const char* key, const std::string& path) {
  if (!j.contains(key) || !j.at(key).is_number_integer())
    throw UserError(path + ": '" + key + "' is missing or not an integer");
  return j.at(key).get<int64_t>();
}

float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

void put_gpt_config(std::map<std::string, StateValue>& values, const GPTConfig& c) {
  values["model_config/family"] = std::string("gpt");
  values["model_config/n_layer"] = int64_t{c.n_layer};
  values["model_config/n_head"] = int64_t{c.n_head};
  values["model_config/d_model"] = c.d_model;
  values["model_config/vocab_size"] = c.vocab_size;
  values["model_config/max_seq_len"] = c.max_seq_len;
}

GPTConfig gpt_config_of(const CheckpointReader& checkpoint) {
  StateDict d;
  checkpoint.read_values(d);
  const std::string where = checkpoint.folder() + ": ";
  // The family first, from the manifest or, failing that, the tensors: GPT-2's layout is GPT's.
  std::string family;
  if (const auto it = checkpoint.manifest().values.find("model_config/family");
      it != checkpoint.manifest().values.end())
    if (const auto* f = std::get_if<std::string>(&it->second)) family = *f;
  if (family.empty() && !checkpoint.has("model/ln_f.weight")) family = "non-GPT";
  if (!family.empty() && family != "gpt")
    throw UserError(where + "export supports GPT checkpoints only (the GPT-2 layout of the Hugging Face "
                    "and llm.c formats); this one is " + family);
  try {
    GPTConfig c;
    c.n_layer = static_cast<int>(d.value<int64_t>("model_config/n_layer"));
    c.n_head = static_cast<int>(d.value<int64_t>("model_config/n_head"));
    c.d_model = d.value<int64_t>("model_config/d_model");
    c.vocab_size = d.value<int64_t>("model_config/vocab_size");
    c.max_seq_len = d.value<int64_t>("model_config/max_seq_len");
    c.validate();
    return c;
  } catch (const UserError& e) {
    throw UserError(where + "model shape: " + e.what());
  }
}

Gpt2Weights read_checkpoint_weights(const CheckpointReader& checkpoint, Backend& backend) {
  Gpt2Weights w{gpt_config_of(checkpoint), {}};
  GPT model(w.config, backend, 1, 1);
  StateDict state;
  model.state(state);
  checkpoint.read_tensors(state, backend);
  for (const Parameter& p : model.params().all())
    w.tensors[p.name] = {p.shape, backend.to_host<float>(p.value)};
  return w;
}

void write_weights_checkpoint(const std::string& dir, const Gpt2Weights& weights, Backend& backend) {
  claim_checkpoint_dir(dir, "ckpt import");
  const DirLock lock(dir, "ckpt import");
  if (!committed_steps(dir).empty())
    throw UserError(dir + ": already holds checkpoints; import into an empty folder");
  GPT model(weights.config, backend, 1, 1);
  for (Parameter& p : model.params().all()) {
    const auto it = weights.tensors.find(p.name);
    if (it == weights.tensors.end()) throw UserError("the imported weights lack tensor " + p.name);
    if (it->second.shape != p.shape)
      throw UserError("tensor " + p.name + " is " + shape_str(it->second.shape) +
                      " in the imported weights but " + shape_str(p.shape) + " in a GPT-2 of this shape");
    backend.copy_from_host(p.value, it->second.data.data());
  }
  for (const auto& [name, t] : weights.tensors)
    if (!model.params().find(name)) throw UserError("the imported weights hold an unknown tensor " + name);
  StateDict state;
  model.state(state);
  put_gpt_config(state.values, weights.config);
  CheckpointSaver saver({dir, /*async=*/false, {}}, WriterLayout{}, backend);
  saver.save(0, state);
}

void write_hf_gpt2(const std::string& folder, const Gpt2Weights& w) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) throw UserError(folder + ": cannot create: " + ec.message());
  const GPTConfig& c = w.config;
  const json config = {{"architectures", {"GPT2LMHeadModel"}},
                       {"model_type", "gpt2"},
                       {"vocab_size", c.vocab_size},
                       {"n_positions", c.max_seq_len},
                       {"n_ctx", c.max_seq_len},
                       {"n_embd", c.d_model},
                       {"n_layer", c.n_layer},
                       {"n_head", c.n_head},
                       {"n_inner", nullptr},
                       {"activation_function", "gelu_new"},
                       {"layer_norm_epsilon", 1e-5},
                       {"resid_pdrop", 0.0},
                       {"embd_pdrop", 0.0},
                       {"attn_pdrop", 0.0},
                       {"initializer_range", 0.02},
                       {"tie_word_embeddings", true},
                       {"bos_token_id", c.vocab_size - 1},
                       {"eos_token_id", c.vocab_size - 1},
                       {"torch_dtype", "float32"}};
  {
    std::ofstream out(folder + "/config.json");
    out << config.dump(2) << "\n";
    out.close();
    if (!out) throw_io_error("'" + folder + "/config.json'", "write", errno ? errno : EIO);
  }
  std::map<std::string, HostTensor> hf;
  for (const auto& [name, t] : w.tensors) {
    if (name == "wte" || name == "wpe") {
      hf[kHfPrefix + name + ".weight"] = name == "wte" ? with_rows(t, c.vocab_size) : t;
    } else {
      hf[kHfPrefix + name] = conv1d_weight(name) ? transposed(t) : t;
    }
  }
  write_safetensors(folder + "/model.safetensors", hf);
}

Gpt2Weights read_hf_gpt2(const std::string& folder) {
  const std::string config_path = folder + "/config.json", weights_path = folder + "/model.safetensors";
  require_dir(folder, "Hugging Face model folder");
  require_file(config_path, "Hugging Face config");
  require_file(weights_path, "Hugging Face weights");
  std::ifstream in(config_path);
  if (!in) throw UserError(config_path + ": cannot read: " + std::strerror(errno));
  json config;
  try {
    config = json::parse(in);
  } catch (const json::exception& e) {
    throw UserError(config_path + ": not JSON: " + e.what());
  }
  if (config.value("model_type", std::string("gpt2")) != "gpt2")
    throw UserError(config_path + ": model_type '" + config.value("model_type", std::string()) +
                    "' is not gpt2");
  const std::string act = config.value("activation_function", std::string("gelu_new"));
  if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    throw UserError(config_path + ": activation_function '" + act +
                    "'; kervan's GPT-2 uses the tanh GELU (gelu_new)");
  if (config.contains("n_inner") && !config.at("n_inner").is_null())
    throw UserError(config_path + ": n_inner is set; kervan's GPT-2 MLP is 4 * n_embd wide");
  Gpt2Weights w;
  w.config.n_layer = static_cast<int>(int_field(config, "n_layer", config_path));
  w.config.n_head = static_cast<int>(int_field(config, "n_head", config_path));
  w.config.d_model = int_field(config, "n_embd", config_path);
  w.config.vocab_size = int_field(config, "vocab_size", config_path);
  w.config.max_seq_len = int_field(config, "n_positions", config_path);
  try {
    w.config.validate();
  } catch (const UserError& e) {
    throw UserError(config_path + ": " + e.what());
  }
  for (auto& [hf_name, t] : read_safetensors(weights_path)) {
    std::string name = hf_name.starts_with(kHfPrefix) ? hf_name.substr(std::strlen(kHfPrefix)) : hf_name;
    // Attention-mask buffers, and the LM head that GPT-2 ties to wte.
    if (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") || name == "lm_head.weight")
      continue;
    if (name == "wte.weight" || name == "wpe.weight") {
      name.resize(3);
      if (t.shape.size() != 2) throw UserError(weights_path + ": tensor " + hf_name + " is not 2-D");
      w.tensors[name] = name == "wte" ? with_rows(t, w.config.padded_vocab()) : std::move(t);
    } else if (conv1d_weight(name)) {
      if (t.shape.size() != 2) throw UserError(weights_path + ": tensor " + hf_name + " is not 2-D");
      w.tensors[name] = transposed(t);
    } else {
      w.tensors[name] = std::move(t);
    }
  }
  return w;
}

void write_llmc_gpt2(const std::string& path, const Gpt2Weights& w) {
  const GPTConfig& c = w.config;
  std::vector<int32_t> header(kLlmcHeaderInts, 0);
  header[0] = kLlmcMagic;
  header[1] = 3;  // fp32, padded vocabulary
  header[2] = static_cast<int32_t>(c.max_seq_len);
  header[3] = static_cast<int32_t>(c.vocab_size);
  header[4] = c.n_layer;
  header[5] = c.n_head;
  header[6] = static_cast<int32_t>(c.d_model);
  header[7] = static_cast<int32_t>(c.padded_vocab());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(header.data()), kLlmcHeaderInts * 4);
  auto put = [&](const std::string& name) {
    const HostTensor& t = w.tensors.at(name);
    out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * 4));
  };
  put("wte");
  put("wpe");
  for (const char* kind : kBlockTensors)
    for (int l = 0; l < c.n_layer; ++l) put(block_tensor(l, kind));
  put("ln_f.weight");
  put("ln_f.bias");
  out.close();
  if (!out) throw_io_error("'" + path + "'", "write", errno ? errno : EIO);
}

Gpt2Weights read_llmc_gpt2(const std::string& path) {
  require_file(path, "llm.c model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path + ": cannot read: " + std::strerror(errno));
  std::vector<int32_t> h(kLlmcHeaderInts);
  if (!in.read(reinterpret_cast<char*>(h.data()), kLlmcHeaderInts * 4) || h[0] != kLlmcMagic)
    throw UserError(path + ": not an llm.c GPT-2 model file (magic " + std::to_string(h[0]) + ", expected " +
                    std::to_string(kLlmcMagic) + ")");
  if (h[1] != 3 && h[1] != 5)
    throw UserError(path + ": llm.c model file version " + std::to_string(h[1]) +
                    "; kervan reads versions 3 (fp32) and 5 (bf16), with the padded vocabulary");
  Gpt2Weights w;
  w.config = {h[4], h[5], h[6], h[3], h[2]};
  const int64_t padded_in_file = h[7];
  try {
    w.config.validate();
  } catch (const UserError& e) {
    throw UserError(path + ": header: " + e.what());
  }
  if (padded_in_file < w.config.vocab_size)
    throw UserError(path + ": header: padded vocabulary " + std::to_string(padded_in_file) +
                    " < vocabulary " + std::to_string(w.config.vocab_size));
  const int64_t C = w.config.d_model, width = h[1] == 3 ? 4 : 2;
  std::vector<char> raw;
  auto take = [&](const std::string& name, Shape shape) {
    HostTensor t{std::move(shape), {}};
    t.data.resize(shape_numel(t.shape));
    raw.resize(t.data.size() * width);
    if (!in.read(raw.data(), static_cast<std::streamsize>(raw.size())))
      throw UserError(path + ": ends inside tensor " + name + " (truncated, or the header's shape is wrong)");
    for (size_t i = 0; i < t.data.size(); ++i) {
      if (width == 4) {
        std::memcpy(&t.data[i], raw.data() + 4 * i, 4);
      } else {
        uint16_t b;
        std::memcpy(&b, raw.data() + 2 * i, 2);
        t.data[i] = bf16_to_float(b);
      }
    }
    w.tensors[name] = std::move(t);
  };
  take("wte", {padded_in_file, C});
  w.tensors["wte"] = with_rows(w.tensors["wte"], w.config.vocab_size);  // llm.c's padding rows dropped
  w.tensors["wte"] = with_rows(w.tensors["wte"], w.config.padded_vocab());
  take("wpe", {w.config.max_seq_len, C});
  const std::vector<Shape> shapes{{C}, {C}, {3 * C, C}, {3 * C}, {C, C},     {C},
                                  {C}, {C}, {4 * C, C}, {4 * C}, {C, 4 * C}, {C}};
  for (size_t k = 0; k < shapes.size(); ++k)
    for (int l = 0; l < w.config.n_layer; ++l) take(block_tensor(l, kBlockTensors[k]), shapes[k]);
  take("ln_f.weight", {C});
  take("ln_f.bias", {C});
  if (in.peek() != std::char_traits<char>::eof())
    throw UserError(path + ": holds more data than its header's model shape");
  return w;
}

}  // namespace kervan
