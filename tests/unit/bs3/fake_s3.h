/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An in-memory S3 behind struct s3_client, for the engine's unit tests.
 * Requests run on a worker thread which calls done() there, like the real
 * client.  Knobs inject faults: transient failures (retried inside the
 * fake, as the real client retries 5xx), hard failures, an outage (held
 * requests), torn or lost PUTs, and snapshots of the store (a crash = drop
 * the engine and reopen from a snapshot).
 */
#ifndef BS3_FAKE_S3_H
#define BS3_FAKE_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3.h"

struct fake_s3;
struct fake_store;

struct fake_s3 *fake_s3_new(void);
/* The client to pass in bs3_opts.client (owned by the fake). */
struct s3_client *fake_s3_client(struct fake_s3 *f);
/* Waits for the worker to finish everything queued, then frees. */
void fake_s3_free(struct fake_s3 *f);

void fake_s3_add_bucket(struct fake_s3 *f, const char *bucket);

/* The next n requests fail with 503 once each (the fake retries them). */
void fake_s3_fail_next(struct fake_s3 *f, unsigned n);
/* The next n requests fail for good with err (e.g. -EIO, -EACCES). */
void fake_s3_fail_hard(struct fake_s3 *f, unsigned n, int err);
/*
 * Hold requests whose method bit (1 << S3_PUT, ...) is in mask and, if
 * key_sub is not NULL, whose key contains it: they wait until the hold is
 * lifted (mask 0).  An outage.
 */
void fake_s3_hold(struct fake_s3 *f, unsigned mask, const char *key_sub);
/* Requests held right now. */
unsigned fake_s3_held(struct fake_s3 *f);
/* The next n PUTs of keys containing key_sub are stored truncated to
 * keep bytes (torn) / not stored at all (lost); both still answer 200. */
void fake_s3_tear_puts(struct fake_s3 *f, unsigned n, const char *key_sub,
		       size_t keep);
void fake_s3_lose_puts(struct fake_s3 *f, unsigned n, const char *key_sub);
/* If-None-Match: * supported (default true); else 501 -> -ENOTSUP. */
void fake_s3_conditional(struct fake_s3 *f, bool supported);

/* Wait until no request is queued or running (held ones excluded). */
void fake_s3_drain(struct fake_s3 *f);

/* Requests of a method so far, and in total. */
uint64_t fake_s3_count(struct fake_s3 *f, enum s3_method m);

/* Direct access to the store, bypassing faults. */
int fake_s3_put(struct fake_s3 *f, const char *bucket, const char *key,
		const void *data, size_t len);
/* malloc'd copy, or NULL if absent. */
void *fake_s3_get(struct fake_s3 *f, const char *bucket, const char *key,
		  size_t *len);
int fake_s3_delete(struct fake_s3 *f, const char *bucket, const char *key);
/* Keys under prefix (count, total bytes); fn may be NULL. */
size_t fake_s3_keys(struct fake_s3 *f, const char *bucket, const char *prefix,
		    uint64_t *bytes, void (*fn)(void *arg, const char *key),
		    void *arg);

/* A deep copy of every bucket, and putting one back (the copy is kept). */
struct fake_store *fake_s3_snapshot(struct fake_s3 *f);
void fake_s3_restore(struct fake_s3 *f, const struct fake_store *s);
void fake_store_free(struct fake_store *s);

#endif /* BS3_FAKE_S3_H */
