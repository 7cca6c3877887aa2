#include "syslog.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {

// How long one write may block on a stream receiver that stopped reading: the container's output waits
// meanwhile (Docker's default blocking mode), but not for ever.
constexpr int kSendTimeoutSec = 5;

bool split_host_port(const std::string& hp, std::string& host, int& port) {
  size_t colon = hp.rfind(':');
  if (colon == std::string::npos) return false;
  host = hp.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  port = atoi(hp.c_str() + colon + 1);
  return port > 0 && port < 65536;
}

// Go's time.Stamp: "Jan _2 15:04:05", local time.
std::string stamp_now() {
  time_t t = time(nullptr);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%b %e %H:%M:%S", &tm);
  return buf;
}

// RFC 3339 in local time with its offset ("Z" for UTC); micro adds up to 6 fractional digits, trailing
// zeros dropped, as Go's "2006-01-02T15:04:05.999999Z07:00".
std::string rfc3339_now(bool micro) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  localtime_r(&ts.tv_sec, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (micro) {
    char frac[24];
    snprintf(frac, sizeof frac, "%06ld", ts.tv_nsec / 1000);
    std::string f = frac;
    while (!f.empty() && f.back() == '0') f.pop_back();
    if (!f.empty()) out += "." + f;
  }
  long off = tm.tm_gmtoff;
  if (off == 0) {
    out += "Z";
  } else {
    char z[32];
    snprintf(z, sizeof z, "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600, (labs(off) % 3600) / 60);
    out += z;
  }
  return out;
}

}  // namespace

bool Syslog::open(const std::string& address, unsigned facility, const std::string& tag, const std::string& format) {
  facility_ = facility;
  tag_ = tag;
  format_ = format;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  hostname_ = host;
  if (address.empty()) {
    // The local syslog, as Go's log/syslog finds it.
    for (const char* p : {"/dev/log", "/var/run/syslog", "/var/run/log"}) {
      for (const char* pr : {"unixgram", "unix"}) {
        proto_ = pr;
        addr_ = p;
        if (connect_now()) return true;
      }
    }
    return fail_msg("failed to initialize logging driver: Unix syslog delivery error");
  }
  size_t sep = address.find("://");
  if (sep == std::string::npos) return fail_msg("failed to initialize logging driver: bad syslog address " + address);
  proto_ = address.substr(0, sep);
  addr_ = address.substr(sep + 3);
  if (!connect_now()) {
    std::string what = proto_ == "unixgram" ? "unixgram" : proto_;
    return fail_msg("failed to initialize logging driver: dial " + what + " " + addr_ + ": connect: " +
                    errno_text(errno));
  }
  return true;
}

bool Syslog::connect_now() {
  fd_.reset();
  if (proto_ == "unix" || proto_ == "unixgram") {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (addr_.size() >= sizeof sa.sun_path) {
      errno = ENAMETOOLONG;
      return false;
    }
    memcpy(sa.sun_path, addr_.data(), addr_.size());
    Fd s(socket(AF_UNIX, (proto_ == "unix" ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
    if (!s.ok() || ::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return false;
    fd_ = std::move(s);
  } else if (proto_ == "udp" || proto_ == "tcp") {
    std::string host;
    int port;
    if (!split_host_port(addr_, host, port)) {
      errno = EINVAL;
      return false;
    }
    int type = (proto_ == "udp" ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC;
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    memset(&s6, 0, sizeof s6);
    memset(&s4, 0, sizeof s4);
    Fd s;
    int rc;
    if (inet_pton(AF_INET, host.c_str(), &s4.sin_addr) == 1) {
      s4.sin_family = AF_INET;
      s4.sin_port = htons(static_cast<uint16_t>(port));
      s.reset(socket(AF_INET, type, 0));
      rc = s.ok() ? ::connect(s.get(), reinterpret_cast<sockaddr*>(&s4), sizeof s4) : -1;
    } else if (inet_pton(AF_INET6, host.c_str(), &s6.sin6_addr) == 1) {
      s6.sin6_family = AF_INET6;
      s6.sin6_port = htons(static_cast<uint16_t>(port));
      s.reset(socket(AF_INET6, type, 0));
      rc = s.ok() ? ::connect(s.get(), reinterpret_cast<sockaddr*>(&s6), sizeof s6) : -1;
    } else {
      errno = EINVAL;  // berthd resolves names before it starts the shim
      return false;
    }
    if (rc < 0) return false;
    fd_ = std::move(s);
  } else {
    errno = EPROTONOSUPPORT;
    return false;
  }
  struct timeval tv = {kSendTimeoutSec, 0};
  setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return true;
}

std::string Syslog::format(int pri, const char* data, size_t n) const {
  std::string content(data, n);
  std::string p = "<" + std::to_string(pri) + ">";
  std::string pid = std::to_string(getpid());
  std::string msg;
  if (format_ == "rfc3164") {
    msg = p + stamp_now() + " " + hostname_ + " " + tag_ + "[" + pid + "]: " + content;
  } else if (format_ == "rfc5424" || format_ == "rfc5424micro") {
    // The tag is both APP-NAME and MSGID, as Docker has it (rsyslog's %syslogtag% reads APP-NAME).
    msg = p + "1 " + rfc3339_now(format_ == "rfc5424micro") + " " + hostname_ + " " + tag_ + " " + pid + " " + tag_ +
          " - " + content;
  } else {
    // Docker's default: the local (unix) form, without the hostname.
    msg = p + stamp_now() + " " + tag_ + "[" + pid + "]: " + content;
  }
  if (msg.empty() || msg.back() != '\n') msg += '\n';
  return msg;
}

void Syslog::send(bool is_stderr, const char* data, size_t n) {
  if (n > 0 && data[n - 1] == '\n') n--;
  int pri = static_cast<int>(facility_ << 3) | (is_stderr ? 3 : 6);
  std::string msg = format(pri, data, n);
  for (int attempt = 0; attempt < 2; attempt++) {
    if (!fd_.ok()) {
      if (now_ms() < retry_after_ms_ || !connect_now()) {
        retry_after_ms_ = now_ms() + 1000;
        return;  // lost, as a syslog message to a receiver that is gone is
      }
    }
    ssize_t w;
    do w = ::send(fd_.get(), msg.data(), msg.size(), MSG_NOSIGNAL | (nonblock_ ? MSG_DONTWAIT : 0));
    while (w < 0 && errno == EINTR);
    if (w == static_cast<ssize_t>(msg.size())) return;
    if (w > 0 && (proto_ == "unix" || proto_ == "tcp")) {
      // A stream took part of it: the rest must follow, or the receiver's framing breaks.
      if (write_all(fd_.get(), msg.data() + w, msg.size() - static_cast<size_t>(w))) return;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // a stalled receiver: drop this one
    fd_.reset();  // reconnect once and try again, as Docker's syslog writer does
  }
}
