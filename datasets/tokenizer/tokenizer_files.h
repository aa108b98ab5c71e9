#pragma once
#include <string>

#include "datasets/tokenizer/bpe_tokenizer.h"

namespace kervan {

// Where scripts/get-tokenizer.sh installs tokenizers:
// ${KERVAN_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kervan}/tokenizers
std::string tokenizer_data_dir();

// Loads a tokenizer by name or folder. "gpt2": GPT-2's files from tokenizer_data_dir()/gpt2,
// checked against their pinned SHA-256 hashes (so every machine tokenizes identically); any other
// value: a folder holding encoder.json and vocab.bpe (e.g. a Hugging Face GPT-2 style vocab),
// used as it is. Missing or wrong files are a UserError that says how to fix them.
BpeTokenizer load_bpe_tokenizer(const std::string& name_or_dir);

// The pinned SHA-256 of GPT-2's encoder.json and vocab.bpe, as "<encoder.json>:<vocab.bpe>" (the
// tokenizer identity a corpus manifest records for "gpt2").
std::string gpt2_vocab_sha256();

// SHA-256 of a file as lowercase hex (OpenSSL libcrypto); UserError when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace kervan
