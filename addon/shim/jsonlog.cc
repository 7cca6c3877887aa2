#include "jsonlog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>

namespace {

// FILE.N -> FILE.N.gz, then FILE.N is removed: the same names as Docker's rotation with compress=true.
// A reader that finds both names takes the plain one, which is complete; the .gz is complete once the
// plain one is gone.
void gzip_file(const std::string& src) {
  std::string dst = src + ".gz";
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.ok()) return;
  // A new inode, never the old FILE.1.gz rewritten in place (max-file 2 keeps no FILE.2.gz to move it to):
  // a reader holding the old one goes on reading what it held.
  unlink(dst.c_str());
  int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (out < 0) return;
  gzFile gz = gzdopen(out, "wb");
  if (!gz) {
    ::close(out);
    unlink(dst.c_str());
    return;
  }
  std::unique_ptr<char[]> buf(new char[64 * 1024]);
  bool ok = true;
  for (;;) {
    ssize_t n = read(in.get(), buf.get(), 64 * 1024);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ok = false;
    if (n <= 0) break;
    if (gzwrite(gz, buf.get(), static_cast<unsigned>(n)) != static_cast<int>(n)) {
      ok = false;
      break;
    }
  }
  if (gzclose(gz) != Z_OK) ok = false;
  // On failure (disk full) the plain file stays: nothing is lost, it is only bigger.
  unlink(ok ? src.c_str() : dst.c_str());
}

}  // namespace

JsonLog::~JsonLog() { wait_compression(); }

void JsonLog::wait_compression() {
  if (compressor_.joinable()) compressor_.join();
}

bool JsonLog::open(const std::string& path, uint64_t max_size, unsigned max_file, bool compress, const std::string& attrs) {
  path_ = path;
  max_size_ = max_size;
  max_file_ = max_file < 1 ? 1 : max_file;
  compress_ = compress && max_file_ > 1 && max_size_ > 0;
  attrs_ = attrs.empty() ? "" : ",\"attrs\":" + attrs;
  fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (!fd_.ok()) return fail("open log", path);
  struct stat st;
  size_ = fstat(fd_.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  if (compress_) {
    // A shim that died while compressing (host crash, kill -9) left FILE.1 behind, maybe beside a torn
    // FILE.1.gz: finish the job, or the next rotation would overwrite FILE.1.
    std::string first = path_ + ".1";
    if (access(first.c_str(), F_OK) == 0) compressor_ = std::thread([first] { gzip_file(first); });
  }
  return true;
}

void JsonLog::feed(Stream stream, const char* data, size_t n) {
  if (!enabled()) return;  // an exec's output, and the none driver, are not logged
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
  if (!p.empty() && enabled()) add_entry(stream, p.data(), p.size());
  std::string().swap(p);
  write_batch(batch_.size());
}

void JsonLog::add_entry(Stream stream, const char* data, size_t n) {
  if (syslog_) syslog_->send(stream == kStderr, data, n);
  if (!fd_.ok()) return;
  size_t start = batch_.size();
  batch_ += "{\"log\":";
  json_quote_append(batch_, data, n);
  batch_ += stream == kStdout ? ",\"stream\":\"stdout\"" : ",\"stream\":\"stderr\"";
  batch_ += attrs_;  // Docker's field order: log, stream, attrs, time
  batch_ += ",\"time\":\"";
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
  // The previous FILE.1 must be FILE.1.gz before it moves on.
  wait_compression();
  const std::string ext = compress_ ? ".gz" : "";
  // FILE.(N-2) -> FILE.(N-1), ..., FILE.1 -> FILE.2, then FILE -> FILE.1 and a fresh FILE.
  for (unsigned i = max_file_ - 1; i >= 2; i--) {
    std::string from = path_ + "." + std::to_string(i - 1) + ext;
    std::string to = path_ + "." + std::to_string(i) + ext;
    ::rename(from.c_str(), to.c_str());  // a missing older file is normal
  }
  std::string first = path_ + ".1";
  ::rename(path_.c_str(), first.c_str());
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  size_ = 0;
  if (compress_) {
    // In a thread of its own: gzip of a 20 MB file takes most of a second, during which the container's
    // output would otherwise wait.
    compressor_ = std::thread([first] { gzip_file(first); });
  }
}
