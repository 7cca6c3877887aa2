// The container's log (PROTOCOL.md, "Logging"): entries of one line each, cut as Docker's log copier cuts
// them, go to a file of JSON lines {"log":"...","stream":"stdout","time":"<RFC 3339, 9 digits>"} with
// size-based rotation and optional gzip of rotated files (json-file, local, and the syslog driver's
// cache), and/or to syslog.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "syslog.h"
#include "util.h"

class JsonLog {
 public:
  enum Stream { kStdout = 0, kStderr = 1 };

  JsonLog() = default;
  JsonLog(JsonLog&&) = default;
  JsonLog& operator=(JsonLog&&) = delete;
  // Waits for a compression still running, so that no rotated file is left half made.
  ~JsonLog();

  // Opens (appends to) path. max_size 0 disables rotation; max_file is how many files are kept in all;
  // compress gzips each rotated file (FILE.1 -> FILE.1.gz) in the background. attrs, when not empty, is a
  // JSON object written as the "attrs" of every entry.
  bool open(const std::string& path, uint64_t max_size, unsigned max_file, bool compress, const std::string& attrs);
  // Sends every entry to syslog too (or only there, when no file is open).
  void set_syslog(std::unique_ptr<Syslog> s) { syslog_ = std::move(s); }

  // Output read from a stream: every complete line becomes an entry; a line longer than kMaxEntry is
  // cut into entries of that size (never inside a UTF-8 character); the rest waits for more output.
  void feed(Stream stream, const char* data, size_t n);
  // End of a stream: whatever is left becomes its own entry.
  void flush(Stream stream);

  // Longest "log" value of one entry, as Docker's log copier buffers lines.
  static constexpr size_t kMaxEntry = 16 * 1024;

 private:
  bool enabled() const { return fd_.ok() || syslog_ != nullptr; }
  // Entries are built in batch_ and written with one write(2) per feed()/flush(), not one per line;
  // nothing is fsynced (as Docker's json-file writer).
  void add_entry(Stream stream, const char* data, size_t n);
  void write_batch(size_t n);
  void rotate();
  void wait_compression();

  Fd fd_;
  std::string path_;
  uint64_t size_ = 0;
  uint64_t max_size_ = 0;
  unsigned max_file_ = 1;
  bool compress_ = false;
  std::string attrs_;       // ,"attrs":{...} or empty
  std::thread compressor_;  // gzips the newest rotated file while the container keeps logging
  std::unique_ptr<Syslog> syslog_;
  std::string pending_[2];  // the unfinished line of each stream
  std::string batch_;       // entries not yet written
};
