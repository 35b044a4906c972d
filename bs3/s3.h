/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * BS3's S3 client: SigV4-signed requests over libcurl's multi interface,
 * many in flight on a pool of keep-alive connections, run by one event
 * thread per client.  Retries with exponential backoff and jitter on 5xx,
 * SlowDown, connection errors and timeouts.  Error and listing bodies are
 * parsed with libexpat.
 *
 * The engine sees only this header.  struct s3_client is a small vtable so
 * the unit tests can run the engine against an in-memory store
 * (tests/unit/fake_s3.c) as well as against a real server.
 */
#ifndef BS3_S3_H
#define BS3_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Where and who: filled by s3_config_load(), freed by s3_config_free(). */
struct s3_config {
	char *endpoint; /* "http://127.0.0.1:18080", "https://s3.eu-west-1.amazonaws.com" */
	char *region;	/* AWS_REGION / AWS_DEFAULT_REGION; default "us-east-1" */
	char *access_key;
	char *secret_key;
	char *session_token; /* NULL if none */
	char *ca_file;	     /* NULL: the system's CA store */
	bool path_style;     /* true: http://host/bucket/key; false: http://bucket.host/key */
	unsigned connections; /* requests in flight at most; default 16 */
	unsigned timeout_ms;  /* one attempt; default 60000 */
	bool verbose;	      /* log every request to stderr */
};

/*
 * Fill *c the way AWS tools do: endpoint from `endpoint` if not NULL, else
 * AWS_ENDPOINT_URL (required: there is no default for a non-AWS store, and
 * "https://s3.REGION.amazonaws.com" when AWS_ENDPOINT_URL is unset);
 * region from AWS_REGION, AWS_DEFAULT_REGION, else "us-east-1";
 * credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN,
 * else the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
 * ~/.aws/credentials, profile AWS_PROFILE or "default").  Path style unless
 * the endpoint is an amazonaws.com host.  Returns 0, or -1 with a one-line
 * reason in err.
 */
int s3_config_load(struct s3_config *c, const char *endpoint, char *err,
		   size_t errlen);
void s3_config_free(struct s3_config *c);

enum s3_method {
	S3_GET,
	S3_PUT,
	S3_HEAD,
	S3_DELETE,
	S3_POST,
};

/* A growable response body. */
struct s3_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* One key=value of a query string, unencoded; the client sorts and encodes. */
struct s3_param {
	const char *name;
	const char *value; /* NULL or "" for a bare name such as "delete" */
};

#define S3_MAX_PARAMS 6

/*
 * One request.  The caller owns it, fills the inputs, and must not touch it
 * between s3_submit() and its done() callback.
 */
struct s3_req {
	/* inputs */
	enum s3_method method;
	const char *bucket;
	const char *key; /* NULL or "" for a bucket request */
	struct s3_param params[S3_MAX_PARAMS];
	unsigned nr_params;
	/* PUT/POST body, gathered from these buffers (not copied). */
	const struct iovec *iov;
	unsigned iovcnt;
	const char *content_type; /* NULL: none */
	/*
	 * PUT: If-None-Match: * (create only).  Swift's s3api answers 501
	 * (-ENOTSUP).  A retried attempt can get -EEXIST for the request's own
	 * earlier attempt that was stored but whose answer was lost.
	 */
	bool if_none_match;
	/* GET: a byte range (len 0: the whole object) */
	uint64_t range_off;
	uint64_t range_len;
	/*
	 * GET: the body goes into rbuf (at most rbuf_len bytes; a longer body
	 * fails with -EOVERFLOW); with rbuf NULL it goes into body.
	 */
	void *rbuf;
	size_t rbuf_len;
	/*
	 * Retry budget for retryable failures (5xx, SlowDown, connection
	 * errors, timeouts): 0 = the client's default (about 60 s), UINT32_MAX
	 * = forever (uploads that must never fail because of an outage).
	 */
	uint32_t retry_ms;

