#include "util.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>
#include <ctime>

namespace {
std::string g_last_error;
}  // namespace

std::string errno_text(int err) {
  std::string s = strerror(err);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

bool fail(const char* what, const std::string& path, int err) {
  g_last_error = what;
  if (!path.empty()) {
    g_last_error += ' ';
    g_last_error += path;
  }
  g_last_error += ": ";
  g_last_error += errno_text(err);
  return false;
}

bool fail_msg(const std::string& msg) {
  g_last_error = msg;
  return false;
}

const std::string& last_error() { return g_last_error; }

bool write_all(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool read_file(const std::string& path, std::string& out) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return fail("open", path);
  out.clear();
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("read", path);
    }
    if (n == 0) return true;
    out.append(buf, static_cast<size_t>(n));
  }
}

bool write_file(const std::string& path, const std::string& data) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.ok()) return fail("open", path);
  if (!write_all(fd.get(), data.data(), data.size())) return fail("write", path);
  return true;
}

bool write_file_atomic(const std::string& path, const std::string& data, bool durable) {
  std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.ok()) return fail("open", tmp);
    if (!write_all(fd.get(), data.data(), data.size())) return fail("write", tmp);
    if (durable && ::fsync(fd.get()) < 0) return fail("fsync", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) return fail("rename", tmp);
  if (!durable) return true;
  // The rename itself is only durable once the directory is synced.
  std::string dir = ".";
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.ok()) ::fsync(dfd.get());
  return true;
}

namespace {

// Appends v as exactly `width` decimal digits.
void append_digits(std::string& out, long v, int width) {
  char buf[16];
  for (int i = width - 1; i >= 0; i--) {
    buf[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(buf, static_cast<size_t>(width));
}

}  // namespace

// Formatted by hand rather than with gmtime_r/snprintf: it runs for every log line, and the small
// loop keeps the supervising shim's working set (and so its RSS) small.
std::string rfc3339_nano_now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long days = static_cast<long>(ts.tv_sec / 86400);
  long secs = static_cast<long>(ts.tv_sec % 86400);
  // Civil date from days since 1970-01-01, counting in 400-year eras that start on March 1st so that
  // the leap day falls at the end of the year.
  long z = days + 719468;
  long era = (z >= 0 ? z : z - 146096) / 146097;
  long doe = z - era * 146097;                                   // day of era [0, 146096]
  long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // year of era [0, 399]
  long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);            // day of year, from March 1st
  long mp = (5 * doy + 2) / 153;                                 // month, March = 0
  long day = doy - (153 * mp + 2) / 5 + 1;
  long month = mp < 10 ? mp + 3 : mp - 9;
  long year = yoe + era * 400 + (month <= 2 ? 1 : 0);

  std::string out;
  out.reserve(30);
  append_digits(out, year, 4);
  out += '-';
  append_digits(out, month, 2);
  out += '-';
  append_digits(out, day, 2);
  out += 'T';
  append_digits(out, secs / 3600, 2);
  out += ':';
  append_digits(out, secs / 60 % 60, 2);
  out += ':';
  append_digits(out, secs % 60, 2);
  out += '.';
  append_digits(out, ts.tv_nsec, 9);
  out += 'Z';
  return out;
}

std::string go_rfc3339_nano(std::string t) {
  // Go's RFC3339Nano drops the fraction's trailing zeros, and the '.' of a zero fraction.
  auto dot = t.find('.');
  auto z = t.size() - 1;
  if (dot == std::string::npos || t[z] != 'Z') return t;
  auto end = z;
  while (end > dot + 1 && t[end - 1] == '0') end--;
  if (end == dot + 1) end = dot;
  return t.substr(0, end) + "Z";
}

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return fail("fcntl O_NONBLOCK", "");
  return true;
}

bool set_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) return fail("fcntl FD_CLOEXEC", "");
  return true;
}

namespace {

// Length of the valid UTF-8 sequence starting at s (at most n bytes available), or 0 when the bytes
// there are not valid UTF-8 (including overlong forms, surrogates and a sequence cut short by n).
size_t utf8_seq_len(const unsigned char* s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong 3-byte forms
    if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // no overlong 4-byte forms
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (n < len) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return len;
}

}  // namespace

void json_quote_append(std::string& out, const char* str, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  const unsigned char* s = reinterpret_cast<const unsigned char*>(str);
  out.reserve(out.size() + n + 2);
  out += '"';
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c >= 0x80) {
      size_t len = utf8_seq_len(s + i, n - i);
      if (len == 0) {
        out += "\\ufffd";
        i++;
        continue;
      }
      // U+2028 and U+2029 are valid JSON but break JavaScript parsers that treat them as newlines.
      if (len == 3 && c == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
        out += s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
      } else {
        out.append(str + i, len);
      }
      i += len;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '<':
      case '>':
      case '&':
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    i++;
  }
  out += '"';
}

size_t utf8_safe_cut(const char* str, size_t n) {
  const unsigned char* s = reinterpret_cast<const unsigned char*>(str);
  // Find where the last sequence starts: at most 3 continuation bytes back.
  size_t back = 0;
  while (back < 3 && back < n && (s[n - 1 - back] & 0xC0) == 0x80) back++;
  if (back == n) return n;
  size_t start = n - 1 - back;
  unsigned char lead = s[start];
  size_t want = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 ? 2 : 1;
  if (lead < 0xC2 || lead > 0xF4) return n;  // ASCII or not a lead byte: nothing to protect
  return back + 1 < want ? start : n;
}
