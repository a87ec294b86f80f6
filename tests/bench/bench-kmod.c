// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench-kmod — gmem.ko against the memfd it stands in for, in one boot
 * (tests/bench/run-kmod-bench runs it in a guest with the module loaded).
 *
 * Each figure is measured on a gmem.ko region and on a memfd of the same
 * size, alternately, ROUNDS times; the medians and their ratio are printed
 * (a ratio above 1 means gmem.ko is faster, for throughputs; for latencies
 * the ratio is gmem.ko's time over the primitive's):
 *
 *   fault      first touch of every page of SIZE through a MAP_SHARED
 *              read-write mapping (one byte written per page): a view of a
 *              fresh region against a fresh memfd
 *   allocate   fallocate(0, SIZE) of a fresh region's handle (Allocate)
 *              against a fresh memfd's
 *   convert    SIZE populated and mapped: GMEM_REGION_SET_ATTRIBUTES
 *              private, then shared again (content kept). A memfd has no
 *              such operation: the times are printed beside the first
 *              touch of the same SIZE measured in the same round
 *   revoke     GMEM_REGION_REVOKE_VIEW of a view with every page of SIZE
 *              mapped, against munmap() of a memfd mapping with every page
 *              mapped (both tear down the same page tables)
 *
 * Output: "bench-kmod: NAME gmem X unit, memfd Y unit, ratio R" lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "uapi/linux/gmem.h"

#define PAGE 4096UL
#define MiB (1024UL * 1024)
#define ROUNDS 5

static size_t size = 256 * MiB;

static void die(const char *what) {
        fprintf(stderr, "bench-kmod: %s: %s\n", what, strerror(errno));
        exit(1);
}

static double now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, (size_t) n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int dev;

/* A fresh region of size, its handle. */
static int region_new(void) {
        struct gmem_create_region c = { .size = size };
        int h = ioctl(dev, GMEM_CREATE_REGION, &c);

        if (h < 0)
                die("GMEM_CREATE_REGION");
        return h;
}

static void region_end(int h) {
        struct gmem_destroy d = { 0 };

        if (ioctl(h, GMEM_REGION_DESTROY, &d) < 0)
                die("GMEM_REGION_DESTROY");
        close(h);
}

static int view_new(int h) {
        struct gmem_new_view v = { .flags = GMEM_VIEW_READ | GMEM_VIEW_WRITE, .length = size };
        int fd = ioctl(h, GMEM_REGION_NEW_VIEW, &v);

        if (fd < 0)
                die("GMEM_REGION_NEW_VIEW");
        return fd;
}

static int memfd_new(void) {
        int fd = memfd_create("bench", MFD_CLOEXEC);

        if (fd < 0 || ftruncate(fd, (off_t) size) < 0)
                die("memfd");
        return fd;
}

static volatile unsigned char *map(int fd) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

        if (p == MAP_FAILED)
                die("mmap");
        return p;
}

/* Seconds to write one byte to every page. */
static double touch(volatile unsigned char *p) {
        double t = now();

        for (size_t o = 0; o < size; o += PAGE)
                p[o] = 1;
        return now() - t;
}

static void report(const char *name, const char *unit, double gmem, double memfd, double ratio) {
        printf("bench-kmod: %-9s gmem %10.1f %s, memfd %10.1f %s, ratio %.2f\n", name, gmem, unit, memfd, unit,
               ratio);
        fflush(stdout);
}

static void bench_fault(void) {
        double g[ROUNDS], m[ROUNDS];

        for (int i = 0; i < ROUNDS; i++) {
                int h = region_new(), v = view_new(h), fd = memfd_new();
                volatile unsigned char *pg = map(v), *pm = map(fd);

                g[i] = touch(pg);
                m[i] = touch(pm);
                munmap((void *) pg, size);
                munmap((void *) pm, size);
                close(v), close(fd);
                region_end(h);
        }
        double gm = median(g, ROUNDS), mm = median(m, ROUNDS);
        report("fault", "MiB/s", size / MiB / gm, size / MiB / mm, mm / gm);
}

static void bench_allocate(void) {
        double g[ROUNDS], m[ROUNDS];

        for (int i = 0; i < ROUNDS; i++) {
                int h = region_new(), fd = memfd_new();
                double t = now();

                if (fallocate(h, FALLOC_FL_KEEP_SIZE, 0, (off_t) size) < 0)
                        die("fallocate (gmem)");
                g[i] = now() - t;
                t = now();
                if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t) size) < 0)
                        die("fallocate (memfd)");
                m[i] = now() - t;
                close(fd);
                region_end(h);
        }
        double gm = median(g, ROUNDS), mm = median(m, ROUNDS);
        report("allocate", "MiB/s", size / MiB / gm, size / MiB / mm, mm / gm);
}

static void bench_convert(void) {
        double priv[ROUNDS], shared[ROUNDS], fault[ROUNDS];

        for (int i = 0; i < ROUNDS; i++) {
                int h = region_new(), v = view_new(h);
                volatile unsigned char *p = map(v);
                struct gmem_attributes a = { .length = size, .attributes = GMEM_ATTR_PRIVATE };
                double t;

                fault[i] = touch(p);
                t = now();
                if (ioctl(h, GMEM_REGION_SET_ATTRIBUTES, &a) < 0)
                        die("GMEM_REGION_SET_ATTRIBUTES private");
                priv[i] = now() - t;
                a.attributes = 0;
                t = now();
                if (ioctl(h, GMEM_REGION_SET_ATTRIBUTES, &a) < 0)
                        die("GMEM_REGION_SET_ATTRIBUTES shared");
                shared[i] = now() - t;
                if (p[size - PAGE] != 1)
                        die("content lost by the conversion");
                munmap((void *) p, size);
                close(v);
                region_end(h);
        }
        double pm = median(priv, ROUNDS), sm = median(shared, ROUNDS), fm = median(fault, ROUNDS);
        printf("bench-kmod: convert   private %.1f ms (%.0f MiB/s), shared %.1f ms (%.0f MiB/s); "
               "first touch of the same %zu MiB %.1f ms\n", pm * 1e3, size / MiB / pm, sm * 1e3, size / MiB / sm,
               size / MiB, fm * 1e3);
}

static void bench_revoke(void) {
        double g[ROUNDS], m[ROUNDS];

        for (int i = 0; i < ROUNDS; i++) {
                int h = region_new(), v = view_new(h), fd = memfd_new();
                volatile unsigned char *pg = map(v), *pm = map(fd);
                struct gmem_view_op op = { .flags = GMEM_VIEW_OP_FD, .view = (uint64_t) v };
                double t;

                touch(pg);
                touch(pm);
                t = now();
                if (ioctl(h, GMEM_REGION_REVOKE_VIEW, &op) < 0)
                        die("GMEM_REGION_REVOKE_VIEW");
                g[i] = now() - t;
                t = now();
                munmap((void *) pm, size);
                m[i] = now() - t;
                munmap((void *) pg, size);
                close(v), close(fd);
                region_end(h);
        }
        double gm = median(g, ROUNDS), mm = median(m, ROUNDS);
        report("revoke", "ms", gm * 1e3, mm * 1e3, gm / mm);
}

int main(int argc, char **argv) {
        if (argc > 1)
                size = strtoul(argv[1], NULL, 0) * MiB;
        dev = open("/dev/gmem", O_RDWR | O_CLOEXEC);
        if (dev < 0)
                die("/dev/gmem");
        printf("bench-kmod: %zu MiB, %d rounds, medians\n", size / MiB, ROUNDS);
        bench_fault();
        bench_allocate();
        bench_convert();
        bench_revoke();
        return 0;
}
