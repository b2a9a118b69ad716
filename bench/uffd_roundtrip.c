/*
 * uffd_roundtrip: what a bare userfaultfd round trip costs on this machine,
 * the floor under every miss Remora serves.
 *
 *   uffd_roundtrip [--pages N] [--rounds R] [--pin none|same|cross] [--json]
 *
 * Cases (each round runs every case once, interleaved, on fresh memory):
 *   kernel_first_touch   no userfaultfd: the kernel's own anonymous fault
 *   copy_thread          missing fault served by a handler thread of the
 *                        same process with UFFDIO_COPY (a 4 KiB page)
 *   zero_thread          ... with UFFDIO_ZEROPAGE
 *   copy_process         served by a separate handler process holding the
 *                        uffd (received over a unix socket), like a
 *                        processor manager: UFFDIO_COPY
 *   zero_process         ... with UFFDIO_ZEROPAGE
 * The faulting thread writes one word to each page of a fresh region and
 * times each write: the fault, the hand-off to the handler, its ioctl and the
 * wake-up. The handler does a blocking read() per fault and nothing else.
 *
 * --pin same: faulting thread and handler on CPU 0; cross: handler on CPU 1;
 * none: wherever the kernel puts them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

enum mode { MODE_COPY = 1, MODE_ZERO = 2 };

struct control { /* main -> handler process, one per round */
  uint64_t mode;
  uint64_t stop_addr; /* serving this page ends the round */
};

static const char* pin = "none";
static int uffd = -1;
static char page_src[PAGE] __attribute__((aligned(4096)));

static void die(const char* what) {
  fprintf(stderr, "uffd_roundtrip: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}
static int fault_cpu(void) { return strcmp(pin, "none") == 0 ? -1 : 0; }
static int handler_cpu(void) {
  if (strcmp(pin, "same") == 0) return 0;
  if (strcmp(pin, "cross") == 0) return 1;
  return -1;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int open_uffd(void) {
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
  if (fd < 0 && errno == EINVAL) fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
  if (fd < 0) die("userfaultfd");
  struct uffdio_api api = {.api = UFFD_API, .features = 0};
  if (ioctl(fd, UFFDIO_API, &api) != 0) die("UFFDIO_API");
  return fd;
}

/* Serves missing faults on `fd` until the page at stop_addr was served. */
static void serve(int fd, int mode, uint64_t stop_addr) {
  for (;;) {
    struct uffd_msg msg;
    ssize_t n = read(fd, &msg, sizeof msg);
    if (n < 0 && errno == EINTR) continue;
    if (n != sizeof msg) die("read uffd");
    if (msg.event != UFFD_EVENT_PAGEFAULT) continue;
    uint64_t addr = msg.arg.pagefault.address & ~(PAGE - 1);
    if (mode == MODE_COPY) {
      struct uffdio_copy c = {.dst = addr, .src = (uint64_t)(uintptr_t)page_src, .len = PAGE};
      if (ioctl(fd, UFFDIO_COPY, &c) != 0 && errno != EEXIST) die("UFFDIO_COPY");
    } else {
      struct uffdio_zeropage z = {.range = {.start = addr, .len = PAGE}};
      if (ioctl(fd, UFFDIO_ZEROPAGE, &z) != 0 && errno != EEXIST) die("UFFDIO_ZEROPAGE");
    }
    if (addr == stop_addr) return;
  }
}

struct thread_arg {
  int mode;
  uint64_t stop_addr;
};
static void* handler_thread(void* p) {
  struct thread_arg* a = p;
  pin_to(handler_cpu());
  serve(uffd, a->mode, a->stop_addr);
  return NULL;
}

/* The handler process: receives the uffd once, then one control per round. */
static void handler_process(int sock) {
  pin_to(handler_cpu());
  char cbuf[CMSG_SPACE(sizeof(int))];
  char b;
  struct iovec iov = {.iov_base = &b, .iov_len = 1};
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  if (recvmsg(sock, &mh, 0) != 1) die("recvmsg uffd");
  struct cmsghdr* cm = CMSG_FIRSTHDR(&mh);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) die("no uffd received");
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  struct control ctl;
  while (read(sock, &ctl, sizeof ctl) == (ssize_t)sizeof ctl) {
    char ready = 1;
    if (write(sock, &ready, 1) != 1) die("write ready");
    serve(fd, (int)ctl.mode, ctl.stop_addr);
  }
  _exit(0);
}

struct samples {
  const char* name;
  uint64_t* v;
  size_t n, cap;
};

static void add(struct samples* s, uint64_t x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 65536;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v) die("realloc");
  }
  s->v[s->n++] = x;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return (x > y) - (x < y);
}

static uint64_t pct(const struct samples* s, double p) {
  size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
  return s->v[i];
}

