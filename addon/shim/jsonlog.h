// The container's json-file log (PROTOCOL.md, "--log"): one JSON object per line,
// {"log":"...","stream":"stdout","time":"<RFC 3339, 9 digits>"}, with size-based rotation.
#pragma once

#include <cstdint>
#include <string>

#include "util.h"

class JsonLog {
 public:
  enum Stream { kStdout = 0, kStderr = 1 };

  // Opens (appends to) path. max_size 0 disables rotation; max_file is how many files are kept in all.
  bool open(const std::string& path, uint64_t max_size, unsigned max_file);

  // Output read from a stream: every complete line becomes an entry; a line longer than kMaxEntry is
  // cut into entries of that size (never inside a UTF-8 character); the rest waits for more output.
  void feed(Stream stream, const char* data, size_t n);
  // End of a stream: whatever is left becomes its own entry.
  void flush(Stream stream);

  // Longest "log" value of one entry, as Docker's log copier buffers lines.
  static constexpr size_t kMaxEntry = 16 * 1024;

 private:
  // Entries are built in batch_ and written with one write(2) per feed()/flush(), not one per line;
  // nothing is fsynced (as Docker's json-file writer).
  void add_entry(Stream stream, const char* data, size_t n);
  void write_batch(size_t n);
  void rotate();

  Fd fd_;
  std::string path_;
  uint64_t size_ = 0;
  uint64_t max_size_ = 0;
  unsigned max_file_ = 1;
  std::string pending_[2];  // the unfinished line of each stream
  std::string batch_;       // entries not yet written
};
