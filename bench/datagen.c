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

void
wx_bench_fill_region(unsigned char *p, size_t n, uint64_t *s)
{
	size_t hdr = n < 8192 ? n : 8192;
	/* Offsets (3-byte sector, 1-byte count), then timestamps: small
	 * numbers and zeros, as in a real header. */
	for (size_t i = 0; i + 4 <= hdr; i += 4) {
		uint64_t r = wx_bench_xorshift(s);
		p[i] = 0;
		p[i + 1] = (unsigned char)(r >> 8) & 0x0f;
		p[i + 2] = (unsigned char)(r >> 16);
		p[i + 3] = (unsigned char)(1 + (r >> 24) % 8);
	}
	for (size_t i = hdr - hdr % 4; i < hdr; i++)
		p[i] = 0;
	size_t off = hdr;
	while (off < n) {
		uint64_t r = wx_bench_xorshift(s);
		size_t payload = 8192 + (size_t)(r % (56 * 1024));
		size_t sectors = (payload + 5 + 4095) / 4096;
		size_t chunk = sectors * 4096;
		if (chunk > n - off)
			chunk = n - off;
		if (payload + 5 > chunk)
			payload = chunk > 5 ? chunk - 5 : 0;
		/* length (big-endian), compression type 2 (zlib), payload, zero padding */
		unsigned char head[5] = { (unsigned char)((payload + 1) >> 24), (unsigned char)((payload + 1) >> 16),
			(unsigned char)((payload + 1) >> 8), (unsigned char)(payload + 1), 2 };
		size_t h = chunk < 5 ? chunk : 5;
		memcpy(p + off, head, h);
		wx_bench_fill_random(p + off + h, payload, s);
		memset(p + off + h + payload, 0, chunk - h - payload);
		off += chunk;
	}
}

void
wx_bench_fill_jar(unsigned char *p, size_t n, uint64_t *s)
{
	static const char *pkgs[] = { "net/minecraft/server/", "org/bukkit/craftbukkit/",
		"com/google/common/collect/", "io/papermc/paper/", "org/spongepowered/asm/" };
	size_t off = 0, central = n / 50;	/* the last 2 % is the central directory */
	while (off + 64 < n - central) {
		uint64_t r = wx_bench_xorshift(s);
		char name[96];
		int len = snprintf(name, sizeof name, "%sC%05u.class",
		    pkgs[(r >> 4) % WX_ARRAY_LEN(pkgs)], (unsigned)(r >> 16) % 100000);
		unsigned char lh[30] = { 'P', 'K', 3, 4, 20, 0, 0, 0, 8, 0 };
		for (int k = 10; k < 26; k++)
			lh[k] = (unsigned char)(r >> (k * 2));
		lh[26] = (unsigned char)len;
		lh[27] = 0;
		lh[28] = lh[29] = 0;
		size_t room = n - central - off;
		size_t take = sizeof lh < room ? sizeof lh : room;
		memcpy(p + off, lh, take);
		off += take;
		take = (size_t)len < n - central - off ? (size_t)len : n - central - off;
		memcpy(p + off, name, take);
		off += take;
		size_t body = 200 + (size_t)((r >> 32) % 12000);
		if (body > n - central - off)
			body = n - central - off;
		if ((r >> 40) % 16 == 0)
			wx_bench_fill_text(p + off, body, s);	/* a stored text entry */
		else
			wx_bench_fill_random(p + off, body, s);
		off += body;
	}
	/* Central directory: fixed-layout records with names, fairly repetitive. */
	while (off < n) {
		uint64_t r = wx_bench_xorshift(s);
		char rec[128];
		int len = snprintf(rec, sizeof rec, "PK\x01\x02\x14%c%c%c%c%sC%05u.class",
		    (int)(r & 0x7f) | 1, (int)((r >> 8) & 0x7f) | 1, (int)((r >> 16) & 0x7f) | 1,
		    (int)((r >> 24) & 0x7f) | 1, pkgs[(r >> 32) % WX_ARRAY_LEN(pkgs)],
		    (unsigned)(r >> 40) % 100000);
		for (int k = 0; k < len && off < n; k++)
			p[off++] = (unsigned char)rec[k];
	}
}
