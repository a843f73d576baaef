/*
 * A live pre-sync body (docs/presync.md §7), in the extractor process.
 * The source sends the server as rounds, each four parts in this order:
 *
 *   presync            "round=<k> final=<0|1> checksum=texts" (a source of
 *                      the first version leaves out " checksum=texts")
 *   presync_ops        the op list (wx_ps_delta_format), uncompressed
 *   presync_data       the data of its file and patch ops, in op order,
 *                      compressed as the archive part is (gzip or zstd)
 *   presync_manifest   the tree as that round left it (wx_ps_manifest_format)
 *
 * Each round is applied to the staging directory (wx_ps_apply, with its
 * journal in the parts directory) and then verified against its manifest,
 * hashing every file the round wrote (wx_ps_verify); the final round must
 * verify with every SHA-256 known.  After the final round come the usual
 * backups, install log and checksum_archive, so finish.c's checksum rule
 * holds as for an archive: with checksum=texts the SHA-256 of every
 * presync_ops and presync_manifest part's bytes as received (the
 * manifests' file hashes, which the rounds are verified against, stand
 * for the data: hashing the data as well would be a second pass over it
 * that proves nothing more; the transport checks every body byte); without
 * it, of every presync_data part's bytes.  A body that mixes an archive part with pre-sync
 * parts, skips a round, sends parts out of order or ends before its final
 * round installs nothing.
 */
#include "autoconf.h"

#include "destination.h"
#include "config.h"
#include "log.h"
#include "presync_apply.h"
#include "presync_text.h"
#include "presync_verify.h"
#include "util.h"
#include "writebehind.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Largest op list and manifest text taken (one round's, held in memory). */
#define PS_TEXT_MAX (256LL << 20)
#define PS_HEADER_MAX 64

enum ps_next { PS_HEADER, PS_OPS, PS_DATA, PS_MANIFEST };

struct rx_presync {
	int64_t round;          /* the round being read (0 before the first) */
	bool final;             /* ... is the final one */
	bool done;              /* the final round applied and verified */
	enum ps_next next;
	struct wx_ps_delta d;   /* the round's op list, parsed */
	struct wx_ps_written written;  /* what its file ops wrote (hashed as written) */
	int workfd;             /* <parts>/presync: the apply's journal and slots */
	int sum_texts;          /* -1 before round 1; 1: checksum=texts, 0: of the data */
	EVP_MD_CTX *sha;        /* the checksum's bytes (sum_texts), as received */
	int64_t data_bytes;     /* delta data applied, all rounds */
};

bool
rx_presync_part_name(const char *name)
{
	return strcmp(name, "presync") == 0 || strcmp(name, "presync_ops") == 0 ||
	    strcmp(name, "presync_data") == 0 || strcmp(name, "presync_manifest") == 0;
}

void
rx_presync_free(struct receiver *rx)
{
	struct rx_presync *ps = rx->presync;
	if (ps == NULL)
		return;
	wx_ps_delta_free(&ps->d);
	free(ps->written.sha);
	free(ps->written.valid);
	if (ps->workfd >= 0)
		close(ps->workfd);
	EVP_MD_CTX_free(ps->sha);
	free(ps);
	rx->presync = NULL;
}

