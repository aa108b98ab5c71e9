#include "launcher/finetune_data.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/paths.h"

namespace kervan {

FinetuneFile read_finetune_file(const std::string& path, const std::string& task, bool skip_bad_lines) {
  require_file(path, "fine-tuning file");
  std::ifstream in(path);
  if (!in) throw UserError(path + ": cannot open the fine-tuning file");
  const bool classify = task == "classify";
  const char* first = classify ? "text" : "input";
  const char* second = classify ? "label" : "target";
  FinetuneFile out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    std::string problem;
    FinetuneRecord r{"", "", where};
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      problem = "not valid JSON (a syntax error, or a number out of range)";
    } else if (!j.is_object()) {
      problem = "not a JSON object";
    } else if (!j.contains(first) || !j[first].is_string()) {
      problem = std::string("no string field \"") + first + "\"";
    } else if (!j.contains(second) ||
               !(j[second].is_string() || (classify && j[second].is_number_integer()))) {
      problem =
          std::string("no ") + (classify ? "string or integer" : "string") + " field \"" + second + "\"";
    } else {
      r.input = j[first].get<std::string>();
      r.output =
          j[second].is_string() ? j[second].get<std::string>() : std::to_string(j[second].get<int64_t>());
    }
    if (problem.empty()) {
      out.records.push_back(std::move(r));
    } else if (skip_bad_lines) {
      ++out.skipped;
    } else {
      throw UserError(where + ": " + problem + " (--skip-bad-lines skips such lines)");
    }
  }
  if (out.records.empty()) throw UserError(path + ": no examples");
  return out;
}

std::vector<std::string> label_set(const RunConfig& c, const FinetuneFile& train) {
  if (!c.finetune.labels.empty()) {
    const std::set<std::string> distinct(c.finetune.labels.begin(), c.finetune.labels.end());
    if (distinct.size() != c.finetune.labels.size())
      throw UserError(c.file + ": finetune.labels names a label twice");
    if (distinct.size() < 2) throw UserError(c.file + ": finetune.labels needs at least two labels");
    return c.finetune.labels;
  }
  std::set<std::string> seen;
  for (const FinetuneRecord& r : train.records) seen.insert(r.output);
  if (seen.size() < 2)
    throw UserError(c.finetune.train + ": every example has the label '" + *seen.begin() +
                    "'; classification needs at least two");
  return {seen.begin(), seen.end()};
}

std::vector<FinetuneExample> encode_records(const FinetuneFile& file, const TextCodec& codec,
                                            const std::vector<std::string>& labels, const RunConfig& c) {
  std::vector<FinetuneExample> out;
  out.reserve(file.records.size());
  for (const FinetuneRecord& r : file.records) {
    FinetuneExample e;
    e.input = codec.encode(r.input);
    if (c.finetune.task == "classify") {
      const auto it = std::find(labels.begin(), labels.end(), r.output);
      if (it == labels.end()) {
        std::string known;
        for (const std::string& l : labels) known += (known.empty() ? "" : ", ") + l;
        throw UserError(r.where + ": label '" + r.output + "' is not one of the labels (" + known + ")" +
                        (c.finetune.labels.empty() ? ", those of " + c.finetune.train : ", finetune.labels"));
      }
      e.label = static_cast<int32_t>(it - labels.begin());
    } else {
      e.target = codec.encode(r.output);
    }
    out.push_back(std::move(e));
  }
  return out;
}

void make_finetune_batch(const RunConfig& c, const SpecialTokens& sp,
                         const std::vector<const FinetuneExample*>& examples, ExampleBatch& out) {
  const int64_t B = static_cast<int64_t>(examples.size()), T = c.train.seq_len;
  const int64_t Td = c.finetune.max_target_len;
  const auto eot = static_cast<int32_t>(sp.eot);
  const bool t5 = c.arch == "t5", bert = c.arch == "bert";
  out = ExampleBatch{};
  out.B = B;
  out.T = T;
  out.tokens.assign(B * T, bert || t5 ? sp.pad() : eot);
  if (bert) out.token_types.assign(B * T, 0);
  if (t5) {
    out.T_dec = Td;
    out.targets.assign(B * Td, -1);
    out.decoder_tokens.assign(B * Td, sp.pad());
  } else {
    out.targets.assign(B * T, -1);
  }
  for (int64_t b = 0; b < B; ++b) {
    const FinetuneExample& e = *examples[b];
    int32_t* tok = &out.tokens[b * T];
    if (c.finetune.task == "classify") {
      if (bert) {
        const int64_t n = std::min<int64_t>(static_cast<int64_t>(e.input.size()), T - 2);
        tok[0] = sp.cls();
        std::copy_n(e.input.begin(), n, tok + 1);
        tok[n + 1] = sp.sep();
        out.lengths.push_back(static_cast<int32_t>(n + 2));
        out.targets[b * T] = e.label;
      } else {
        const int64_t n = std::min<int64_t>(static_cast<int64_t>(e.input.size()), T - 1);
        std::copy_n(e.input.begin(), n, tok);
        tok[n] = eot;
        out.targets[b * T + n] = e.label;
      }
      continue;
    }
    const int64_t m = std::min<int64_t>(static_cast<int64_t>(e.target.size()), Td - 1);  // then </s>
    if (t5) {
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(e.input.size()), T - 1);
      std::copy_n(e.input.begin(), n, tok);
      tok[n] = eot;
      out.lengths.push_back(static_cast<int32_t>(n + 1));
      int32_t* tgt = &out.targets[b * Td];
      int32_t* dec = &out.decoder_tokens[b * Td];
      std::copy_n(e.target.begin(), m, tgt);
      tgt[m] = eot;
      for (int64_t t = 1; t <= m; ++t) dec[t] = tgt[t - 1];
      continue;
    }
    // GPT: s = input <eot> target <eot>; position i predicts s[i + 1], only in the target part.
    const int64_t keep = std::min<int64_t>(static_cast<int64_t>(e.input.size()), T - (m + 1));
    std::vector<int32_t> s(e.input.end() - keep, e.input.end());
    s.push_back(eot);
    s.insert(s.end(), e.target.begin(), e.target.begin() + m);
    s.push_back(eot);
    for (int64_t i = 0; i + 1 < static_cast<int64_t>(s.size()); ++i) {
      tok[i] = s[i];
      if (i >= keep) out.targets[b * T + i] = s[i + 1];
    }
  }
}

}  // namespace kervan
