// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The local read cache (cache.h): a file of nslots chunk-sized slots, a
 * chained hash of (seq, chunk) -> slot, a free list and a CLOCK hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

struct slot {
	uint64_t seq;
	uint64_t idx;	/* chunk index in the object's data */
	uint32_t valid; /* bytes of the chunk held */
	int32_t next;	/* hash chain, or free list when FREE */
	uint32_t pins;	/* readers and the writer using the file range */
	uint8_t state;
	bool ref;  /* read since cached or since the hand passed */
	bool dead; /* unhashed while pinned: free at the last unpin */
};

struct bs3_cache {
	pthread_mutex_t lock;
	int fd;
	uint32_t chunk;
	uint32_t nslots;
	struct slot *s;
	int32_t *head; /* hash buckets */
	uint32_t mask;
	int32_t free;
	uint32_t hand;
	struct bs3_cache_stats st;
	void (*read_hook)(void *arg);
	void *read_hook_arg;
};

static uint32_t bucket(const struct bs3_cache *c, uint64_t seq, uint64_t idx)
{
	uint64_t h = seq * 0x9E3779B97F4A7C15ull ^ idx * 0xC2B2AE3D27D4EB4Full;

	return (uint32_t)(h >> 32 ^ h) & c->mask;
}

static struct slot *find(struct bs3_cache *c, uint64_t seq, uint64_t idx)
{
	for (int32_t i = c->head[bucket(c, seq, idx)]; i >= 0; i = c->s[i].next)
		if (c->s[i].seq == seq && c->s[i].idx == idx)
			return &c->s[i];
	return NULL;
}

static void hash_insert(struct bs3_cache *c, struct slot *s)
{
	int32_t *h = &c->head[bucket(c, s->seq, s->idx)];

	s->next = *h;
	*h = (int32_t)(s - c->s);
}

static void hash_remove(struct bs3_cache *c, struct slot *s)
{
	int32_t *p = &c->head[bucket(c, s->seq, s->idx)];
	int32_t me = (int32_t)(s - c->s);

	while (*p != me)
		p = &c->s[*p].next;
	*p = s->next;
	c->st.bytes -= s->valid;
	c->st.chunks--;
}

static void slot_free(struct bs3_cache *c, struct slot *s)
{
	s->state = SLOT_FREE;
	s->valid = 0;
	s->dead = false;
	s->ref = false;
	s->next = c->free;
	c->free = (int32_t)(s - c->s);
}

/* Take a READY slot out of the index (freed now or at its last unpin). */
static void slot_forget(struct bs3_cache *c, struct slot *s)
{
	hash_remove(c, s);
	s->state = SLOT_FILLING; /* not in the hash, not reusable */
	if (s->pins)
		s->dead = true;
	else
		slot_free(c, s);
}

static void unpin(struct bs3_cache *c, struct slot *s)
{
	if (!--s->pins && s->dead)
		slot_free(c, s);
}

/* A slot to fill: a free one, else CLOCK's victim; NULL if all pinned. */
static struct slot *slot_get(struct bs3_cache *c)
{
	struct slot *s;

	if (c->free >= 0) {
		s = &c->s[c->free];
		c->free = s->next;
		return s;
	}
	/* Two sweeps: the first may only clear reference bits. */
	for (uint64_t n = 0; n < 2ull * c->nslots; n++) {
		s = &c->s[c->hand];
		c->hand = (c->hand + 1) % c->nslots;
		if (s->state != SLOT_READY || s->pins)
			continue;
		if (s->ref) {
			s->ref = false;
			continue;
		}
		hash_remove(c, s);
		c->st.evictions++;
		return s;
	}
	return NULL;
}

int bs3_cache_open(const char *dir, uint64_t size_bytes, uint32_t chunk_bytes,
		   struct bs3_cache **out, char *err, size_t errlen)
{
	struct bs3_cache *c;
	char path[4096];
	uint64_t n;
	uint32_t nb = 16;
	int r;

	if (!chunk_bytes)
		chunk_bytes = BS3_CACHE_CHUNK;
	if (chunk_bytes < 4096 || chunk_bytes > (64u << 20) ||
	    (chunk_bytes & (chunk_bytes - 1))) {
		snprintf(err, errlen,
			 "cache chunk: a power of two, 4 KiB to 64 MiB");
		return -EINVAL;
	}
	n = size_bytes / chunk_bytes;
	if (!n || n > INT32_MAX / 2) {
		snprintf(err, errlen,
			 "cache size must be from %u bytes to %llu",
			 chunk_bytes,
			 (unsigned long long)chunk_bytes * (INT32_MAX / 2));
		return -EINVAL;
	}
	if (snprintf(path, sizeof(path), "%s/%s", dir, BS3_CACHE_FILE) >=
	    (int)sizeof(path)) {
		snprintf(err, errlen, "cache directory name too long");
		return -ENAMETOOLONG;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cache directory %s: %s", dir,
			 strerror(errno));
		return r;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	c->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cache file %s: %s", path,
			 strerror(errno));
		free(c);
		return r;
	}
	if (flock(c->fd, LOCK_EX | LOCK_NB)) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen, "cache file %s: %s", path,
			 r == -EBUSY ? "in use by another BS3 device"
				     : strerror(-r));
		close(c->fd);
		free(c);
		return r;
	}
	/* Whatever an earlier attach left is meaningless without its index. */
	if (ftruncate(c->fd, 0)) {
		r = -errno;
		snprintf(err, errlen, "cache file %s: %s", path,
			 strerror(errno));
		close(c->fd);
		free(c);
		return r;
	}
	c->chunk = chunk_bytes;
	c->nslots = (uint32_t)n;
	while (nb < 2 * c->nslots)
		nb *= 2;
	c->mask = nb - 1;
	pthread_mutex_init(&c->lock, NULL);
	c->s = calloc(c->nslots, sizeof(*c->s));
	c->head = malloc(nb * sizeof(*c->head));
	if (!c->s || !c->head) {
		bs3_cache_close(c);
		goto nomem;
	}
	memset(c->head, 0xff, nb * sizeof(*c->head)); /* all -1 */
	c->free = -1;
	for (uint32_t i = c->nslots; i-- > 0;)
		slot_free(c, &c->s[i]);
	c->st.capacity = (uint64_t)c->nslots * chunk_bytes;
	*out = c;
	return 0;