/* One measured sweep: `pages` pages plus a stop page, registered with the
 * uffd unless `kind` is the kernel baseline. */
static void sweep(struct samples* s, size_t pages, int use_uffd, int mode, int handler_sock) {
  size_t len = (pages + 1) * PAGE;
  char* base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) die("mmap");
  pthread_t th;
  struct thread_arg ta = {.mode = mode, .stop_addr = (uint64_t)(uintptr_t)(base + pages * PAGE)};
  if (use_uffd) {
    struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)base, .len = len},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) die("UFFDIO_REGISTER");
    if (handler_sock >= 0) {
      struct control ctl = {.mode = (uint64_t)mode, .stop_addr = ta.stop_addr};
      char ready;
      if (write(handler_sock, &ctl, sizeof ctl) != (ssize_t)sizeof ctl) die("write control");
      if (read(handler_sock, &ready, 1) != 1) die("read ready");
    } else if (pthread_create(&th, NULL, handler_thread, &ta) != 0) {
      die("pthread_create");
    }
  }
  for (size_t i = 0; i < pages; i++) {
    volatile char* p = base + i * PAGE;
    uint64_t t0 = now_ns();
    *p = 1;
    uint64_t t1 = now_ns();
    add(s, t1 - t0);
  }
  volatile char* stop = base + pages * PAGE;
  *stop = 1;
  if (use_uffd && handler_sock < 0) pthread_join(th, NULL);
  if (use_uffd) {
    struct uffdio_range r = {.start = (uint64_t)(uintptr_t)base, .len = len};
    if (ioctl(uffd, UFFDIO_UNREGISTER, &r) != 0) die("UFFDIO_UNREGISTER");
  }
  munmap(base, len);
}

int main(int argc, char** argv) {
  size_t pages = 4096;
  int rounds = 5, json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--pages") && i + 1 < argc)
      pages = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--pin") && i + 1 < argc)
      pin = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else {
      fprintf(stderr,
              "usage: uffd_roundtrip [--pages N] [--rounds R] [--pin none|same|cross] [--json]\n");
      return 2;
    }
  }
  if (pages == 0 || rounds <= 0 ||
      (strcmp(pin, "none") && strcmp(pin, "same") && strcmp(pin, "cross"))) {
    fprintf(stderr, "uffd_roundtrip: bad arguments\n");
    return 2;
  }
  memset(page_src, 0x5a, sizeof page_src);
  uffd = open_uffd();

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  pid_t helper = fork();
  if (helper < 0) die("fork");
  if (helper == 0) {
    close(sv[0]);
    close(uffd);
    handler_process(sv[1]);
  }
  close(sv[1]);
  {
    char b = 0;
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = &b, .iov_len = 1};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &uffd, sizeof uffd);
    if (sendmsg(sv[0], &mh, 0) != 1) die("sendmsg uffd");
  }
  pin_to(fault_cpu());

  struct samples cases[5] = {{.name = "kernel_first_touch"},
                             {.name = "copy_thread"},
                             {.name = "zero_thread"},
                             {.name = "copy_process"},
                             {.name = "zero_process"}};
  for (int r = 0; r < rounds; r++) {
    sweep(&cases[0], pages, 0, 0, -1);
    sweep(&cases[1], pages, 1, MODE_COPY, -1);
    sweep(&cases[2], pages, 1, MODE_ZERO, -1);
    sweep(&cases[3], pages, 1, MODE_COPY, sv[0]);
    sweep(&cases[4], pages, 1, MODE_ZERO, sv[0]);
  }
  close(sv[0]);
  waitpid(helper, NULL, 0);

  if (json)
    printf("{\"pages\": %zu, \"rounds\": %d, \"pin\": \"%s\", \"cases\": {", pages, rounds, pin);
  else
    printf("%-20s %10s %10s %10s %10s  (ns per fault, %zu pages x %d rounds, pin %s)\n", "case",
           "p50", "p90", "p99", "mean", pages, rounds, pin);
  for (int c = 0; c < 5; c++) {
    struct samples* s = &cases[c];
    double sum = 0;
    for (size_t i = 0; i < s->n; i++) sum += (double)s->v[i];
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    double mean = sum / (double)s->n;
    if (json)
      printf("%s\"%s\": {\"count\": %zu, \"p50\": %lu, \"p90\": %lu, \"p99\": %lu, \"mean\": %.1f}",
             c ? ", " : "", s->name, s->n, (unsigned long)pct(s, 50), (unsigned long)pct(s, 90),
             (unsigned long)pct(s, 99), mean);
    else
      printf("%-20s %10lu %10lu %10lu %10.0f\n", s->name, (unsigned long)pct(s, 50),
             (unsigned long)pct(s, 90), (unsigned long)pct(s, 99), mean);
    free(s->v);
  }
  if (json) printf("}}\n");
  return 0;
}
