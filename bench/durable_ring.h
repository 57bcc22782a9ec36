/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The record ring of the durable baselines (bare_coap and bare_mhd with
 * BARE_DURABLE=FILE, docs/performance.md section 9): FILE is 4 MiB written
 * in full at open, so that commits overwrite, as SQLite's WAL does after a
 * checkpoint. One commit is one pwrite of n 128-byte records and one
 * fdatasync. Header-only: each baseline is one C file.
 */
#ifndef BENCH_DURABLE_RING_H
#define BENCH_DURABLE_RING_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DUR_RECORD 128
#define DUR_RING (4u << 20)
#define DUR_MAX 4096 /* records per commit, at most; the records are stand-ins */

struct dur_ring {
	int fd;
	off_t off;
};

/* 0, or -1 with errno. */
static inline int
dur_ring_open(struct dur_ring *r, const char *path)
{
	static uint8_t zero[65536];

	r->off = 0;
	r->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (r->fd < 0)
		return -1;
	for (unsigned o = 0; o < DUR_RING; o += sizeof(zero))
		if (write(r->fd, zero, sizeof(zero)) != (ssize_t)sizeof(zero))
			return -1;
	return fsync(r->fd);
}

/* Writes n records and syncs them; a failure ends the baseline (its figures would be wrong). */
static inline void
dur_ring_commit(struct dur_ring *r, size_t n)
{
	static uint8_t rec[DUR_MAX * DUR_RECORD];

	n = n > DUR_MAX ? DUR_MAX : n;
	memset(rec, (int)r->off, n * DUR_RECORD);
	if (r->off + (off_t)(n * DUR_RECORD) > (off_t)DUR_RING)
		r->off = 0;
	if (pwrite(r->fd, rec, n * DUR_RECORD, r->off) != (ssize_t)(n * DUR_RECORD) ||
	    fdatasync(r->fd) != 0) {
		perror("durable baseline: write");
		exit(1);
	}
	r->off += (off_t)(n * DUR_RECORD);
}

#endif
