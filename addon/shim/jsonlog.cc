#include "jsonlog.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>

bool JsonLog::open(const std::string& path, uint64_t max_size, unsigned max_file) {
  path_ = path;
  max_size_ = max_size;
  max_file_ = max_file < 1 ? 1 : max_file;
  fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (!fd_.ok()) return fail("open log", path);
  struct stat st;
  size_ = fstat(fd_.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return true;
}

void JsonLog::feed(Stream stream, const char* data, size_t n) {
  if (!fd_.ok()) return;  // not opened: an exec's output is not logged
  std::string& p = pending_[stream];
  p.append(data, n);
  size_t off = 0;
  for (;;) {
    size_t left = p.size() - off;
    size_t nl = p.find('\n', off);
    if (nl != std::string::npos && nl - off < kMaxEntry) {
      add_entry(stream, p.data() + off, nl - off + 1);
      off = nl + 1;
    } else if (left > kMaxEntry) {
      size_t cut = utf8_safe_cut(p.data() + off, kMaxEntry);
      if (cut == 0) cut = kMaxEntry;
      add_entry(stream, p.data() + off, cut);
      off += cut;
    } else {
      break;
    }
  }
  p.erase(0, off);
  write_batch(batch_.size());
  // A long burst can leave a large buffer behind; give it back so an idle shim stays small.
  if (p.capacity() > 2 * kMaxEntry && p.size() < kMaxEntry) std::string(p).swap(p);
}

void JsonLog::flush(Stream stream) {
  std::string& p = pending_[stream];
  if (!p.empty()) add_entry(stream, p.data(), p.size());
  std::string().swap(p);
  write_batch(batch_.size());
}

void JsonLog::add_entry(Stream stream, const char* data, size_t n) {
  if (!fd_.ok()) return;
  size_t start = batch_.size();
  batch_ += "{\"log\":";
  json_quote_append(batch_, data, n);
  batch_ += stream == kStdout ? ",\"stream\":\"stdout\",\"time\":\"" : ",\"stream\":\"stderr\",\"time\":\"";
  batch_ += rfc3339_nano_now();
  batch_ += "\"}\n";
  size_t len = batch_.size() - start;
  if (max_size_ > 0 && size_ > 0 && size_ + len > max_size_) {
    // The entries before this one still go to the file being rotated away.
    write_batch(start);
    rotate();
  }
  size_ += len;
}

void JsonLog::write_batch(size_t n) {
  if (n == 0) return;
  // A failed write (disk full) loses these entries but not the container: the shim keeps running and
  // tries again with the next ones.
  if (fd_.ok()) write_all(fd_.get(), batch_.data(), n);
  batch_.erase(0, n);
  // A burst of escaped output can leave a large buffer behind; give it back so an idle shim stays small.
  if (batch_.capacity() > 4 * kMaxEntry && batch_.size() < kMaxEntry) std::string(batch_).swap(batch_);
}

void JsonLog::rotate() {
  if (max_file_ <= 1) {
    if (ftruncate(fd_.get(), 0) == 0) size_ = 0;
    return;
  }
  // FILE.(N-2) -> FILE.(N-1), ..., FILE.1 -> FILE.2, then FILE -> FILE.1 and a fresh FILE.
  for (unsigned i = max_file_ - 1; i >= 2; i--) {
    std::string from = path_ + "." + std::to_string(i - 1);
    std::string to = path_ + "." + std::to_string(i);
    ::rename(from.c_str(), to.c_str());  // a missing older file is normal
  }
  ::rename(path_.c_str(), (path_ + ".1").c_str());
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  size_ = 0;
}
