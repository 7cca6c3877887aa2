// HTTP/1.1 keep-alive load on a unix socket, for bench/scale.js: CONNS connections, each sending its next
// GET as soon as the previous answer is complete, cycling through the paths given, for SECS seconds. One
// thread and epoll, so that the client costs the 2-core machine as little as possible (a node client was
// the bottleneck). Prints "requests seconds p50_ms p99_ms errors" on one line.
//   http-load SOCKET CONNS SECS PATH...
// Answers are read by Content-Length or chunked encoding (berthd sends both); anything else is an error.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  char *buf;
  size_t len, cap;
  double sent;
  int next;
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

// Length of a complete response at the start of buf, 0 if incomplete, -1 if malformed.
static long complete(const char *buf, size_t len) {
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t head = end - buf + 4;
  const char *cl = memmem(buf, head, "\r\nContent-Length:", 17);
  if (!cl) cl = memmem(buf, head, "\r\ncontent-length:", 17);
  if (cl) {
    long n = strtol(cl + 17, NULL, 10);
    return len >= head + n ? (long)(head + n) : 0;
  }
  if (memmem(buf, head, "chunked", 7)) {
    size_t p = head;
    for (;;) {
      const char *nl = memmem(buf + p, len - p, "\r\n", 2);
      if (!nl) return 0;
      long n = strtol(buf + p, NULL, 16);
      p = nl - buf + 2;
      if (len < p + n + 2) return 0;
      p += n + 2;
      if (n == 0) return p;
    }
  }
  if (strncmp(buf + 9, "204", 3) == 0 || strncmp(buf + 9, "304", 3) == 0) return head;
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s SOCKET CONNS SECS PATH...\n", argv[0]);
    return 2;
  }
  int nconn = atoi(argv[2]), npaths = argc - 4;
  double secs = atof(argv[3]);
  char **paths = argv + 4;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
  int ep = epoll_create1(0);
  struct conn *cs = calloc(nconn, sizeof *cs);
  size_t nlat = 0, caplat = 1 << 20;
  double *lat = malloc(caplat * sizeof *lat);
  long errors = 0;
  char req[4096];
  for (int i = 0; i < nconn; i++) {
    struct conn *c = &cs[i];
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); return 1; }
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    c->next = i % npaths;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  }
  double t0 = now(), until = t0 + secs;
  for (int i = 0; i < nconn; i++) {
    struct conn *c = &cs[i];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: api\r\n\r\n", paths[c->next]);
    c->sent = now();
    if (write(c->fd, req, n) != n) { perror("write"); return 1; }
  }
  int open = nconn;
  struct epoll_event evs[64];
  while (open > 0) {
    int k = epoll_wait(ep, evs, 64, 1000);
    for (int e = 0; e < k; e++) {
      struct conn *c = evs[e].data.ptr;
      if (c->len == c->cap) { c->cap *= 2; c->buf = realloc(c->buf, c->cap); }
      ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
      if (r <= 0) { errors++; close(c->fd); open--; continue; }
      c->len += r;
      long done = complete(c->buf, c->len);
      if (done == 0) continue;
      if (done < 0 || strncmp(c->buf + 9, "200", 3) != 0) errors++;
      double t = now();
      if (nlat == caplat) { caplat *= 2; lat = realloc(lat, caplat * sizeof *lat); }
      lat[nlat++] = (t - c->sent) * 1000;
      c->len = done > 0 && (size_t)done < c->len ? (memmove(c->buf, c->buf + done, c->len - done), c->len - done) : 0;
      if (t >= until) { close(c->fd); open--; continue; }
      c->next = (c->next + 1) % npaths;
      int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: api\r\n\r\n", paths[c->next]);
      c->sent = t;
      if (write(c->fd, req, n) != n) { errors++; close(c->fd); open--; }
    }
  }
  double el = now() - t0;
  qsort(lat, nlat, sizeof *lat, cmpd);
  printf("%zu %.3f %.3f %.3f %ld\n", nlat, el, nlat ? lat[nlat / 2] : 0, nlat ? lat[(size_t)(nlat * 0.99)] : 0, errors);
  return 0;
}
