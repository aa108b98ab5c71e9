#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kervan {

// The text inputs of `kervan prepare`: .txt and .jsonl files, each optionally compressed (.gz:
// zlib, .zst: zstd), read as streams so no file is ever held whole in memory.
//
//   .txt    documents are separated by a line that is exactly the delimiter ("<|endoftext|>" by
//           default; a trailing \r is ignored). The line break before a delimiter line (or before
//           the end of the file) is not part of the document; a file without delimiter lines is
//           one document. Empty documents are dropped.
//   .jsonl  one JSON object per line; the document is its string field `text_field`. Blank lines
//           are ignored; a line that is not JSON, not an object, or lacks a string field is a bad
//           line (an error "FILE:LINE: ...", or skipped and counted with skip_bad_lines). A line
//           with an empty text is no document. Ill-formed UTF-8 inside a line is repaired to U+FFFD
//           before parsing (the GPT-2 tokenizer repairs .txt documents the same way).
enum class TextFormat { Txt, Jsonl };
enum class Compression { None, Gzip, Zstd };

struct TextSource {
  std::string path;   // as found: the input argument, or the argument joined with the path below it
  std::string key;    // stable name for the validation hash: the path relative to the folder argument
                      // it was found in, or the file name for a file argument
  uint64_t bytes = 0;       // size on disk
  int64_t mtime_ns = 0;     // modification time (a changed input invalidates resumed work)
  TextFormat format = TextFormat::Txt;
  Compression compression = Compression::None;
};

// Expands the inputs: files are taken as they are, folders are walked recursively in sorted
// order (hidden files and folders, whose names begin with '.', are ignored). An input that does
// not exist, or a file whose name does not end in .txt/.jsonl (optionally + .gz/.zst), is a
// UserError naming it.
std::vector<TextSource> discover_text_sources(const std::vector<std::string>& inputs);
// The format and compression of a file name, or false when the name is not an input type.
bool classify_text_file(std::string_view name, TextFormat& format, Compression& compression);

// Decompressed bytes of one file. A damaged or truncated compressed stream is a UserError naming
// the file.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Up to n bytes into buf; 0 at the end of the data.
  virtual size_t read(char* buf, size_t n) = 0;
  // Bytes of the file (compressed, as on disk) consumed so far.
  uint64_t raw_bytes() const { return raw_bytes_; }

 protected:
  uint64_t raw_bytes_ = 0;
};
std::unique_ptr<ByteStream> open_byte_stream(const TextSource& source);

// One document as cut from the stream: for .txt the document text, for .jsonl the line (the text
// is extracted later, by document_text(), so that JSON parsing can run on worker threads).
struct RawDocument {
  std::string text;
  uint64_t offset = 0;  // of its first byte in the decompressed file
  uint64_t line = 0;    // 1-based number of its first line
};

class RawDocumentReader {
 public:
  RawDocumentReader(const TextSource& source, std::string delimiter);
  ~RawDocumentReader();
  RawDocumentReader(const RawDocumentReader&) = delete;
  RawDocumentReader& operator=(const RawDocumentReader&) = delete;
  // The next document; false at the end of the file.
  bool next(RawDocument& doc);
  uint64_t raw_bytes() const { return stream_->raw_bytes(); }

 private:
  // Appends the next line (without its line break) to out; false at the end of the data.
  bool append_line(std::string& out, bool& had_newline);

  TextSource source_;
  std::string delimiter_;
  std::unique_ptr<ByteStream> stream_;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  uint64_t offset_ = 0, line_ = 0;
};

struct TextReadOptions {
  std::string doc_delimiter = "<|endoftext|>";
  std::string text_field = "text";
  bool skip_bad_lines = false;
};

enum class DocStatus { Ok, Empty, BadLine };
// Turns a raw document into its text, in place: .txt documents are their text already; for .jsonl
// the field is extracted. A bad line is a UserError "PATH:LINE: ..." unless skip_bad_lines, when it
// returns BadLine. Empty: a .jsonl line whose text is empty (no document).
DocStatus document_text(const TextSource& source, const TextReadOptions& options, RawDocument& doc);

// RawDocumentReader + document_text: the documents of one file, in order.
class DocumentReader {
 public:
  DocumentReader(const TextSource& source, const TextReadOptions& options);
  bool next(RawDocument& doc);
  uint64_t skipped_lines() const { return skipped_; }
  uint64_t raw_bytes() const { return raw_.raw_bytes(); }

 private:
  TextSource source_;
  TextReadOptions options_;
  RawDocumentReader raw_;
  uint64_t skipped_ = 0;
};

}  // namespace kervan
