#include "autoconf.h"

#include "compress.h"

#include <stdio.h>

struct wx_compressor *
wx_compressor_new(enum wx_codec codec, int level, int threads, wx_sink_fn sink, void *sink_ctx,
    char *err, size_t errsize)
{
	(void)threads;
	struct wx_compressor *c = NULL;
	switch (codec) {
	case WX_CODEC_GZIP:
		c = wx_gzip_new(level, err, errsize);
		break;
	default:
		snprintf(err, errsize, "unknown compression codec %d", (int)codec);
		return NULL;
	}
	if (c == NULL)
		return NULL;
	c->sink = sink;
	c->sink_ctx = sink_ctx;
	return c;
}

int
wx_compressor_write(struct wx_compressor *c, const void *buf, size_t len)
{
	if (c->error[0] != '\0')
		return -1;
	if (len == 0)
		return 0;
	if (c->ops->write(c, buf, len) < 0)
		return -1;
	c->bytes_in += len;
	return 0;
}

int
wx_compressor_finish(struct wx_compressor *c)
{
	if (c->error[0] != '\0')
		return -1;
	return c->ops->finish(c);
}

const char *
wx_compressor_error(const struct wx_compressor *c)
{
	return c->error[0] ? c->error : "no error";
}

void
wx_compressor_free(struct wx_compressor *c)
{
	if (c != NULL)
		c->ops->destroy(c);
}

const char *
wx_codec_name(enum wx_codec codec)
{
	return codec == WX_CODEC_GZIP ? "gzip" : "unknown";
}
