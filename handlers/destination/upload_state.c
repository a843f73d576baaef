/*
 * The chunked upload's state file, ids and secrets (upload.h).  The running
 * SHA-256 of the body is kept as the bytes of a struct wx_sha256
 * (sha256_state.h): the state is read back only by the programs of this
 * node, built against the same library.
 */
#include "autoconf.h"

#include "upload.h"
#include "fsutil.h"
#include "json_get.h"
#include "sha256_state.h"
#include "state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct wx_sha256) <= UP_SHA_STATE_MAX / 2, "the SHA-256 state fits");

static const char *const state_names[] = { "receiving", "finishing", "completed", "failed",
	"cancelled" };

const char *
up_state_name(enum up_state s)
{
	return (unsigned)s < WX_ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

bool
up_final(enum up_state s)
{
	return s == UP_COMPLETED || s == UP_FAILED || s == UP_CANCELLED;
}

bool
up_valid_id(const char *s)
{
	size_t n = 0;
	for (; s[n] != '\0'; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == UP_ID_LEN;
}

char *
up_dir(const struct wx_state *st)
{
	char *d = wx_path_join(st->dir, "uploads");
	if (wx_mkdirs(d, 0700) < 0 && errno != EEXIST)
		return d; /* the caller's open or write then fails with errno */
	return d;
}

char *
up_file(const struct wx_state *st, const char *id, const char *suffix)
{
	char *d = up_dir(st);
	char *p = xasprintf("%s/%s%s", d, id, suffix);
	free(d);
	return p;
}

void
up_sha_reset(struct upload *up)
{
	struct wx_sha256 h;
	wx_sha256_init(&h);
	memcpy(up->sha, &h, sizeof h);
	up->sha_len = sizeof h;
}

void
up_sha_add(unsigned char *sha, size_t sha_len, const void *buf, size_t n)
{
	struct wx_sha256 h;
	if (sha_len != sizeof h)
		return;
	memcpy(&h, sha, sizeof h);
	wx_sha256_update(&h, buf, n);
	memcpy(sha, &h, sizeof h);
}

void
up_sha_raw(const unsigned char *sha, size_t sha_len, unsigned char out[32])
{
	struct wx_sha256 h;
	memset(out, 0, 32);
	if (sha_len != sizeof h)
		return;
	memcpy(&h, sha, sizeof h);
	wx_sha256_digest(&h, out);
}

void
up_sha_hex(const unsigned char *sha, size_t sha_len, char out[65])
{
	unsigned char d[32];
	up_sha_raw(sha, sha_len, d);
	wx_hex(d, sizeof d, out);
}

static void
secret_hash(const char *secret, char out[65])
{
	unsigned char d[32];
	SHA256((const unsigned char *)secret, strlen(secret), d);
	wx_hex(d, sizeof d, out);
}

int
up_new(struct upload *up, const char *server, char secret[65])
{
	memset(up, 0, sizeof *up);
	unsigned char id[UP_ID_LEN / 2], sec[32];
	if (wx_random_bytes(id, sizeof id) < 0 || wx_random_bytes(sec, sizeof sec) < 0)
		return -1;
	wx_hex(id, sizeof id, up->id);
	wx_hex(sec, sizeof sec, secret);
	OPENSSL_cleanse(sec, sizeof sec);
	secret_hash(secret, up->secret_sha256);
	wx_strlcpy(up->server, server, sizeof up->server);
	up_sha_reset(up);
	up->state = UP_RECEIVING;
	up->created_at = up->updated_at = wx_now();
	return 0;
}

bool
up_secret_ok(const struct upload *up, const char *secret)
{
	char h[65];
	secret_hash(secret, h);
	return CRYPTO_memcmp(h, up->secret_sha256, 64) == 0;
}

void
up_clear(struct upload *up)
{
	json_object_put(up->result);
	up->result = NULL;
}

static void
add_i64(json_object *j, const char *k, int64_t v)
{
	json_object_object_add(j, k, json_object_new_int64(v));
}

int
up_save(const struct wx_state *st, struct upload *up)
{
	up->updated_at = wx_now();
	json_object *j = json_object_new_object();
	json_object_object_add(j, "upload", json_object_new_string(up->id));
	json_object_object_add(j, "server", json_object_new_string(up->server));
	json_object_object_add(j, "secret_sha256", json_object_new_string(up->secret_sha256));
	json_object_object_add(j, "body_type", json_object_new_string(up->body_type));
	add_i64(j, "offset", up->offset);
	char sha[UP_SHA_STATE_MAX + 1];
	wx_hex(up->sha, up->sha_len, sha);
	json_object_object_add(j, "sha_state", json_object_new_string(sha));
	json_object_object_add(j, "state", json_object_new_string(up_state_name(up->state)));
	add_i64(j, "created_at", up->created_at);
	add_i64(j, "updated_at", up->updated_at);
	add_i64(j, "final_at", up->final_at);
	add_i64(j, "status", up->status);
	json_object_object_add(j, "error", json_object_new_string(up->error));
	json_object_object_add(j, "result", json_object_get(up->result));
	add_i64(j, "chunk_size", up->chunk_size);
	add_i64(j, "interruptions", up->interruptions);
	add_i64(j, "resumes", up->resumes);
	add_i64(j, "restarts", up->restarts);
	json_object_object_add(j, "interrupted", json_object_new_boolean(up->interrupted));
	json_object_object_add(j, "body_checksum", json_object_new_boolean(up->body_checksum));
	const char *s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	char *dir = up_dir(st);
	char *name = xasprintf("%s.json", up->id);
	int rc = wx_atomic_write(dir, name, s, strlen(s));
	int e = errno;
	free(name);
	free(dir);
	json_object_put(j);
	errno = e;
	return rc;
}

static int
parse_hex(const char *s, unsigned char *out, size_t max, size_t *len)
{
	size_t n = strlen(s);
	if (n % 2 != 0 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int h = wx_hex_digit(s[2 * i]), l = wx_hex_digit(s[2 * i + 1]);
		if (h < 0 || l < 0)
			return -1;
		out[i] = (unsigned char)(h * 16 + l);
	}
	*len = n / 2;
	return 0;
}

int
up_load(const struct wx_state *st, const char *id, struct upload *up)
{
	memset(up, 0, sizeof *up);
	if (!up_valid_id(id)) {
		errno = ENOENT;
		return -1;
	}
	char *path = up_file(st, id, ".json");
	const char *why = NULL;
	char *text = wx_read_small_file(path, 1 << 20, &why);
	int e = errno;
	free(path);
	if (text == NULL) {
		errno = e == 0 ? EINVAL : e;
		return -1;
	}
	json_object *j = json_tokener_parse(text);
	free(text);
	char state[32] = "", sha[UP_SHA_STATE_MAX + 1] = "";
	int64_t status = 0;
	json_object *v;
	int rc = -1;
	if (j != NULL && json_object_is_type(j, json_type_object) &&
	    wx_json_opt_fixed(j, "upload", up->id, sizeof up->id) == 0 &&
	    wx_json_opt_fixed(j, "server", up->server, sizeof up->server) == 0 &&
	    wx_json_opt_fixed(j, "secret_sha256", up->secret_sha256, sizeof up->secret_sha256) == 0 &&
	    wx_json_opt_fixed(j, "body_type", up->body_type, sizeof up->body_type) == 0 &&
	    wx_json_opt_fixed(j, "state", state, sizeof state) == 0 &&
	    wx_json_opt_fixed(j, "sha_state", sha, sizeof sha) == 0 &&
	    wx_json_opt_fixed(j, "error", up->error, sizeof up->error) == 0 &&
	    wx_json_opt_i64(j, "offset", &up->offset) == 0 && up->offset >= 0 &&
	    wx_json_opt_i64(j, "created_at", &up->created_at) == 0 &&
	    wx_json_opt_i64(j, "updated_at", &up->updated_at) == 0 &&
	    wx_json_opt_i64(j, "final_at", &up->final_at) == 0 &&
	    wx_json_opt_i64(j, "status", &status) == 0 &&
	    wx_json_opt_i64(j, "chunk_size", &up->chunk_size) == 0 &&
	    wx_json_opt_i64(j, "interruptions", &up->interruptions) == 0 &&
	    wx_json_opt_i64(j, "resumes", &up->resumes) == 0 &&
	    wx_json_opt_i64(j, "restarts", &up->restarts) == 0 &&
	    strcmp(up->id, id) == 0 && wx_is_sha256_hex(up->secret_sha256) &&
	    parse_hex(sha, up->sha, sizeof up->sha, &up->sha_len) == 0) {
		rc = 0;
		up->state = UP_RECEIVING;
		for (size_t i = 0; i < WX_ARRAY_LEN(state_names); i++)
			if (strcmp(state, state_names[i]) == 0)
				up->state = (enum up_state)i;
		up->status = (int)status;
		if (json_object_object_get_ex(j, "result", &v) && json_object_is_type(v, json_type_object))
			up->result = json_object_get(v);
		up->interrupted = json_object_object_get_ex(j, "interrupted", &v) &&
		    json_object_get_boolean(v);
		up->body_checksum = json_object_object_get_ex(j, "body_checksum", &v) &&
		    json_object_get_boolean(v);
	}
	json_object_put(j);
	if (rc < 0)
		errno = EINVAL;
	return rc;
}

int
up_lock(const struct wx_state *st, const char *id)
{
	char *path = up_file(st, id, ".lock");
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	int e = errno;
	free(path);
	if (fd < 0) {
		errno = e;
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

bool
up_spool_whole(const struct wx_state *st, const char *id)
{
	char *spool = up_file(st, id, ".spool");
	char *marker = wx_path_join(spool, UP_DROPPED);
	bool whole = access(marker, F_OK) < 0 && errno == ENOENT;
	free(marker);
	free(spool);
	return whole;
}

int64_t
up_consumed(const struct wx_state *st, const struct upload *up)
{
	if (up->state != UP_RECEIVING && up->state != UP_FINISHING)
		return up->offset;
	char *spool = up_file(st, up->id, ".spool");
	DIR *d = opendir(spool);
	free(spool);
	int64_t low = up->offset;
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		int64_t off;
		/* an acknowledged chunk not read to its end: its name is its offset */
		if (strlen(e->d_name) == 20 && strspn(e->d_name, "0123456789") == 20 &&
		    wx_parse_i64(e->d_name, 0, INT64_MAX, &off) == NULL && off < low)
			low = off;
	}
	if (d != NULL)
		closedir(d);
	return low;
}

void
up_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	(void)nanosleep(&ts, NULL);
}

int
up_watch_open(const char *dir)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -1;
	if (inotify_add_watch(fd, dir, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
	    IN_ONLYDIR) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void
up_watch_wait(int fd, long ms)
{
	if (fd < 0) {
		up_sleep_ms(ms);
		return;
	}
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, (int)ms) <= 0)
		return;
	/* What changed does not matter: the waiter looks again.  Drained. */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(fd, buf, sizeof buf) > 0)
		;
}

void
up_watch_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

json_object *
up_chunked_json(const struct upload *up)
{
	json_object *c = json_object_new_object();
	json_object_object_add(c, "upload", json_object_new_string(up->id));
	add_i64(c, "acked", up->offset);
	add_i64(c, "chunk_size", up->chunk_size);
	add_i64(c, "interruptions", up->interruptions);
	add_i64(c, "resumes", up->resumes);
	add_i64(c, "restarts", up->restarts);
	return c;
}