/* The first pre-sync part: the work directory and the data hash.  0 or -1. */
static int
presync_begin(struct receiver *rx)
{
	if (rx->have_archive)
		return rx_fail(rx, 400, "The upload has both an archive part and pre-sync parts; "
		    "nothing was installed.");
	if (rx->parts_fd < 0)
		return rx_fail(rx, 500, "This node takes a pre-sync only in its confined extractor "
		    "(no parts directory); nothing was installed.");
	struct rx_presync *ps = xcalloc(1, sizeof *ps);
	ps->workfd = -1;
	rx->presync = ps;
	ps->sum_texts = -1;
	if (mkdirat(rx->parts_fd, "presync", 0700) < 0 && errno != EEXIST) {
		rx_detail(rx, "mkdir presync: %s", strerror(errno));
		return rx_fail(rx, 500, "This node cannot make the pre-sync work directory.");
	}
	ps->workfd = openat(rx->parts_fd, "presync", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	ps->sha = EVP_MD_CTX_new();
	if (ps->workfd < 0) {
		rx_detail(rx, "open presync: %s", strerror(errno));
		return rx_fail(rx, 500, "This node cannot open the pre-sync work directory.");
	}
	if (ps->sha == NULL || EVP_DigestInit_ex(ps->sha, EVP_sha256(), NULL) != 1)
		return rx_fail(rx, 500, "SHA-256 is not available on this node.");
	rx->have_archive = true;  /* the delta data stand for the archive (checksum rule) */
	return 0;
}

/* The whole current part into a new buffer of at most max bytes; NULL after rx_fail. */
static char *
read_part(struct receiver *rx, const char *what, int64_t max, size_t *len)
{
	struct wx_ps_buf b = { NULL, 0, 0 };
	for (;;) {
		const void *p;
		ssize_t n = wx_mp_read_ptr(rx->mp, &p, SIZE_MAX);
		if (n < 0) {
			rx_mp_failed(rx);
			break;
		}
		if (n == 0) {
			*len = b.len;
			if (b.p == NULL)
				b.p = xstrdup("");
			return b.p;
		}
		if ((int64_t)(b.len + (size_t)n) > max) {
			rx_fail(rx, 413, "The pre-sync %s of round %" PRId64 " is larger than %lld "
			    "MiB; nothing was installed.", what, rx->presync->round,
			    (long long)(max >> 20));
			break;
		}
		wx_ps_buf_add(&b, p, (size_t)n);
		if (rx_cancel_check(rx, false))
			break;
	}
	free(b.p);
	return NULL;
}

/* Adds a text part to the checksum when it covers the texts.  0 or -1. */
static int
sum_text(struct receiver *rx, struct rx_presync *ps, const char *text, size_t len)
{
	if (ps->sum_texts == 1 && EVP_DigestUpdate(ps->sha, text, len) != 1)
		return rx_fail(rx, 500, "SHA-256 failed on this node.");
	return 0;
}

/* "round=<k> final=<0|1>[ checksum=texts]", the next round in order, the
 * checksum named as in round 1.  0 or -1. */
static int
header_part(struct receiver *rx, struct rx_presync *ps)
{
	if (ps->next != PS_HEADER || ps->done)
		return rx_fail(rx, 400, "The pre-sync parts are out of order (a round header "
		    "after %s); nothing was installed.", ps->done ? "the final round" :
		    "an unfinished round");
	size_t len;
	char *text = read_part(rx, "round header", PS_HEADER_MAX, &len);
	if (text == NULL)
		return -1;
	/* "round=" digits " final=" 0|1, then " checksum=texts" or nothing */
	static const char texts[] = " checksum=texts";
	size_t tl = sizeof texts - 1;
	int sum_texts = len > tl && memcmp(text + len - tl, texts, tl) == 0;
	size_t hl = sum_texts ? len - tl : len;
	int64_t round = -1, final = -1;
	const char *sp = memchr(text, ' ', hl);
	if (hl > 6 && memcmp(text, "round=", 6) == 0 && sp != NULL &&
	    (size_t)(text + hl - sp) == 8 && memcmp(sp, " final=", 7) == 0 &&
	    wx_ps_token_i64(text + 6, (size_t)(sp - text - 6), 1, INT64_MAX, &round) == 0)
		(void)wx_ps_token_i64(sp + 7, 1, 0, 1, &final);
	int rc = 0;
	if (round != ps->round + 1 || final < 0) {
		rc = rx_fail(rx, 400, "The pre-sync round header is not \"round=%" PRId64
		    " final=0|1 checksum=texts\"; nothing was installed.", ps->round + 1);
	} else if (ps->sum_texts >= 0 && sum_texts != ps->sum_texts) {
		rc = rx_fail(rx, 400, "Pre-sync round %" PRId64 " names a different checksum from "
		    "round 1 (checksum=texts); nothing was installed.", round);
	} else {
		ps->round = round;
		ps->final = final == 1;
		ps->sum_texts = sum_texts;
		ps->next = PS_OPS;
	}
	free(text);
	return rc;
}

static int
ops_part(struct receiver *rx, struct rx_presync *ps)
{
	if (ps->next != PS_OPS)
		return rx_fail(rx, 400, "The pre-sync parts are out of order (an op list where it "
		    "does not belong); nothing was installed.");
	size_t len;
	char *text = read_part(rx, "op list", PS_TEXT_MAX, &len);
	if (text == NULL)
		return -1;
	if (sum_text(rx, ps, text, len) < 0) {
		free(text);
		return -1;
	}
	char err[512];
	wx_ps_delta_free(&ps->d);
	int rc = wx_ps_delta_parse(text, len, &ps->d, err, sizeof err);
	free(text);
	if (rc < 0) {
		rx_detail(rx, "round %" PRId64 " op list: %s", ps->round, err);
		return rx_fail(rx, 400, "The pre-sync op list of round %" PRId64 " is not valid: "
		    "%s; nothing was installed.", ps->round, err);
	}
	ps->next = PS_DATA;
	return 0;
}

/* a + b for sizes from the sender, at most INT64_MAX */
static int64_t
add_sat(int64_t a, int64_t b)
{
	return b > INT64_MAX - a ? INT64_MAX : a + b;
}

/*
 * Bytes the round adds to the staged tree at most: each file op's size,
 * and what a patch adds beyond the file's present size.  Replaced files
 * are not subtracted: the manifest's total resets the count after the
 * round (manifest_part).
 */
static int64_t
round_growth(struct receiver *rx, const struct wx_ps_delta *d)
{
	int64_t grow = 0;
	for (size_t i = 0; i < d->n; i++) {
		const struct wx_ps_op *op = &d->op[i];
		int64_t add = 0;
		if (op->kind == WX_PS_OP_FILE) {
			add = op->size;
		} else if (op->kind == WX_PS_OP_PATCH) {
			struct stat sb;
			int64_t have = fstatat(rx->staging_fd, op->path, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : 0;
			add = op->size > have ? op->size - have : 0;
		}
		grow = add_sat(grow, add);
	}
	return grow;
}

/* The data decoder: the part's bytes (hashed) through gzip or zstd. */
struct ps_in {
	struct receiver *rx;
	struct rx_presync *ps;
	struct rx_gunzip gz;
	bool decided, zstd;
	ZSTD_DStream *zd;
	size_t zret;                    /* the last ZSTD_decompressStream result (0: frame done) */
	ZSTD_inBuffer zin;              /* gunzip's pass-through bytes not yet decoded */
	unsigned char *zout;
	size_t zcap;
	const unsigned char *have;      /* decoded bytes not yet handed out */
	size_t havelen;
	char why[200];                  /* what is wrong with the data, "" when the input failed */
};

static ssize_t
pull_data(void *ctx, const void **buf)
{
	struct ps_in *in = ctx;
	ssize_t n = wx_mp_read_ptr(in->rx->mp, buf, SIZE_MAX);
	if (n < 0)
		return rx_mp_failed(in->rx);
	if (n > 0 && in->ps->sum_texts == 0 && EVP_DigestUpdate(in->ps->sha, *buf, (size_t)n) != 1)
		return rx_fail(in->rx, 500, "SHA-256 failed on this node.");
	if (n > 0)
		in->rx->archive_bytes += (uint64_t)n;
	return n;
}

/* More decoded bytes into in->have: 1, 0 at the end of the data, -1. */
static int
decode_more(struct ps_in *in)
{
	for (;;) {
		if (in->zstd && in->zin.pos < in->zin.size) {
			ZSTD_outBuffer out = { in->zout, in->zcap, 0 };
			in->zret = ZSTD_decompressStream(in->zd, &out, &in->zin);
			if (ZSTD_isError(in->zret)) {
				snprintf(in->why, sizeof in->why, "zstd: %s", ZSTD_getErrorName(in->zret));
				return -1;
			}
			if (out.pos > 0) {
				in->have = in->zout;
				in->havelen = out.pos;
				return 1;
			}
			continue;
		}
		const void *p;
		ssize_t n = rx_gunzip_read(&in->gz, &p);
		if (n < 0) {
			snprintf(in->why, sizeof in->why, "%s", in->gz.error);
			return -1;
		}
		if (n == 0) {
			if (in->zstd && in->zret != 0) {
				/* the frame may still hold output without new input */
				ZSTD_outBuffer out = { in->zout, in->zcap, 0 };
				ZSTD_inBuffer none = { NULL, 0, 0 };
				in->zret = ZSTD_decompressStream(in->zd, &out, &none);
				if (!ZSTD_isError(in->zret) && out.pos > 0) {
					in->have = in->zout;
					in->havelen = out.pos;
					return 1;
				}
				snprintf(in->why, sizeof in->why, "the zstd stream is cut short");
				return -1;
			}
			return 0;
		}
		if (!in->decided) {
			in->decided = true;
			const unsigned char *b = p;
			if (in->gz.mode == RX_GZ_PASS) {
				if (n < 4 || b[0] != 0x28 || b[1] != 0xb5 || b[2] != 0x2f || b[3] != 0xfd) {
					snprintf(in->why, sizeof in->why, "it is neither gzip nor zstd");
					return -1;
				}
				in->zstd = true;
				in->zd = ZSTD_createDStream();
				in->zcap = ZSTD_DStreamOutSize();
				in->zout = xmalloc(in->zcap);
				if (in->zd == NULL || ZSTD_isError(ZSTD_initDStream(in->zd))) {
					snprintf(in->why, sizeof in->why, "zstd: no decoder");
					return -1;
				}
			}
		}
		if (!in->zstd) {
			in->have = p;
			in->havelen = (size_t)n;
			return 1;
		}
		in->zin = (ZSTD_inBuffer){ p, (size_t)n, 0 };
	}
}

/* The apply's writes to write-behind (system.transfers.write_behind), as the
 * archive's extraction does: the round's data reaches the disk while it is
 * applied, at the extractor's I/O priority, instead of in one burst. */
static void
wb_begin(void *ctx, int fd)
{
	rx_wb_file_fd(ctx, fd);
}

static void
wb_wrote(void *ctx, int64_t off, int64_t len)
{
	rx_wb_wrote(ctx, off, len);
}

static void
wb_end(void *ctx)
{
	rx_wb_file_done(ctx);
}

/* wx_ps_apply's read: exactly n decoded bytes.  0 or -1. */
static int
read_exact(void *ctx, void *buf, size_t n)
{
	struct ps_in *in = ctx;
	unsigned char *out = buf;
	while (n > 0) {
		if (in->havelen == 0) {
			int r = decode_more(in);
			if (r <= 0) {
				if (r == 0)
					snprintf(in->why, sizeof in->why, "it ends before the data its op "
					    "list names");
				return -1;
			}
		}
		size_t k = in->havelen < n ? in->havelen : n;
		memcpy(out, in->have, k);
		in->have += k;
		in->havelen -= k;
		out += k;
		n -= k;
		if (in->rx->in_sandbox)
			rx_sandbox_progress(in->rx, false);
	}
	return 0;
}

static int
data_part(struct receiver *rx, struct rx_presync *ps)
{
	if (ps->next != PS_DATA)
		return rx_fail(rx, 400, "The pre-sync parts are out of order (data without its op "
		    "list); nothing was installed.");
	int64_t grow = round_growth(rx, &ps->d);
	if (grow > 0 && rx_charge(rx, grow, "pre-sync round") < 0)
		return -1;
	struct ps_in in = { .rx = rx, .ps = ps, .zret = 1 };
	rx_gunzip_init(&in.gz, pull_data, &in);
	char err[1024] = "";
	int64_t t0 = wx_mono_ms();
	/* Not durable phase by phase: a new assembler starts again from an
	 * empty staging directory (assemble.c), and the install syncs. */
	free(ps->written.sha);
	free(ps->written.valid);
	ps->written.sha = xmalloc((ps->d.n ? ps->d.n : 1) * sizeof *ps->written.sha);
	ps->written.valid = xcalloc(ps->d.n ? ps->d.n : 1, sizeof *ps->written.valid);
	struct rx_writebehind wb;
	rx_wb_init(&wb, rx->cfg->transfers.write_behind, rx->cfg->transfers.write_behind_flush,
	    rx->staging_fd);
	struct wx_ps_write_watch watch = { wb_begin, wb_wrote, wb_end, &wb };
	int rc = wx_ps_apply_ex(rx->staging_fd, ps->workfd, ps->round, &ps->d, read_exact, &in,
	    false, &ps->written, &watch, err, sizeof err);
	rx_wb_end(&wb, rc == 0);
	if (rc == 0) {
		/* Nothing may follow the data the op list names. */
		int r = in.havelen > 0 ? 1 : decode_more(&in);
		if (r > 0) {
			snprintf(in.why, sizeof in.why, "it holds more than its op list names");
			rc = -1;
		} else if (r < 0) {
			rc = -1;
		}
	}
	if (rc < 0 && rx->status == 0) {
		if (in.why[0] != '\0') {
			rx_detail(rx, "round %" PRId64 " data: %s", ps->round, in.why);
			rx_fail(rx, 422, "The pre-sync data of round %" PRId64 " is damaged (%s); "
			    "nothing was installed.", ps->round, in.why);
		} else {
			rx_detail(rx, "round %" PRId64 " apply: %s", ps->round, err);
			rx_fail(rx, 422, "Round %" PRId64 " of the pre-sync could not be applied: %s; "
			    "nothing was installed.", ps->round, err);
		}
	}
	rx_gunzip_free(&in.gz);
	ZSTD_freeDStream(in.zd);
	free(in.zout);
	if (rc < 0)
		return -1;
	int64_t data = wx_ps_delta_data_bytes(&ps->d);
	wx_info("pre-sync round %" PRId64 ": %zu ops, %" PRId64 " data bytes applied in %lld ms",
	    ps->round, ps->d.n, data, (long long)(wx_mono_ms() - t0));
	ps->data_bytes += data;
	rx->rec.bytes_sent += data;
	ps->next = PS_MANIFEST;
	return 0;
}

static int
ino_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Regular file bytes of m, each inode once (what the staged tree holds).
 * Linked files are counted by sorting their inodes: the manifest comes
 * from the sender, and may list millions of links. */
static int64_t
manifest_bytes(const struct wx_ps_manifest *m)
{
	int64_t total = 0;
	size_t nlinked = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].type == WX_PS_FILE && m->e[i].nlink > 1)
			nlinked++;
	uint64_t *inos = xmalloc((nlinked ? nlinked : 1) * 2 * sizeof *inos);
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct wx_ps_entry *e = &m->e[i];
		if (e->type != WX_PS_FILE)
			continue;
		if (e->nlink > 1) {
			inos[2 * k] = e->ino;
			inos[2 * k + 1] = (uint64_t)e->size;
			k++;
		} else {
			total = add_sat(total, e->size);
		}
	}
	qsort(inos, k, 2 * sizeof *inos, ino_cmp);
	for (size_t j = 0; j < k; j++)
		if (j == 0 || inos[2 * j] != inos[2 * (j - 1)])
			total = add_sat(total, (int64_t)inos[2 * j + 1]);
	free(inos);
	return total;
}

