/*
 * libFuzzer target: the streaming multipart parser on arbitrary bodies.
 * The first byte picks how many bytes each read returns (0: the whole
 * request), so boundaries fall at every position; the boundary is fixed.
 */
#include "autoconf.h"

#include "multipart.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
	const uint8_t *data;
	size_t len, off, chunk;
};

static ssize_t
src_read(void *ctx, void *buf, size_t n)
{
	struct src *s = ctx;
	size_t left = s->len - s->off;
	if (n > left)
		n = left;
	if (s->chunk && n > s->chunk)
		n = s->chunk;
	memcpy(buf, s->data + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 20)
		return 0;
	struct src s = { data + 1, size - 1, 0, data[0] };
	struct wx_multipart *mp = wx_mp_new("fuzz-boundary", 16 * 1024, src_read, &s);
	struct wx_mp_part part;
	int parts = 0;
	while (wx_mp_next_part(mp, &part) == 1) {
		char buf[100];
		ssize_t n;
		if (parts++ % 2) {
			const void *p;
			while ((n = wx_mp_read_ptr(mp, &p, 77)) > 0)
				;
		} else {
			while ((n = wx_mp_read(mp, buf, sizeof buf)) > 0)
				;
		}
		if (n < 0)
			break;
	}
	(void)wx_mp_error(mp);
	wx_mp_free(mp);
	return 0;
}
