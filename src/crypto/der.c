/* SPDX-License-Identifier: BSD-2-Clause */
/* DER element headers (mef/der.h): short form below 128, else 0x80|count and big-endian bytes. */
#include "mef/der.h"

size_t
der_hdr_len(size_t n)
{
	return n < 0x80 ? 2 : n < 0x100 ? 3 : n < 0x10000 ? 4 : n < 0x1000000 ? 5 : 6;
}

size_t
der_hdr(uint8_t *out, uint8_t tag, size_t n)
{
	size_t h = der_hdr_len(n);

	out[0] = tag;
	if (h == 2) {
		out[1] = (uint8_t)n;
		return 2;
	}
	out[1] = (uint8_t)(0x80 | (h - 2));
	for (size_t i = 0; i < h - 2; i++)
		out[h - 1 - i] = (uint8_t)(n >> (8 * i));
	return h;
}