static int
manifest_part(struct receiver *rx, struct rx_presync *ps)
{
	if (ps->next != PS_MANIFEST)
		return rx_fail(rx, 400, "The pre-sync parts are out of order (a manifest before "
		    "its round's data); nothing was installed.");
	size_t len;
	char *text = read_part(rx, "manifest", PS_TEXT_MAX, &len);
	if (text == NULL)
		return -1;
	if (sum_text(rx, ps, text, len) < 0) {
		free(text);
		return -1;
	}
	struct wx_ps_manifest m;
	char err[1024];
	int rc = wx_ps_manifest_parse(text, len, WX_PS_MAX_ENTRIES, &m, err, sizeof err);
	free(text);
	if (rc < 0) {
		rx_detail(rx, "round %" PRId64 " manifest: %s", ps->round, err);
		return rx_fail(rx, 400, "The pre-sync manifest of round %" PRId64 " is not valid: "
		    "%s; nothing was installed.", ps->round, err);
	}
	bool *hash = xcalloc(m.n > 0 ? m.n : 1, sizeof *hash);
	wx_ps_delta_mark(&ps->d, &m, hash);
	/* A file a file op wrote whole is checked by the hash of what was
	 * written: it need not be read back.  Any other mismatch is read
	 * back, and named, by the verification. */
	for (size_t k = 0; k < ps->d.n; k++) {
		const struct wx_ps_op *op = &ps->d.op[k];
		ptrdiff_t i = op->kind == WX_PS_OP_FILE && ps->written.valid[k] ?
		    wx_ps_find(&m, op->path) : -1;
		if (i >= 0 && m.e[i].type == WX_PS_FILE && m.e[i].has_sha &&
		    m.e[i].size == op->size &&
		    memcmp(m.e[i].sha, ps->written.sha[k], WX_PS_SHA_LEN) == 0)
			hash[i] = false;
	}
	int64_t t0 = wx_mono_ms();
	rc = wx_ps_verify(rx->staging_fd, &m, hash, ps->final, err, sizeof err);
	wx_info("pre-sync round %" PRId64 ": verified in %lld ms", ps->round,
	    (long long)(wx_mono_ms() - t0));
	free(hash);
	if (rc < 0) {
		rx_detail(rx, "round %" PRId64 " verify: %s", ps->round, err);
		rx_fail(rx, 422, "The staged copy does not match the source's manifest after "
		    "pre-sync round %" PRId64 " (%s); nothing was installed.", ps->round, err);
	} else {
		/* The manifest's size is what staging holds now: replaced files
		 * no longer count against the limits. */
		int64_t bytes = manifest_bytes(&m);
		rx->space_left += rx->extracted - bytes;
		rx->extracted = bytes;
		rx->rec.files = (int64_t)m.n;
		char sz[32], dz[32];
		wx_format_bytes(bytes, sz, sizeof sz);
		wx_format_bytes(wx_ps_delta_data_bytes(&ps->d), dz, sizeof dz);
		rx_log(rx, "Pre-sync round %" PRId64 "%s applied and verified: %zu ops, %s of data; "
		    "%zu entries, %s staged.", ps->round, ps->final ? " (final)" : "", ps->d.n, dz,
		    m.n, sz);
		ps->next = PS_HEADER;
		if (ps->final)
			ps->done = true;
	}
	wx_ps_manifest_free(&m);
	wx_ps_delta_free(&ps->d);
	return rc < 0 ? -1 : 0;
}