	/* outputs, valid in done() */
	int err;	  /* 0 or a negative errno, see s3_errno() */
	int http_status;  /* last attempt's, 0 if none was answered */
	char code[64];	  /* S3 error code ("NoSuchKey", ...) or "" */
	char message[256]; /* S3 error message, or curl's, or "" */
	char etag[80];	  /* ETag of a PUT/GET/HEAD, quotes removed */
	uint64_t object_size; /* GET/HEAD: the whole object's size */
	size_t got;	  /* GET: bytes received */
	struct s3_buf body; /* response body when rbuf is NULL; free with s3_req_reset() */
	unsigned retries; /* attempts - 1 */

	/* Called once, from the client's event thread; may submit more. */
	void (*done)(struct s3_req *req);
	void *priv;

	/* the client's own */
	struct s3_req *next_;
	void *impl_;
};

/*
 * Error mapping (req.err): 404 NoSuchKey -> -ENOENT, 404 NoSuchBucket ->
 * -ENXIO, 403 -> -EACCES, 412 PreconditionFailed -> -EEXIST, 400 with
 * AuthorizationHeaderMalformed (wrong region) -> -EINVAL, 501 -> -ENOTSUP,
 * an answer that is not S3 (not XML) -> -EPROTO, retries exhausted ->
 * -ETIMEDOUT or -EIO.  s3_strerror() gives "NoSuchBucket: The specified
 * bucket does not exist (HTTP 404)"-style text for a finished request.
 */
const char *s3_strerror(const struct s3_req *req, char *buf, size_t len);

/* Counters for `buse info` and benchmarks. */
struct s3_stats {
	uint64_t requests;
	uint64_t retries;
	uint64_t bytes_up;
	uint64_t bytes_down;
	uint32_t in_flight;
	uint64_t connects; /* connections opened: low when keep-alive works */
};

struct s3_client; /* declared here so the ops' parameters name the same type */

struct s3_client_ops {
	void (*submit)(struct s3_client *c, struct s3_req *req);
	void (*stats)(struct s3_client *c, struct s3_stats *st);
	void (*destroy)(struct s3_client *c);
};

struct s3_client {
	const struct s3_client_ops *ops;
};

/* A client on libcurl; *out is NULL and err says why on failure. */
int s3_client_new(const struct s3_config *cfg, struct s3_client **out,
		  char *err, size_t errlen);

/* Thread-safe; done() runs later on the client's thread. */
static inline void s3_submit(struct s3_client *c, struct s3_req *req)
{
	c->ops->submit(c, req);
}

/* Wait for every request, stop the event thread, free. */
static inline void s3_client_free(struct s3_client *c)
{
	if (c)
		c->ops->destroy(c);
}

static inline void s3_stats(struct s3_client *c, struct s3_stats *st)
{
	c->ops->stats(c, st);
}

/*
 * Submit and wait (from any thread but the client's own). Returns req->err.
 * req->done and req->priv are borrowed and restored; done() is not called.
 */
int s3_run(struct s3_client *c, struct s3_req *req);

/* Free req->body and clear the outputs, so the request can be reused. */
void s3_req_reset(struct s3_req *req);

/* Helpers built on s3_run() (synchronous). */
struct s3_object {
	char *key;
	uint64_t size;
	char etag[80];
};

/*
 * ListObjectsV2 of everything under prefix (following continuation
 * tokens), keys in order.  *objs is malloc'd: free with s3_objects_free().
 */
int s3_list(struct s3_client *c, const char *bucket, const char *prefix,
	    struct s3_object **objs, size_t *n, char *err, size_t errlen);
void s3_objects_free(struct s3_object *objs, size_t n);

/* DeleteObjects (POST ?delete, with Content-MD5), 1000 keys a request. */
int s3_delete_keys(struct s3_client *c, const char *bucket,
		   const char *const *keys, size_t n, char *err, size_t errlen);

/* HEAD bucket: 0, -ENXIO (no bucket), -EACCES, -EINVAL (region), ... */
int s3_head_bucket(struct s3_client *c, const char *bucket, char *err,
		   size_t errlen);

/* PUT bucket (for tests and `buse bs3 create --create-bucket`). */
int s3_create_bucket(struct s3_client *c, const char *bucket, char *err,
		     size_t errlen);

#endif /* BS3_S3_H */
