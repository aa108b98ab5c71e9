#include "datasets/tokenizer/gpt2_vocab_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "core/error.h"
#include "datasets/tokenizer/gpt2_bytes.h"
#include "datasets/tokenizer/utf8.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

// A token string of encoder.json as a JSON string, escaped as Python's json.dump does it.
void append_json_string(std::string& out, const std::string& mapped) {
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(mapped.data());
  for (size_t i = 0; i < mapped.size();) {
    uint32_t cp;
    i += decode_utf8(p + i, &cp);
    if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      out += buf;
    }
  }
  out += '"';
}

void write_file(const fs::path& path, const std::string& data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw_io_error(path.string(), "cannot create", errno);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      throw_io_error(path.string(), "write failed", err ? err : EIO);
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  if (::close(fd) != 0 || !synced) throw_io_error(path.string(), "write failed", synced ? errno : err);
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

fs::path normalized(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.has_filename()) return p;
  return p.parent_path();  // "out/" -> "out"
}

}  // namespace

void check_vocab_out_dir(const std::string& dir) {
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (!fs::exists(st)) return;
  if (!fs::is_directory(st)) throw UserError(dir + ": --out exists and is not a folder");
  if (!fs::is_empty(dir, ec) || ec)
    throw UserError(dir +
                    ": --out folder is not empty (a vocabulary is never written over other files; "
                    "remove it or choose a new folder)");
}

void write_gpt2_vocab(const std::string& dir, const std::vector<BpeMerge>& merges) {
  check_vocab_out_dir(dir);
  const std::array<uint8_t, 256> byte_ids = gpt2_byte_ids();
  std::string json = "{";
  auto add = [&json](const std::string& mapped, size_t id) {
    if (json.size() > 1) json += ", ";
    append_json_string(json, mapped);
    json += ": ";
    json += std::to_string(id);
  };
  std::unordered_map<std::string, size_t> ids;
  for (int i = 0; i < 256; ++i) {
    const std::string b(1, static_cast<char>(byte_ids[i]));
    ids.emplace(b, i);
    add(gpt2_mapped_string(b), i);
  }
  std::string bpe = "#version: 0.2\n";
  for (const BpeMerge& m : merges) {
    bpe += gpt2_mapped_string(m.left) + " " + gpt2_mapped_string(m.right) + "\n";
    std::string joined = m.left + m.right;
    if (ids.emplace(joined, ids.size()).second) add(gpt2_mapped_string(joined), ids.size() - 1);
  }
  add("<|endoftext|>", ids.size());
  json += "}";

  const fs::path target = normalized(dir);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw_io_error(parent.string(), "cannot create folder", ec.value());
  std::string tmp_name = ".";  // built in steps: GCC 12 warns (-Wrestrict) on "." + string
  tmp_name += target.filename().string();
  tmp_name += ".tmp-";
  tmp_name += std::to_string(::getpid());
  const fs::path tmp = parent / tmp_name;
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec)) throw_io_error(tmp.string(), "cannot create folder", ec ? ec.value() : EEXIST);
  try {
    write_file(tmp / "encoder.json", json);
    write_file(tmp / "vocab.bpe", bpe);
    fsync_dir(tmp);
    // rename() replaces an empty folder and fails on one that is not empty.
    if (std::rename(tmp.c_str(), target.c_str()) != 0) {
      const int err = errno;
      if (err == ENOTEMPTY || err == EEXIST) check_vocab_out_dir(dir);
      throw_io_error(dir, "cannot move the vocabulary into place", err);
    }
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  fsync_dir(parent);
}

}  // namespace kervan