int
rx_presync_part(struct receiver *rx, const char *name)
{
	if (rx->presync == NULL) {
		if (strcmp(name, "presync") != 0)
			return rx_fail(rx, 400, "The upload's pre-sync parts do not begin with a round "
			    "header; nothing was installed.");
		if (presync_begin(rx) < 0)
			return -1;
	}
	struct rx_presync *ps = rx->presync;
	if (strcmp(name, "presync") == 0)
		return header_part(rx, ps);
	if (strcmp(name, "presync_ops") == 0)
		return ops_part(rx, ps);
	if (strcmp(name, "presync_data") == 0)
		return data_part(rx, ps);
	return manifest_part(rx, ps);
}

int
rx_presync_end(struct receiver *rx)
{
	struct rx_presync *ps = rx->presync;
	if (ps == NULL)
		return 0;
	if (!ps->done)
		return rx_fail(rx, 400, "The pre-sync body ended before its final round (round %"
		    PRId64 " was the last begun); nothing was installed.", ps->round);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	if (EVP_DigestFinal_ex(ps->sha, d, &dlen) != 1 || dlen != 32)
		return rx_fail(rx, 500, "SHA-256 failed on this node.");
	wx_hex(d, dlen, rx->archive_sha256);
	rx->presync_rounds = ps->round;
	return 0;
}
