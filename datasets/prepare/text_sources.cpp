#include "datasets/prepare/text_sources.h"

#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/paths.h"
#include "datasets/tokenizer/utf8.h"

namespace kervan {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw UserError(path + ": " + what);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

int64_t mtime_ns_of(const fs::path& p) {
  std::error_code ec;
  const auto t = fs::last_write_time(p, ec);
  return ec ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TextSource make_source(const fs::path& path, const std::string& key) {
  TextSource s;
  s.path = path.string();
  s.key = key;
  if (!classify_text_file(path.filename().string(), s.format, s.compression))
    fail(s.path, "unknown input type (expected .txt or .jsonl, optionally compressed as .gz or .zst)");
  std::error_code ec;
  s.bytes = fs::file_size(path, ec);
  if (ec) fail(s.path, "cannot open input file: " + ec.message());
  s.mtime_ns = mtime_ns_of(path);
  return s;
}

// ---- byte streams ----

class FileHandle {
 public:
  explicit FileHandle(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "rb")) {
    if (!f_) throw_io_error(path, "cannot open input file", errno);
  }
  ~FileHandle() { std::fclose(f_); }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  size_t read(void* buf, size_t n) {
    const size_t got = std::fread(buf, 1, n, f_);
    if (got < n && std::ferror(f_)) throw_io_error(path_, "read failed", errno);
    return got;
  }

 private:
  std::string path_;
  FILE* f_;
};

class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(const std::string& path) : file_(path) {}
  size_t read(char* buf, size_t n) override {
    const size_t got = file_.read(buf, n);
    raw_bytes_ += got;
    return got;
  }

 private:
  FileHandle file_;
};

constexpr size_t kInChunk = 1 << 18;

// gzip (also several concatenated members, as `cat a.gz b.gz` makes) through zlib's inflate.
class GzipStream final : public ByteStream {
 public:
  explicit GzipStream(const std::string& path) : path_(path), file_(path), in_(kInChunk) {
    if (inflateInit2(&z_, 15 + 16) != Z_OK) fail(path_, "zlib: cannot initialise inflate");
  }
  ~GzipStream() override { inflateEnd(&z_); }
  size_t read(char* buf, size_t n) override {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    while (z_.avail_out > 0) {
      if (z_.avail_in == 0 && !eof_) {
        const size_t got = file_.read(in_.data(), in_.size());
        raw_bytes_ += got;
        z_.next_in = in_.data();
        z_.avail_in = static_cast<uInt>(got);
        if (got == 0) eof_ = true;
      }
      if (z_.avail_in == 0 && eof_) {
        if (!member_done_) fail(path_, "truncated gzip stream (the file ends inside compressed data)");
        break;
      }
      if (member_done_) {  // another gzip member follows
        inflateReset(&z_);
        member_done_ = false;
      }
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_done_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        fail(path_, std::string("corrupt gzip data (") +
                        (z_.msg ? z_.msg : "zlib error " + std::to_string(rc)) + ")");
      }
    }
    return n - z_.avail_out;
  }

 private:
  std::string path_;
  FileHandle file_;
  std::vector<unsigned char> in_;
  z_stream z_{};
  bool eof_ = false, member_done_ = true;  // true before the first member: an empty file is empty
};

// zstd frames (one or several) through the streaming API.
class ZstdStream final : public ByteStream {
 public:
  explicit ZstdStream(const std::string& path) : path_(path), file_(path), in_(ZSTD_DStreamInSize()) {
    ctx_ = ZSTD_createDCtx();
    if (!ctx_) fail(path_, "zstd: cannot create a decompression context");
  }
  ~ZstdStream() override { ZSTD_freeDCtx(ctx_); }
  size_t read(char* buf, size_t n) override {
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos < out.size) {
      if (input_.pos == input_.size && !eof_) {
        const size_t got = file_.read(in_.data(), in_.size());
        raw_bytes_ += got;
        input_ = {in_.data(), got, 0};
        if (got == 0) eof_ = true;
      }
      const size_t before = out.pos, consumed = input_.pos;
      const size_t rc = ZSTD_decompressStream(ctx_, &out, &input_);
      if (ZSTD_isError(rc)) fail(path_, std::string("corrupt zstd data (") + ZSTD_getErrorName(rc) + ")");
      if (out.pos > before || input_.pos > consumed) frame_done_ = rc == 0;
      if (eof_ && input_.pos == input_.size && out.pos == before) {
        // All input is consumed and nothing more comes out: the end, complete or not.
        if (!frame_done_) fail(path_, "truncated zstd stream (the file ends inside a compressed frame)");
        break;
      }
    }
    return out.pos;
  }

 private:
  std::string path_;
  FileHandle file_;
  std::vector<char> in_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  ZSTD_DCtx* ctx_ = nullptr;
  bool eof_ = false, frame_done_ = true;
};

}  // namespace

