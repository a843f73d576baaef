/*
 * The deterministic data both benchmarks generate (see datagen.h).
 */
#include "autoconf.h"

#include "datagen.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

uint64_t
wx_bench_xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

void
wx_bench_fill_random(unsigned char *p, size_t n, uint64_t *s)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v = wx_bench_xorshift(s);
		memcpy(p + i, &v, 8);
	}
	for (; i < n; i++)
		p[i] = (unsigned char)wx_bench_xorshift(s);
}

void
wx_bench_fill_text(unsigned char *p, size_t n, uint64_t *s)
{
	static const char *words[] = { "server", "world", "player", "chunk", "region", "level",
		"config", "true", "false", "spawn", "minecraft:stone", "entity", "block", "items",
		"name", "position", "[INFO]", "[Server thread/INFO]:", "joined the game",
		"left the game", "enabled", "version", "plugin", "loading", "saving", "done", "tick",
		"ms", "UUID of" };
	size_t i = 0;
	while (i < n) {
		uint64_t r = wx_bench_xorshift(s);
		char tmp[48];
		int len;
		switch (r % 8) {
		case 0:
			len = snprintf(tmp, sizeof tmp, "%u", (unsigned)(r >> 40) % 100000);
			break;
		case 1:
			len = snprintf(tmp, sizeof tmp, "%s\n", (r >> 20) % 3 ? "" : "  ");
			break;
		case 2:
			len = snprintf(tmp, sizeof tmp, "%s: ", words[(r >> 8) % WX_ARRAY_LEN(words)]);
			break;
		default:
			len = snprintf(tmp, sizeof tmp, "%s ", words[(r >> 8) % WX_ARRAY_LEN(words)]);
			break;
		}
		for (int k = 0; k < len && i < n; k++)
			p[i++] = (unsigned char)tmp[k];
	}
}