nomem:
	snprintf(err, errlen, "cache: out of memory");
	return -ENOMEM;
}

void bs3_cache_close(struct bs3_cache *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		/* Give the disk space back; the data is useless from now on. */
		int r = ftruncate(c->fd, 0);

		(void)r; /* nothing else to do about it */
		close(c->fd);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->s);
	free(c->head);
	free(c);
}

static bool full_io(bool wr, int fd, void *buf, size_t n, off_t at)
{
	char *p = buf;

	while (n) {
		ssize_t k = wr ? pwrite(fd, p, n, at) : pread(fd, p, n, at);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
		at += k;
	}
	return true;
}

int bs3_cache_get(struct bs3_cache *c, uint64_t seq, uint64_t off, size_t len,
		  void *buf)
{
	uint64_t end = off + len;
	char *b = buf;

	for (uint64_t at = off; at < end;) {
		uint64_t idx = at / c->chunk, cs = idx * c->chunk;
		uint64_t upto = end < cs + c->chunk ? end : cs + c->chunk;
		struct slot *s;
		bool ok;

		pthread_mutex_lock(&c->lock);
		s = find(c, seq, idx);
		if (!s || s->valid < upto - cs) {
			c->st.misses++;
			pthread_mutex_unlock(&c->lock);
			return -ENOENT;
		}
		s->pins++;
		s->ref = true;
		pthread_mutex_unlock(&c->lock);
		if (c->read_hook)
			c->read_hook(c->read_hook_arg);

		ok = full_io(
			false, c->fd, b + (at - off), upto - at,
			(off_t)((uint64_t)(s - c->s) * c->chunk + at - cs));

		pthread_mutex_lock(&c->lock);
		if (!ok) {
			if (s->state == SLOT_READY && !s->dead)
				slot_forget(c, s);
			c->st.misses++;
			unpin(c, s);
			pthread_mutex_unlock(&c->lock);
			return -ENOENT;
		}
		unpin(c, s);
		pthread_mutex_unlock(&c->lock);
		at = upto;
	}
	pthread_mutex_lock(&c->lock);
	c->st.hits++;
	c->st.hit_bytes += len;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int bs3_cache_put(struct bs3_cache *c, uint64_t seq, uint64_t off,
		  const void *buf, size_t len)
{
	uint64_t end = off + len;
	const char *b = buf;
	int ret = 0;

	for (uint64_t idx = (off + c->chunk - 1) / c->chunk;
	     idx * c->chunk < end; idx++) {
		uint64_t cs = idx * c->chunk;
		uint32_t n =
			(uint32_t)((end < cs + c->chunk ? end : cs + c->chunk) -
				   cs);
		struct slot *s, *old;
		bool ok;

		pthread_mutex_lock(&c->lock);
		old = find(c, seq, idx);
		if (old && old->valid >= n) {
			pthread_mutex_unlock(&c->lock);
			continue;
		}
		s = slot_get(c);
		if (!s) {
			c->st.put_errors++;
			pthread_mutex_unlock(&c->lock);
			ret = -EBUSY;
			continue;
		}
		s->state = SLOT_FILLING;
		s->seq = seq;
		s->idx = idx;
		s->valid = n;
		s->pins = 1;
		s->dead = false;
		s->ref = false;
		pthread_mutex_unlock(&c->lock);

		ok = full_io(true, c->fd, (void *)(b + (cs - off)), n,
			     (off_t)((uint64_t)(s - c->s) * c->chunk));

		pthread_mutex_lock(&c->lock);
		s->pins--;
		old = find(c, seq, idx);
		if (!ok || s->dead || (old && old->valid >= n)) {
			/* failed, dropped meanwhile, or someone was faster */
			if (!ok) {
				c->st.put_errors++;
				ret = -EIO;
			}
			slot_free(c, s);
		} else {
			if (old)
				slot_forget(c, old);
			s->state = SLOT_READY;
			hash_insert(c, s);
			c->st.bytes += n;
			c->st.chunks++;
		}
		pthread_mutex_unlock(&c->lock);
	}
	return ret;
}

void bs3_cache_drop(struct bs3_cache *c, uint64_t seq)
{
	pthread_mutex_lock(&c->lock);
	for (uint32_t i = 0; i < c->nslots; i++) {
		struct slot *s = &c->s[i];

		if (s->seq != seq || s->dead)
			continue;
		if (s->state == SLOT_READY)
			slot_forget(c, s);
		else if (s->state == SLOT_FILLING)
			s->dead = true; /* its put frees it */
	}
	pthread_mutex_unlock(&c->lock);
}

uint32_t bs3_cache_chunk(const struct bs3_cache *c)
{
	return c->chunk; /* constant after open */
}

void bs3_cache_get_stats(struct bs3_cache *c, struct bs3_cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}

void bs3_cache_set_read_hook(struct bs3_cache *c, void (*fn)(void *arg),
			     void *arg)
{
	c->read_hook = fn;
	c->read_hook_arg = arg;
}