bool classify_text_file(std::string_view name, TextFormat& format, Compression& compression) {
  compression = Compression::None;
  if (ends_with(name, ".gz")) {
    compression = Compression::Gzip;
    name.remove_suffix(3);
  } else if (ends_with(name, ".zst")) {
    compression = Compression::Zstd;
    name.remove_suffix(4);
  }
  if (ends_with(name, ".txt")) {
    format = TextFormat::Txt;
    return true;
  }
  if (ends_with(name, ".jsonl")) {
    format = TextFormat::Jsonl;
    return true;
  }
  return false;
}

std::vector<TextSource> discover_text_sources(const std::vector<std::string>& inputs) {
  std::vector<TextSource> out;
  std::vector<std::string> given;  // how each source was given, for the message on a repeated one
  for (const std::string& input : inputs) {
    std::error_code ec;
    const fs::file_status st = fs::status(input, ec);
    if (ec || !fs::exists(st)) fail(input, "cannot open input file: no such file or folder");
    if (fs::is_regular_file(st)) {
      out.push_back(make_source(input, fs::path(input).filename().string()));
      given.push_back("as " + input);
      continue;
    }
    if (!fs::is_directory(st)) fail(input, "not a regular file or folder");
    std::vector<fs::path> files;
    // Folders by identity: one reached twice through symbolic links (a loop, which would recurse
    // without end, or two links to one folder, whose files would be read twice) is refused.
    std::set<std::pair<dev_t, ino_t>> folders;
    auto enter = [&](const fs::path& dir) {
      struct stat ds {};
      if (::stat(dir.c_str(), &ds) != 0)
        fail(dir.string(), "cannot read folder: " + std::string(std::strerror(errno)));
      if (!folders.emplace(ds.st_dev, ds.st_ino).second)
        fail(dir.string(),
             "this folder is reached twice through symbolic links (a loop, or two links to one folder)");
    };
    enter(input);
    for (auto it =
             fs::recursive_directory_iterator(input, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const bool is_dir = it->is_directory(ec);
      if (it->path().filename().string().starts_with(".")) {
        if (is_dir) it.disable_recursion_pending();
        continue;
      }
      if (is_dir) enter(it->path());
      if (it->is_regular_file(ec)) files.push_back(it->path());
    }
    if (ec) fail(input, "cannot list folder: " + ec.message());
    std::vector<std::pair<std::string, fs::path>> keyed;
    for (const fs::path& f : files) keyed.emplace_back(fs::relative(f, input).generic_string(), f);
    std::sort(keyed.begin(), keyed.end());
    for (const auto& [key, path] : keyed) {
      out.push_back(make_source(path, key));
      given.push_back("as " + key + " in the input folder " + input);
    }
  }
  // One file reached twice (given twice, as a folder and a file in it, or through a link).
  std::vector<std::string> paths;
  for (const TextSource& s : out) paths.push_back(s.path);
  refuse_repeated_files(paths, "input file", given);
  return out;
}

std::unique_ptr<ByteStream> open_byte_stream(const TextSource& source) {
  switch (source.compression) {
    case Compression::Gzip:
      return std::make_unique<GzipStream>(source.path);
    case Compression::Zstd:
      return std::make_unique<ZstdStream>(source.path);
    case Compression::None:
      break;
  }
  return std::make_unique<PlainStream>(source.path);
}

// ---- documents ----

RawDocumentReader::RawDocumentReader(const TextSource& source, std::string delimiter)
    : source_(source), delimiter_(std::move(delimiter)), stream_(open_byte_stream(source)), buf_(1 << 20) {}

RawDocumentReader::~RawDocumentReader() = default;

bool RawDocumentReader::append_line(std::string& out, bool& had_newline) {
  bool any = false;
  for (;;) {
    if (pos_ == len_) {
      len_ = stream_->read(buf_.data(), buf_.size());
      pos_ = 0;
      if (len_ == 0) {
        had_newline = false;
        if (any) ++line_;
        return any;
      }
    }
    any = true;
    const char* start = buf_.data() + pos_;
    const char* nl = static_cast<const char*>(std::memchr(start, '\n', len_ - pos_));
    if (nl) {
      out.append(start, nl - start);
      pos_ += nl - start + 1;
      offset_ += nl - start + 1;
      had_newline = true;
      ++line_;
      return true;
    }
    out.append(start, len_ - pos_);
    offset_ += len_ - pos_;
    pos_ = len_;
  }
}

bool RawDocumentReader::next(RawDocument& doc) {
  doc.text.clear();
  bool had_newline = false;
  if (source_.format == TextFormat::Jsonl) {
    for (;;) {
      doc.offset = offset_;
      doc.text.clear();
      if (!append_line(doc.text, had_newline)) return false;
      doc.line = line_;
      if (doc.text.find_first_not_of(" \t\r\f\v") != std::string::npos)
        return true;  // blank lines are ignored
    }
  }
  for (;;) {
    doc.offset = offset_;
    doc.line = line_ + 1;
    bool ended = false;
    for (;;) {
      const size_t start = doc.text.size();
      if (!append_line(doc.text, had_newline)) {
        ended = true;
        break;
      }
      const std::string_view line = std::string_view(doc.text).substr(start);
      if (line == delimiter_ || (line.size() == delimiter_.size() + 1 && line.back() == '\r' &&
                                 line.substr(0, delimiter_.size()) == delimiter_)) {
        doc.text.resize(start);
        break;
      }
      if (had_newline) doc.text.push_back('\n');
    }
    // The line break before the delimiter (or the end of the file) is not part of the document.
    if (!doc.text.empty() && doc.text.back() == '\n') {
      doc.text.pop_back();
      if (!doc.text.empty() && doc.text.back() == '\r') doc.text.pop_back();
    }
    if (!doc.text.empty()) return true;
    if (ended) return false;
  }
}

DocStatus document_text(const TextSource& source, const TextReadOptions& options, RawDocument& doc) {
  if (source.format == TextFormat::Txt) return doc.text.empty() ? DocStatus::Empty : DocStatus::Ok;
  using nlohmann::json;
  std::string problem;
  json value;
  try {
    value = json::parse(doc.text);
  } catch (const json::exception& e) {  // a syntax error, or a number out of range (1e400)
    problem = e.what();
    if (!is_valid_utf8(doc.text)) {  // repair ill-formed UTF-8, then try again
      try {
        value = json::parse(replace_invalid_utf8(doc.text));
        problem.clear();
      } catch (const json::exception& e2) {
        problem = e2.what();
      }
    }
    if (!problem.empty()) {
      // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
      if (const size_t p = problem.find("] "); problem.starts_with("[json.") && p != std::string::npos)
        problem = problem.substr(p + 2);
      problem = "not valid JSON: " + problem;
    }
  }
  if (problem.empty()) {
    if (!value.is_object()) {
      problem = "not a JSON object";
    } else if (const auto it = value.find(options.text_field); it == value.end()) {
      problem = "no field \"" + options.text_field + "\"";
    } else if (!it->is_string()) {
      problem = "field \"" + options.text_field + "\" is not a string";
    } else {
      doc.text = std::move(it->get_ref<std::string&>());
      return doc.text.empty() ? DocStatus::Empty : DocStatus::Ok;
    }
  }
  if (options.skip_bad_lines) {
    doc.text.clear();
    return DocStatus::BadLine;
  }
  throw UserError(source.path + ":" + std::to_string(doc.line) + ": " + problem +
                  " (--skip-bad-lines skips such lines)");
}

DocumentReader::DocumentReader(const TextSource& source, const TextReadOptions& options)
    : source_(source), options_(options), raw_(source, options.doc_delimiter) {}

bool DocumentReader::next(RawDocument& doc) {
  while (raw_.next(doc)) {
    const DocStatus s = document_text(source_, options_, doc);
    if (s == DocStatus::Ok) return true;
    if (s == DocStatus::BadLine) ++skipped_;
  }
  return false;
}

}  // namespace kervan
