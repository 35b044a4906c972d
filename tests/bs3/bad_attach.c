// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Attaching (bs3_open, read-write: it would claim an epoch, recover,
 * remove leftovers) on bad input against the real S3 server: a missing
 * volume (attaching never creates), a volume with data whose superblock
 * is of a newer format, corrupt or truncated, wrong credentials, a wrong
 * region, a missing bucket.  Each must fail with its own errno and a
 * message naming the problem, and leave every key of the bucket as it was
 * (names, sizes, ETags).  The tool's messages: t_bad_input.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../unit/bs3/bs3_test.h"
#include "../unit/bs3/s3_host.h"
#include "bs3.h"
#include "object.h"

static char bucket[64];
static struct s3_config cfg;
static struct s3_client *cl;

/* Every key of the bucket with its size and ETag, one line each. */
static char *listing(void)
{
	struct s3_object *o = NULL;
	char err[400], *text = NULL;
	size_t n = 0, len = 0;
	FILE *f = open_memstream(&text, &len);

	if (s3_list(cl, bucket, "", &o, &n, err, sizeof(err)))
		fprintf(f, "listing failed: %s\n", err);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s %llu %s\n", o[i].key,
			(unsigned long long)o[i].size, o[i].etag);
	s3_objects_free(o, n);
	fclose(f);
	return text;
}

/*
 * Attach o read-write: it must fail with want and a message containing
 * word (case-insensitive), and change nothing in the bucket.
 */
static void refused(const char *name, const struct bs3_opts *o, int want,
		    const char *word)
{
	char *before = listing(), *after, err[512] = "";
	struct bs3_vol *v = NULL;
	int e = bs3_open(o, &v, err, sizeof(err));

	if (!e)
		bs3_close(v);
	after = listing();
	if (bs3h_check(e == want && strcasestr(err, word) &&
			       !strcmp(before, after),
		       name, "error %d (want %d), message '%s' (want '%s')%s",
		       e, want, err, word,
		       strcmp(before, after) ? ", and the bucket changed" : ""))
		printf("#   %s\n", err);
	free(before);
	free(after);
}

static int put_super(const char *vol, const void *buf, size_t len)
{
	struct iovec iov = {(void *)buf, len};
	char key[256];
	struct s3_req r = {.method = S3_PUT,
			   .bucket = bucket,
			   .key = key,
			   .iov = &iov,
			   .iovcnt = 1};
	int e;

	bs3_key_super(key, sizeof(key), vol);
	e = s3_run(cl, &r);
	s3_req_reset(&r);
	return e;
}

/* A volume with data in objects, epoch claims and a checkpoint. */
static int make_volume(const struct bs3_opts *o, struct bs3_super *sb)
{
	struct bs3_vol *v;
	char err[512], key[256];
	struct s3_req r = {.method = S3_GET, .bucket = bucket, .key = key};
	int e = bs3_create(o, 16u << 20, BS3T_BS, 256u << 10, err, sizeof(err));

	if (!e)
		e = bs3_open(o, &v, err, sizeof(err));
	if (e) {
		fprintf(stderr, "make_volume: %s\n", err);
		return e;
	}
	for (uint64_t lba = 0; lba < 1024 && !e; lba += 64)
		e = bs3t_write(v, NULL, lba, 64, 1);
	if (!e)
		e = bs3_flush_sync(v);
	if (bs3_close(v) && !e)
		e = -EIO;
	bs3_key_super(key, sizeof(key), o->volume);
	if (!e)
		e = s3_run(cl, &r);
	if (!e)
		e = bs3_super_decode(r.body.data, r.body.len, sb);
	s3_req_reset(&r);
	return e;
}

int main(void)
{
	struct bs3_opts o = {.volume = "vol", .progress = bs3t_quiet};
	struct s3_config bad;
	struct bs3_super sb;
	uint8_t buf[128];
	int e;

	bs3h_config(&cfg);
	bs3h_bucket(&cfg, "bs3-attach", bucket, sizeof(bucket));
	cl = bs3h_client(&cfg);
	o.bucket = bucket;
	o.s3 = &cfg;

	o.volume = "missing";
	refused("attach of a missing volume fails, creates nothing", &o,
		-ENOENT, "no BS3 volume");

	o.volume = "vol";
	e = make_volume(&o, &sb);
	if (!bs3h_check(!e, "a volume with data", "%d", e))
		return 1;

	bad = cfg;
	bad.secret_key = "wrong-secret";
	o.s3 = &bad;
	refused("attach with a wrong secret key", &o, -EACCES, "credentials");
	bad = cfg;
	bad.region = "eu-west-1";
	refused("attach with a wrong region", &o, -EINVAL, "region");
	o.s3 = &cfg;
	o.bucket = "bs3-attach-no-such-bucket";
	refused("attach in a missing bucket", &o, -ENXIO, "NoSuchBucket");
	o.bucket = bucket;

	sb.version = BS3_FORMAT_VERSION + 1;
	bs3_super_encode(&sb, buf);
	e = put_super("vol", buf, sizeof(buf));
	if (bs3h_check(!e, "write a superblock of a newer format", "%d", e))
		refused("attach of a newer format", &o, -EPROTONOSUPPORT,
			"newer format");

	sb.version = BS3_FORMAT_VERSION;
	bs3_super_encode(&sb, buf);
	buf[40] ^= 0x01; /* in the size: the checksum no longer matches */
	e = put_super("vol", buf, sizeof(buf));
	if (bs3h_check(!e, "write a corrupt superblock", "%d", e))
		refused("attach with a corrupt superblock", &o, -EBADMSG,
			"corrupt");

	buf[40] ^= 0x01;
	e = put_super("vol", buf, 100);
	if (bs3h_check(!e, "write a truncated superblock", "%d", e))
		refused("attach with a truncated superblock", &o, -EBADMSG,
			"corrupt");

	/* put right again, the volume attaches and holds its data */
	e = put_super("vol", buf, sizeof(buf));
	if (!e) {
		struct bs3_vol *v;
		struct bs3t_model m;
		char err[512] = "";

		e = bs3_open(&o, &v, err, sizeof(err));
		if (!e && !bs3t_model_init(&m, (16u << 20) / BS3T_BS)) {
			for (uint64_t b = 0; b < 1024; b++)
				m.gen[b] = 1;
			e = bs3t_verify(v, &m);
			bs3t_model_free(&m);
			if (bs3_close(v) && !e)
				e = -EIO;
		}
		bs3h_check(!e,
			   "with its superblock restored the volume holds "
			   "its data",
			   "%d %s", e, err);
	}
	s3_client_free(cl);
	s3_config_free(&cfg);
	printf("# %d failed\n", bs3h_failures);
	return bs3h_failures ? 1 : 0;
}
