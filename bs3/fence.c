// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3 fencing: every writer that attaches claims a new epoch with a marker
 * object VOL/e/<epoch>; a writer whose epoch is no longer the highest, or
 * whose marker was overwritten, is fenced.  docs/bs3.md, "Fencing".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

/* Compare ETags ignoring surrounding quotes (listings may keep them). */
static bool etag_eq(const char *a, const char *b)
{
	size_t la, lb;

	if (*a == '"')
		a++;
	if (*b == '"')
		b++;
	la = strlen(a);
	lb = strlen(b);
	if (la && a[la - 1] == '"')
		la--;
	if (lb && b[lb - 1] == '"')
		lb--;
	return la == lb && !memcmp(a, b, la);
}

/* The epoch markers: highest epoch, and our marker's ETag if listed. */
static int list_epochs(struct bs3_vol *v, uint64_t *max, char *our_etag,
		       bool *ours_seen, char *why, size_t whylen)
{
	struct s3_object *objs = NULL;
	char prefix[512];
	size_t n = 0;
	int e;

	snprintf(prefix, sizeof(prefix), "%s/e/", v->vol);
	e = s3_list(v->cl, v->bucket, prefix, &objs, &n, why, whylen);
	if (e)
		return e;
	*max = 0;
	if (ours_seen)
		*ours_seen = false;
	for (size_t i = 0; i < n; i++) {
		uint64_t ep;

		if (bs3_key_parse(objs[i].key, v->vol, NULL, &ep) !=
		    BS3_KEY_EPOCH)
			continue;
		if (ep > *max)
			*max = ep;
		if (ours_seen && ep == v->epoch) {
			*ours_seen = true;
			snprintf(our_etag, 80, "%s", objs[i].etag);
		}
	}
	s3_objects_free(objs, n);
	return 0;
}

int bs3_fence_claim(struct bs3_vol *v, char *err, size_t errlen)
{
	char why[256], key[512];
	uint64_t max;
	int e;

	e = list_epochs(v, &max, NULL, NULL, why, sizeof(why));
	if (e) {
		snprintf(err, errlen, "s3://%s/%s: listing epochs: %s",
			 v->bucket, v->vol, why);
		return e;
	}
	for (int attempt = 0; attempt < 32; attempt++) {
		struct bs3_epoch ep = { 0 };
		uint8_t buf[sizeof(struct bs3_disk_epoch)];
		char etag[80] = "";

		memcpy(ep.uuid, v->sb.uuid, BS3_UUID_LEN);
		ep.epoch = max + 1;
		if (getrandom(ep.writer_id, sizeof(ep.writer_id), 0) !=
		    sizeof(ep.writer_id)) {
			snprintf(err, errlen, "no random numbers");
			return -EIO;
		}
		ep.time = (uint64_t)time(NULL);
		ep.pid = (uint32_t)getpid();
		gethostname(ep.host, sizeof(ep.host) - 1);
		bs3_epoch_encode(&ep, buf);
		bs3_key_epoch(key, sizeof(key), v->vol, ep.epoch);
		e = bs3_put_buf(v, key, buf, sizeof(buf), 0, true, etag);
		if (e == -EEXIST) {
			max = ep.epoch; /* lost the race: go higher */
			continue;
		}
		if (e == -ENOTSUP) {
			/*
			 * No conditional PUT (Swift): write, read back, and see
			 * whether the marker there is ours.  The window this
			 * leaves is closed by the ETag check of every flush.
			 */
			void *got;
			size_t len;
			struct bs3_epoch back;

			e = bs3_put_buf(v, key, buf, sizeof(buf), 0, false, etag);
			if (!e)
				e = bs3_get_whole(v, key, &got, &len);
			if (!e) {
				e = bs3_epoch_decode(got, len, v->sb.uuid, &back);
				free(got);
				if (!e && memcmp(back.writer_id, ep.writer_id,
						 sizeof(ep.writer_id))) {
					max = ep.epoch;
					continue;
				}
			}
		}
		if (e) {
			snprintf(err, errlen, "s3://%s/%s: claiming epoch %llu: %s",
				 v->bucket, v->vol,
				 (unsigned long long)ep.epoch, strerror(-e));
			return e;
		}
		v->epoch = ep.epoch;
		memcpy(v->writer_id, ep.writer_id, sizeof(v->writer_id));
		snprintf(v->epoch_etag, sizeof(v->epoch_etag), "%s", etag);
		return 0;
	}
	snprintf(err, errlen, "s3://%s/%s: could not claim an epoch (busy)",
		 v->bucket, v->vol);
	return -EBUSY;
}

int bs3_fence_check(struct bs3_vol *v)
{
	char why[256], etag[80] = "";
	uint64_t max;
	bool seen;
	int e = list_epochs(v, &max, etag, &seen, why, sizeof(why));

	if (e)
		return e == -ESTALE ? -EIO : e;
	if (max > v->epoch || !seen ||
	    (v->epoch_etag[0] && !etag_eq(etag, v->epoch_etag))) {
		pthread_mutex_lock(&v->lock);
		if (!v->failed)
			bs3_progress(v,
				     "fenced: a newer writer owns s3://%s/%s "
				     "(our epoch %llu, newest %llu)",
				     v->bucket, v->vol,
				     (unsigned long long)v->epoch,
				     (unsigned long long)max);
		pthread_mutex_unlock(&v->lock);
		return -ESTALE;
	}
	return 0;
}
