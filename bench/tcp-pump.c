/* A TCP throughput probe for bench/network.ts, built static (gcc -static) so that it runs in a busybox
 * container as well as on the host. busybox nc moves about 1 KiB per system call, which measures nc;
 * this moves 256 KiB.
 *   tcp-pump recv PORT            accept one connection, read to EOF, print the byte count
 *   tcp-pump send IPV4 PORT MIB   send MIB MiB of zeros, half-close, wait for the peer to close,
 *                                 print the elapsed nanoseconds (connect to close)
 * Each then prints, after a space, the CPU microseconds it used (user + system, getrusage): the kernel's
 * work on the path (TCP, veth, bridge, netfilter; softirqs included, this kernel has no
 * CONFIG_IRQ_TIME_ACCOUNTING) is mostly charged to the two ends, so the sum tells what a byte costs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static char buf[CHUNK];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static int do_recv(int port) {
  int one = 1;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(s, 1) < 0) die("listen");
  int c = accept(s, NULL, NULL);
  if (c < 0) die("accept");
  long long total = 0;
  for (;;) {
    ssize_t n = read(c, buf, sizeof buf);
    if (n < 0) die("read");
    if (n == 0) break;
    total += n;
  }
  close(c);
  printf("%lld %lld\n", total, cpu_us());
  return 0;
}

static int do_send(const char *ip, int port, long long mib) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    fprintf(stderr, "not an IPv4 address: %s\n", ip);
    return 2;
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  long long t0 = now_ns();
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  long long left = mib * 1024 * 1024;
  while (left > 0) {
    ssize_t n = write(s, buf, left < CHUNK ? (size_t)left : CHUNK);
    if (n < 0) die("write");
    left -= n;
  }
  shutdown(s, SHUT_WR);
  while (read(s, buf, sizeof buf) > 0) {
  }
  long long ns = now_ns() - t0;
  printf("%lld %lld\n", ns, cpu_us());
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "recv") == 0) return do_recv(atoi(argv[2]));
  if (argc == 5 && strcmp(argv[1], "send") == 0) return do_send(argv[2], atoi(argv[3]), atoll(argv[4]));
  fprintf(stderr, "usage: tcp-pump recv PORT | tcp-pump send IPV4 PORT MIB\n");
  return 2;
}
