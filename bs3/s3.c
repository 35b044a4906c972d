// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The S3 client on libcurl's multi interface.  One event thread per client
 * owns the multi handle and every transfer; other threads only queue
 * requests (under a mutex) and wake it with curl_multi_wakeup().  The multi
 * handle's connection cache keeps at most cfg->connections keep-alive
 * connections, and at most that many requests are in flight: the rest wait
 * in a FIFO.  A retryable failure puts the request on a timer list and it
 * is signed and sent again after its backoff.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "s3.h"
#include "s3_xml.h"
#include "sigv4.h"

#define BACKOFF_BASE_MS	 100
#define BACKOFF_CAP_MS	 10000
#define DEFAULT_RETRY_MS 60000
#define ERRBODY_MAX	 (64 * 1024)

struct client;

/* Per-request state, req->impl_, from submit to done. */
struct attempt {
	struct client *cl;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url;
	char payload_hash[65];
	char md5_b64[32];
	uint64_t body_len;
	uint64_t start_ms; /* of the first attempt */
	uint64_t due_ms;   /* of the next retry */
	uint64_t backoff_ms;
	/* upload position */
	unsigned iov_i;
	size_t iov_off;
	uint64_t sent;
	/* this attempt's response */
	long status;
	bool amz;      /* an x-amz-* header was seen: the answer is from S3 */
	bool overflow; /* GET into rbuf: body longer than rbuf_len */
	struct s3_buf errbody;
	char content_type[64];
	char curl_err[CURL_ERROR_SIZE];
};

struct client {
	struct s3_client base;
	struct s3_config cfg;
	char *scheme;
	char *host;	 /* host[:port] as signed and sent */
	char *base_path; /* endpoint's path without trailing '/', often "" */

	CURLM *multi;
	pthread_t thread;
	uint64_t rnd;

	pthread_mutex_t lock;
	struct s3_req *in_head,
		*in_tail; /* submitted, not yet seen by the thread */
	bool stopping;

	/* the event thread's own */
	struct s3_req *ready_head, *ready_tail; /* waiting for a slot */
	struct s3_req *timers; /* waiting for a retry, by due */
	unsigned active;

	_Atomic uint64_t st_requests, st_retries, st_up, st_down, st_connects;
	_Atomic uint32_t st_in_flight;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void buf_add(struct s3_buf *b, const void *p, size_t n, size_t max)
{
	if (b->len + n > max)
		n = max > b->len ? max - b->len : 0;
	if (!n)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return; /* dropped; the caller sees a short body */
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
}

static void copy_str(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

/* Messages are cut to fit: vsnprintf says so without a compile warning. */
static void msgf(struct s3_req *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void msgf(struct s3_req *req, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req->message, sizeof(req->message), fmt, ap);
	va_end(ap);
}

/* curl callbacks */

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *req = ud;
	struct attempt *a = req->impl_;
	size_t want = size * nmemb, done = 0;

	/* The one copy of a PUT body: from the caller's buffers into curl's. */
	while (done < want && a->iov_i < req->iovcnt) {
		const struct iovec *v = &req->iov[a->iov_i];
		size_t n = v->iov_len - a->iov_off;

		if (n > want - done)
			n = want - done;
		memcpy(dst + done, (const char *)v->iov_base + a->iov_off, n);
		done += n;
		a->iov_off += n;
		if (a->iov_off == v->iov_len) {
			a->iov_i++;
			a->iov_off = 0;
		}
	}
	a->sent += done;
	return done;
}

static void rewind_to(struct s3_req *req, uint64_t off)
{
	struct attempt *a = req->impl_;

	a->iov_i = 0;
	a->iov_off = 0;
	a->sent = off;
	while (a->iov_i < req->iovcnt && off >= req->iov[a->iov_i].iov_len) {
		off -= req->iov[a->iov_i].iov_len;
		a->iov_i++;
	}
	a->iov_off = (size_t)off;
}

/* curl rewinds on its own too, e.g. to resend on a reused dead connection. */
static int seek_cb(void *ud, curl_off_t off, int origin)
{
	struct s3_req *req = ud;
	struct attempt *a = req->impl_;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > a->body_len)
		return CURL_SEEKFUNC_FAIL;
	rewind_to(req, (uint64_t)off);
	return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *req = ud;
	struct attempt *a = req->impl_;
	size_t n = size * nmemb;

	if (!a->status)
		curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &a->status);
	if (a->status < 200 || a->status >= 300) {
		buf_add(&a->errbody, p, n, ERRBODY_MAX);
		return n;
	}
	if (req->rbuf) {
		if (req->got + n > req->rbuf_len) {
			a->overflow = true;
			return CURL_WRITEFUNC_ERROR;
		}
		memcpy((char *)req->rbuf + req->got, p, n);
	} else {
		size_t before = req->body.len;

		buf_add(&req->body, p, n, SIZE_MAX);
		if (req->body.len != before + n)
			return CURL_WRITEFUNC_ERROR; /* out of memory */
	}
	req->got += n;
	return n;
}

static bool hdr_is(const char *line, size_t n, const char *name,
		   const char **val, size_t *vlen)
{
	size_t l = strlen(name);

	if (n <= l || strncasecmp(line, name, l) || line[l] != ':')
		return false;
	line += l + 1;
	n -= l + 1;
	while (n && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' ||
		     line[n - 1] == ' '))
		n--;
	*val = line;
	*vlen = n;
	return true;
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *req = ud;
	struct attempt *a = req->impl_;
	size_t n = size * nmemb, vl;
	const char *v;
	char tmp[128];

	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		/* A new response (after a 100 Continue, say): start over. */
		a->amz = false;
		a->status = 0;
		req->etag[0] = 0;
		a->content_type[0] = 0;
		return n;
	}
	if (n > 6 && !strncasecmp(line, "x-amz-", 6))
		a->amz = true;
	if (hdr_is(line, n, "ETag", &v, &vl)) {
		if (vl && *v == '"') {
			v++;
			vl--;
		}
		if (vl && v[vl - 1] == '"')
			vl--;
		if (vl >= sizeof(req->etag))
			vl = sizeof(req->etag) - 1;
		memcpy(req->etag, v, vl);
		req->etag[vl] = 0;
	} else if (hdr_is(line, n, "Content-Length", &v, &vl)) {
		if (vl < sizeof(tmp) &&
		    (req->method == S3_HEAD || !req->range_len)) {
			memcpy(tmp, v, vl);
			tmp[vl] = 0;
			req->object_size = strtoull(tmp, NULL, 10);
		}
	} else if (hdr_is(line, n, "Content-Range", &v, &vl)) {
		/* "bytes 0-9/12345": the whole object's size follows '/' */
		const char *slash = memchr(v, '/', vl);

		if (slash && vl < sizeof(tmp)) {
			memcpy(tmp, v, vl);
			tmp[vl] = 0;
			req->object_size =
				strtoull(tmp + (slash - v) + 1, NULL, 10);
		}
	} else if (hdr_is(line, n, "Content-Type", &v, &vl)) {
		if (vl >= sizeof(a->content_type))
			vl = sizeof(a->content_type) - 1;
		memcpy(a->content_type, v, vl);
		a->content_type[vl] = 0;
	}
	return n;
}

/* building and sending one attempt */

static const char *method_name(enum s3_method m)
{
	switch (m) {
	case S3_GET:
		return "GET";
	case S3_PUT:
		return "PUT";
	case S3_HEAD:
		return "HEAD";
	case S3_DELETE:
		return "DELETE";
	case S3_POST:
		return "POST";
	}
	return "GET";
}

static bool add_hdr(struct attempt *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool add_hdr(struct attempt *a, const char *fmt, ...)
{
	char line[4096];
	struct curl_slist *l;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l = curl_slist_append(a->hdrs, line);
	if (!l)
		return false;
	a->hdrs = l;
	return true;
}

/* Sign the request now (a fresh date per attempt) and make its easy handle. */
static int prepare(struct client *cl, struct s3_req *req, char *err,
		   size_t errlen)
{
	struct attempt *a = req->impl_;
	struct sigv4_header h[12];
	struct sigv4_req sr;
	struct sigv4_out so;
	char date[17], range[64], host[512], *path = NULL, *epath = NULL,
					     *query = NULL;
	const char *key = req->key ? req->key : "";
	bool bucket_in_host =
		!cl->cfg.path_style && req->bucket && *req->bucket;
	struct tm tm;
	time_t t = time(NULL);
	unsigned nh = 0;
	int ret = -ENOMEM;
	CURL *e;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);

	if (bucket_in_host)
		snprintf(host, sizeof(host), "%s.%s", req->bucket, cl->host);
	else
		copy_str(host, sizeof(host), cl->host);
	/* The path: endpoint path, /bucket in path style, /key. */
	if (asprintf(&path, "%s%s%s/%s", cl->base_path,
		     bucket_in_host || !req->bucket || !*req->bucket ? "" : "/",
		     bucket_in_host ? "" : (req->bucket ? req->bucket : ""),
		     key) < 0) {
		path = NULL;
		goto out;
	}
	/* "/bucket/" for a bucket request in path style is "/bucket". */
	if (!*key && strlen(path) > 1)
		path[strlen(path) - 1] = 0;
	epath = sigv4_uri_encode(path, true);
	query = sigv4_query(req->params, req->nr_params);
	if (!epath || !query)
		goto out;
	free(a->url);
	if (asprintf(&a->url, "%s://%s%s%s%s", cl->scheme, host, epath,
		     *query ? "?" : "", query) < 0) {
		a->url = NULL;
		goto out;
	}

	h[nh++] = (struct sigv4_header){"host", host};
	h[nh++] =
		(struct sigv4_header){"x-amz-content-sha256", a->payload_hash};
	h[nh++] = (struct sigv4_header){"x-amz-date", date};
	if (cl->cfg.session_token)
		h[nh++] = (struct sigv4_header){"x-amz-security-token",
						cl->cfg.session_token};
	if (req->method == S3_POST && a->md5_b64[0])
		h[nh++] = (struct sigv4_header){"content-md5", a->md5_b64};
	if (req->method == S3_GET && req->range_len) {
		snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64,
			 req->range_off, req->range_off + req->range_len - 1);
		h[nh++] = (struct sigv4_header){"range", range};
	}
	if (req->method == S3_PUT && req->if_none_match)
		h[nh++] = (struct sigv4_header){"if-none-match", "*"};

	sr = (struct sigv4_req){
		.method = method_name(req->method),
		.path = path,
		.params = req->params,
		.nr_params = req->nr_params,
		.headers = h,
		.nr_headers = nh,
		.payload_hash = a->payload_hash,
		.amz_date = date,
		.region = cl->cfg.region,
		.service = "s3",
		.access_key = cl->cfg.access_key,
		.secret_key = cl->cfg.secret_key,
	};
	ret = sigv4_sign(&sr, &so);
	if (ret)
		goto out;

	curl_slist_free_all(a->hdrs);
	a->hdrs = NULL;
	ret = -ENOMEM;
	for (unsigned i = 0; i < nh; i++)
		if (!add_hdr(a, "%s: %s", h[i].name, h[i].value))
			goto out_sig;
	if (!add_hdr(a, "Authorization: %s", so.authorization) ||
	    /* 100-continue costs a round trip per PUT for nothing here. */
	    !add_hdr(a, "Expect:"))
		goto out_sig;
	if (req->content_type &&
	    !add_hdr(a, "Content-Type: %s", req->content_type))
		goto out_sig;
	if (req->method == S3_POST && !req->content_type &&
	    !add_hdr(a, "Content-Type:"))
		goto out_sig;

	e = a->easy;
	if (!e) {
		e = a->easy = curl_easy_init();
		if (!e)
			goto out_sig;
	} else {
		curl_easy_reset(e);
	}
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	curl_easy_setopt(e, CURLOPT_URL, a->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->curl_err);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* A stalled server: no byte for timeout_ms fails the attempt. */
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(cl->cfg.timeout_ms < 10000 ? cl->cfg.timeout_ms
							   : 10000));
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
			 (long)(cl->cfg.timeout_ms + 999) / 1000);
	if (cl->cfg.ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, cl->cfg.ca_file);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);

	switch (req->method) {
	case S3_GET:
		break;
	case S3_HEAD:
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		break;
	case S3_DELETE:
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	case S3_PUT:
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)a->body_len);
		break;
	case S3_POST:
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)a->body_len);
		break;
	}
	if (req->method == S3_PUT || req->method == S3_POST) {
		curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(e, CURLOPT_READDATA, req);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, req);
	}
	if (cl->cfg.verbose)
		fprintf(stderr, "s3: %s %s%s\n", sr.method, a->url,
			req->retries ? " (retry)" : "");
	ret = 0;
out_sig:
	sigv4_out_free(&so);
out:
	if (ret && err)
		snprintf(err, errlen, "cannot build the request: %s",
			 strerror(-ret));
	free(path);
	free(epath);
	free(query);
	return ret;
}

static void reset_attempt(struct s3_req *req)
{
	struct attempt *a = req->impl_;

	a->status = 0;
	a->amz = false;
	a->overflow = false;
	a->errbody.len = 0;
	a->content_type[0] = 0;
	a->curl_err[0] = 0;
	rewind_to(req, 0);
	req->got = 0;
	req->body.len = 0;
	req->etag[0] = 0;
	req->object_size = 0;
}

static void finish(struct client *cl, struct s3_req *req);

static void start(struct client *cl, struct s3_req *req)
{
	struct attempt *a = req->impl_;
	char err[160];

	if (!a) { /* submit could not allocate: report it from here */
		finish(cl, req);
		return;
	}
	reset_attempt(req);
	if (prepare(cl, req, err, sizeof(err))) {
		req->err = -ENOMEM;
		copy_str(req->message, sizeof(req->message), err);
		finish(cl, req);
		return;
	}
	if (curl_multi_add_handle(cl->multi, a->easy) != CURLM_OK) {
		req->err = -ENOMEM;
		copy_str(req->message, sizeof(req->message),
			 "curl_multi_add_handle failed");
		finish(cl, req);
		return;
	}
	cl->active++;
	atomic_fetch_add(&cl->st_in_flight, 1);
	atomic_fetch_add(&cl->st_requests, 1);
}

static void free_attempt(struct s3_req *req)
{
	struct attempt *a = req->impl_;

	if (!a)
		return;
	if (a->easy)
		curl_easy_cleanup(a->easy);
	curl_slist_free_all(a->hdrs);
	free(a->url);
	free(a->errbody.data);
	free(a);
	req->impl_ = NULL;
}

static void finish(struct client *cl, struct s3_req *req)
{
	if (cl->cfg.verbose)
		fprintf(stderr,
			"s3: %s %s/%s -> %d (HTTP %d%s%s, %u retries)\n",
			method_name(req->method),
			req->bucket ? req->bucket : "",
			req->key ? req->key : "", req->err, req->http_status,
			req->code[0] ? " " : "", req->code, req->retries);
	free_attempt(req);
	req->next_ = NULL;
	if (req->done)
		req->done(req);
}

/* xorshift64*: jitter needs no quality, only no lock-step among requests. */
static uint64_t rnd(struct client *cl)
{
	cl->rnd ^= cl->rnd >> 12;
	cl->rnd ^= cl->rnd << 25;
	cl->rnd ^= cl->rnd >> 27;
	return cl->rnd * 2685821657736338717ULL;
}

static void add_timer(struct client *cl, struct s3_req *req)
{
	struct attempt *a = req->impl_;
	struct s3_req **pp = &cl->timers;

	while (*pp && ((struct attempt *)(*pp)->impl_)->due_ms <= a->due_ms)
		pp = &(*pp)->next_;
	req->next_ = *pp;
	*pp = req;
}

static int status_errno(struct s3_req *req, long st)
{
	const char *c = req->code;

	if (!strcmp(c, "NoSuchKey"))
		return -ENOENT;
	if (!strcmp(c, "NoSuchBucket"))
		return -ENXIO;
	if (!strcmp(c, "AuthorizationHeaderMalformed"))
		return -EINVAL;
	if (!strcmp(c, "PreconditionFailed") || st == 412)
		return -EEXIST;
	if (!strcmp(c, "BucketAlreadyOwnedByYou") ||
	    !strcmp(c, "BucketAlreadyExists"))
		return -EEXIST;
	switch (st) {
	case 404:
		/* A HEAD has no body: a bucket request means the bucket. */
		return (!req->key || !*req->key) ? -ENXIO : -ENOENT;
	case 401:
	case 403:
		return -EACCES;
	case 416:
		return -ERANGE;
	case 501:
		return -ENOTSUP;
	default:
		return -EINVAL;
	}
}

static bool retryable_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

/* A transfer ended: finish the request, or schedule its retry. */
static void completed(struct client *cl, struct s3_req *req, CURLcode rc)
{
	struct attempt *a = req->impl_;
	bool retry = false, timeout = false;
	long st = 0;
	curl_off_t cup = 0, cdown = 0;
	long nconn = 0;
	curl_multi_remove_handle(cl->multi, a->easy);
	cl->active--;
	atomic_fetch_sub(&cl->st_in_flight, 1);
	curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_getinfo(a->easy, CURLINFO_SIZE_UPLOAD_T, &cup);
	curl_easy_getinfo(a->easy, CURLINFO_SIZE_DOWNLOAD_T, &cdown);
	curl_easy_getinfo(a->easy, CURLINFO_NUM_CONNECTS, &nconn);
	atomic_fetch_add(&cl->st_connects, (uint64_t)(nconn > 0 ? nconn : 0));
	atomic_fetch_add(&cl->st_up, (uint64_t)cup);
	atomic_fetch_add(&cl->st_down, (uint64_t)cdown);
	req->http_status = (int)st;
	req->code[0] = 0;
	req->message[0] = 0;
	req->err = 0;

	if (rc != CURLE_OK) {
		if (a->overflow) {
			req->err = -EOVERFLOW;
			msgf(req, "object larger than the %zu-byte buffer",
			     req->rbuf_len);
		} else {
			retry = retryable_curl(rc);
			timeout = rc == CURLE_OPERATION_TIMEDOUT;
			req->err = timeout ? -ETIMEDOUT : -EIO;
			msgf(req, "%s%s%s", curl_easy_strerror(rc),
			     a->curl_err[0] ? ": " : "", a->curl_err);
		}
		req->http_status = 0;
	} else if (st >= 200 && st < 300) {
		/*
		 * Something that is not S3 can answer 200 too: S3 servers send
		 * x-amz-request-id; an object's answer has at least an ETag.
		 */
		if (!a->amz && (!req->key || !*req->key || !req->etag[0])) {
			req->err = -EPROTO;
			msgf(req,
			     "the endpoint's answer is not S3 (HTTP %ld, %s, "
			     "no x-amz- headers)",
			     st,
			     a->content_type[0] ? a->content_type
						: "no content type");
		}
	} else {
		bool xml = !s3_xml_error(a->errbody.data, a->errbody.len,
					 req->code, sizeof(req->code),
					 req->message, sizeof(req->message));

		if ((st >= 500 && st != 501) || st == 429 ||
		    !strcmp(req->code, "SlowDown") ||
		    !strcmp(req->code, "RequestTimeout") ||
		    !strcmp(req->code, "InternalError")) {
			retry = true;
			req->err = -EIO;
		} else if (!xml && !a->amz) {
			req->err = -EPROTO;
			msgf(req,
			     "the endpoint's answer is not S3 (HTTP %ld, %s)",
			     st,
			     a->content_type[0] ? a->content_type
						: "no content type");
		} else {
			req->err = status_errno(req, st);
			if (!req->message[0] && st == 400 &&
			    req->method == S3_HEAD)
				copy_str(req->message, sizeof(req->message),
					 "Bad Request (wrong region?)");
		}
	}

	if (retry) {
		uint64_t now = now_ms(), budget = req->retry_ms
							  ? req->retry_ms
							  : DEFAULT_RETRY_MS;
		uint64_t delay;

		a->backoff_ms =
			a->backoff_ms ? a->backoff_ms * 2 : BACKOFF_BASE_MS;
		if (a->backoff_ms > BACKOFF_CAP_MS)
			a->backoff_ms = BACKOFF_CAP_MS;
		/* Full jitter: uniform in [0, backoff]. */
		delay = rnd(cl) % (a->backoff_ms + 1);
		if (req->retry_ms == UINT32_MAX ||
		    now + delay < a->start_ms + budget) {
			a->due_ms = now + delay;
			req->retries++;
			atomic_fetch_add(&cl->st_retries, 1);
			if (cl->cfg.verbose)
				fprintf(stderr,
					"s3: retry in %" PRIu64 " ms: %s\n",
					delay, req->message);
			add_timer(cl, req);
			return;
		}
		if (!timeout && !req->code[0])
			req->err = -EIO;
		if (req->retries) {
			char m[sizeof(req->message)];

			copy_str(m, sizeof(m), req->message);
			msgf(req, "%s (gave up after %u retries)", m,
			     req->retries);
		}
	}
	finish(cl, req);
}

static void take_incoming(struct client *cl, bool *stopping)
{
	struct s3_req *r;

	pthread_mutex_lock(&cl->lock);
	r = cl->in_head;
	cl->in_head = cl->in_tail = NULL;
	*stopping = cl->stopping;
	pthread_mutex_unlock(&cl->lock);
	if (!r)
		return;
	if (cl->ready_tail)
		cl->ready_tail->next_ = r;
	else
		cl->ready_head = r;
	while (r->next_)
		r = r->next_;
	cl->ready_tail = r;
}

static void *event_thread(void *arg)
{
	struct client *cl = arg;
	bool stopping = false;

	for (;;) {
		struct CURLMsg *m;
		int running = 0, left;
		uint64_t now;
		long tmo = 1000;

		take_incoming(cl, &stopping);
		/* Retries that are due go first: they are the oldest. */
		now = now_ms();
		while (cl->timers &&
		       ((struct attempt *)cl->timers->impl_)->due_ms <= now) {
			struct s3_req *r = cl->timers;

			cl->timers = r->next_;
			r->next_ = cl->ready_head;
			cl->ready_head = r;
			if (!cl->ready_tail)
				cl->ready_tail = r;
		}
		while (cl->ready_head && cl->active < cl->cfg.connections) {
			struct s3_req *r = cl->ready_head;

			cl->ready_head = r->next_;
			if (!cl->ready_head)
				cl->ready_tail = NULL;
			r->next_ = NULL;
			start(cl, r);
		}
		if (stopping && !cl->active && !cl->ready_head && !cl->timers) {
			pthread_mutex_lock(&cl->lock);
			bool empty = !cl->in_head;

			pthread_mutex_unlock(&cl->lock);
			if (empty)
				break;
			continue;
		}

		curl_multi_perform(cl->multi, &running);
		while ((m = curl_multi_info_read(cl->multi, &left))) {
			struct s3_req *r = NULL;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &r);
			completed(cl, r, m->data.result);
		}
		if (cl->ready_head && cl->active < cl->cfg.connections)
			continue; /* a slot was freed: use it now */

		curl_multi_timeout(cl->multi, &tmo);
		if (tmo < 0 || tmo > 1000)
			tmo = 1000;
		if (cl->timers) {
			uint64_t due =
				((struct attempt *)cl->timers->impl_)->due_ms;

			now = now_ms();
			if (due <= now)
				tmo = 0;
			else if ((long)(due - now) < tmo)
				tmo = (long)(due - now);
		}
		if (tmo)
			curl_multi_poll(cl->multi, NULL, 0, (int)tmo, NULL);
	}
	return NULL;
}

static void client_submit(struct s3_client *c, struct s3_req *req)
{
	struct client *cl = (struct client *)c;
	struct attempt *a = calloc(1, sizeof(*a));
	uint64_t len = 0;
	unsigned i;

	req->err = 0;
	req->http_status = 0;
	req->code[0] = req->message[0] = req->etag[0] = 0;
	req->object_size = 0;
	req->got = 0;
	req->retries = 0;
	req->next_ = NULL;
	if (!a) {
		req->err = -ENOMEM;
		copy_str(req->message, sizeof(req->message), "out of memory");
		/* done() must run on the client's thread: queue anyway */
	}
	req->impl_ = a;
	if (a) {
		a->cl = cl;
		for (i = 0; i < req->iovcnt; i++)
			len += req->iov[i].iov_len;
		a->body_len = len;
		/*
		 * The body's hash, on the submitting thread so the event thread
		 * stays free for I/O; the server checks it against the body.
		 */
		if (req->method == S3_PUT || req->method == S3_POST)
			sigv4_sha256_iov_hex(req->iov, req->iovcnt,
					     a->payload_hash);
		else
			copy_str(a->payload_hash, sizeof(a->payload_hash),
				 SIGV4_EMPTY_SHA256);
		if (req->method == S3_POST) {
			unsigned char md[EVP_MAX_MD_SIZE];
			unsigned int mdlen = 0;
			EVP_MD_CTX *ctx = EVP_MD_CTX_new();

			if (ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
				for (i = 0; i < req->iovcnt; i++)
					EVP_DigestUpdate(ctx,
							 req->iov[i].iov_base,
							 req->iov[i].iov_len);
				if (EVP_DigestFinal_ex(ctx, md, &mdlen))
					EVP_EncodeBlock(
						(unsigned char *)a->md5_b64, md,
						(int)mdlen);
			}
			EVP_MD_CTX_free(ctx);
		}
		a->start_ms = now_ms();
	}
	pthread_mutex_lock(&cl->lock);
	if (cl->in_tail)
		cl->in_tail->next_ = req;
	else
		cl->in_head = req;
	cl->in_tail = req;
	pthread_mutex_unlock(&cl->lock);
	curl_multi_wakeup(cl->multi);
}

static void client_stats(struct s3_client *c, struct s3_stats *st)
{
	struct client *cl = (struct client *)c;

	st->requests = atomic_load(&cl->st_requests);
	st->retries = atomic_load(&cl->st_retries);
	st->bytes_up = atomic_load(&cl->st_up);
	st->bytes_down = atomic_load(&cl->st_down);
	st->in_flight = atomic_load(&cl->st_in_flight);
	st->connects = atomic_load(&cl->st_connects);
}

static void free_config_copy(struct s3_config *c)
{
	free(c->endpoint);
	free(c->region);
	free(c->access_key);
	free(c->secret_key);
	free(c->session_token);
	free(c->ca_file);
}

static void client_free(struct client *cl)
{
	if (cl->multi)
		curl_multi_cleanup(cl->multi);
	free_config_copy(&cl->cfg);
	free(cl->scheme);
	free(cl->host);
	free(cl->base_path);
	pthread_mutex_destroy(&cl->lock);
	free(cl);
}

static void client_destroy(struct s3_client *c)
{
	struct client *cl = (struct client *)c;

	pthread_mutex_lock(&cl->lock);
	cl->stopping = true;
	pthread_mutex_unlock(&cl->lock);
	curl_multi_wakeup(cl->multi);
	pthread_join(cl->thread, NULL);
	client_free(cl);
}

static const struct s3_client_ops client_ops = {
	.submit = client_submit,
	.stats = client_stats,
	.destroy = client_destroy,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Split the endpoint into scheme, host[:port] and path with curl's URL parser. */
static int parse_endpoint(struct client *cl, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	int ret = -1;

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, cl->cfg.endpoint, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, errlen, "invalid endpoint URL: %s",
			 cl->cfg.endpoint);
		goto out;
	}
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		snprintf(err, errlen,
			 "endpoint must be http:// or https://: %s",
			 cl->cfg.endpoint);
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0); /* absent: default */
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	cl->scheme = strdup(scheme);
	if (port)
		ret = asprintf(&cl->host, "%s:%s", host, port) < 0 ? -1 : 0;
	else
		ret = (cl->host = strdup(host)) ? 0 : -1;
	if (path) {
		size_t l = strlen(path);

		while (l && path[l - 1] == '/')
			path[--l] = 0;
	}
	cl->base_path = strdup(path ? path : "");
	if (ret || !cl->scheme || !cl->base_path) {
		snprintf(err, errlen, "out of memory");
		ret = -1;
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return ret;
}

int s3_client_new(const struct s3_config *cfg, struct s3_client **out,
		  char *err, size_t errlen)
{
	struct client *cl;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed");
		return -1;
	}
	if (!cfg->endpoint || !cfg->access_key || !cfg->secret_key) {
		snprintf(err, errlen, "S3 endpoint or credentials missing");
		return -1;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&cl->lock, NULL);
	cl->base.ops = &client_ops;
	cl->cfg = *cfg;
	cl->cfg.endpoint = dup_or_null(cfg->endpoint);
	cl->cfg.region = strdup(cfg->region ? cfg->region : "us-east-1");
	cl->cfg.access_key = dup_or_null(cfg->access_key);
	cl->cfg.secret_key = dup_or_null(cfg->secret_key);
	cl->cfg.session_token = dup_or_null(cfg->session_token);
	cl->cfg.ca_file = dup_or_null(cfg->ca_file);
	if (!cl->cfg.connections)
		cl->cfg.connections = 16;
	if (!cl->cfg.timeout_ms)
		cl->cfg.timeout_ms = 60000;
	cl->rnd = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ULL ^
		  (uint64_t)getpid() ^ (uint64_t)(uintptr_t)cl;
	if (!cl->rnd)
		cl->rnd = 1;
	if (!cl->cfg.endpoint || !cl->cfg.region || !cl->cfg.access_key ||
	    !cl->cfg.secret_key ||
	    (cfg->session_token && !cl->cfg.session_token) ||
	    (cfg->ca_file && !cl->cfg.ca_file)) {
		snprintf(err, errlen, "out of memory");
		client_free(cl);
		return -1;
	}
	if (parse_endpoint(cl, err, errlen)) {
		client_free(cl);
		return -1;
	}
	cl->multi = curl_multi_init();
	if (!cl->multi) {
		snprintf(err, errlen, "curl_multi_init failed");
		client_free(cl);
		return -1;
	}
	curl_multi_setopt(cl->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
			  (long)cl->cfg.connections);
	curl_multi_setopt(cl->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			  (long)cl->cfg.connections);
	/* Keep every connection of the pool open between bursts. */
	curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS,
			  (long)cl->cfg.connections);
	if (pthread_create(&cl->thread, NULL, event_thread, cl)) {
		snprintf(err, errlen, "cannot start the S3 event thread");
		client_free(cl);
		return -1;
	}
	*out = &cl->base;
	return 0;
}

/* synchronous helpers */

struct waiter {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done;
};

static void run_done(struct s3_req *req)
{
	struct waiter *w = req->priv;

	pthread_mutex_lock(&w->m);
	w->done = true;
	pthread_cond_signal(&w->c);
	pthread_mutex_unlock(&w->m);
}

int s3_run(struct s3_client *c, struct s3_req *req)
{
	struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			   false};
	void (*done)(struct s3_req *) = req->done;
	void *priv = req->priv;

	req->done = run_done;
	req->priv = &w;
	s3_submit(c, req);
	pthread_mutex_lock(&w.m);
	while (!w.done)
		pthread_cond_wait(&w.c, &w.m);
	pthread_mutex_unlock(&w.m);
	pthread_cond_destroy(&w.c);
	pthread_mutex_destroy(&w.m);
	req->done = done;
	req->priv = priv;
	return req->err;
}

void s3_req_reset(struct s3_req *req)
{
	free(req->body.data);
	memset(&req->body, 0, sizeof(req->body));
	req->err = 0;
	req->http_status = 0;
	req->code[0] = req->message[0] = req->etag[0] = 0;
	req->object_size = 0;
	req->got = 0;
	req->retries = 0;
}

const char *s3_strerror(const struct s3_req *req, char *buf, size_t len)
{
	if (!req->err) {
		snprintf(buf, len, "success");
	} else if (req->code[0] && req->http_status) {
		snprintf(buf, len, "%s: %s (HTTP %d)", req->code,
			 req->message[0] ? req->message : "no message",
			 req->http_status);
	} else if (req->http_status) {
		snprintf(buf, len, "%s (HTTP %d)",
			 req->message[0] ? req->message : strerror(-req->err),
			 req->http_status);
	} else {
		snprintf(buf, len, "%s",
			 req->message[0] ? req->message : strerror(-req->err));
	}
	return buf;
}

static int fail(struct s3_req *req, const char *what, char *err, size_t errlen)
{
	char b[400];

	if (err && errlen)
		snprintf(err, errlen, "%s: %s", what,
			 s3_strerror(req, b, sizeof(b)));
	return req->err;
}

void s3_objects_free(struct s3_object *objs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(objs[i].key);
	free(objs);
}

int s3_list(struct s3_client *c, const char *bucket, const char *prefix,
	    struct s3_object **objs, size_t *n, char *err, size_t errlen)
{
	struct s3_xml_list l = {0};
	char *token = NULL;
	int r = 0;

	*objs = NULL;
	*n = 0;
	do {
		struct s3_req req = {.method = S3_GET, .bucket = bucket};
		unsigned np = 0;

		req.params[np++] = (struct s3_param){"list-type", "2"};
		if (prefix && *prefix)
			req.params[np++] = (struct s3_param){"prefix", prefix};
		if (token)
			req.params[np++] =
				(struct s3_param){"continuation-token", token};
		req.nr_params = np;
		r = s3_run(c, &req);
		if (r) {
			fail(&req, "list", err, errlen);
			s3_req_reset(&req);
			break;
		}
		r = s3_xml_list_page(req.body.data, req.body.len, &l);
		s3_req_reset(&req);
		if (r) {
			snprintf(err, errlen, "list: %s",
				 r == -EPROTO ? "the answer is not an S3 "
						"ListBucketResult"
					      : strerror(-r));
			break;
		}
		free(token);
		token = l.next_token;
		l.next_token = NULL;
		if (l.truncated && !token) {
			snprintf(
				err, errlen,
				"list: truncated without a continuation token");
			r = -EPROTO;
			break;
		}
	} while (l.truncated);
	free(token);
	free(l.next_token);
	if (r) {
		s3_objects_free(l.objs, l.n);
		return r;
	}
	*objs = l.objs;
	*n = l.n;
	return 0;
}

int s3_delete_keys(struct s3_client *c, const char *bucket,
		   const char *const *keys, size_t n, char *err, size_t errlen)
{
	size_t done = 0;

	while (done < n) {
		size_t batch = n - done > 1000 ? 1000 : n - done, i, nerr = 0;
		struct s3_req req = {.method = S3_POST, .bucket = bucket};
		struct s3_buf x = {0};
		struct iovec iov;
		char first[400];
		int r;

		buf_add(&x, "<Delete><Quiet>true</Quiet>", 27, SIZE_MAX);
		for (i = 0; i < batch; i++) {
			char *k = s3_xml_escape(keys[done + i]);

			if (!k) {
				free(x.data);
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			buf_add(&x, "<Object><Key>", 13, SIZE_MAX);
			buf_add(&x, k, strlen(k), SIZE_MAX);
			buf_add(&x, "</Key></Object>", 15, SIZE_MAX);
			free(k);
		}
		buf_add(&x, "</Delete>", 9, SIZE_MAX);
		iov.iov_base = x.data;
		iov.iov_len = x.len;
		req.iov = &iov;
		req.iovcnt = 1;
		req.content_type = "application/xml";
		req.params[0] = (struct s3_param){"delete", NULL};
		req.nr_params = 1;
		r = s3_run(c, &req);
		free(x.data);
		if (r) {
			fail(&req, "delete", err, errlen);
			s3_req_reset(&req);
			return r;
		}
		r = s3_xml_delete_result(req.body.data, req.body.len, &nerr,
					 first, sizeof(first));
		s3_req_reset(&req);
		if (r) {
			snprintf(
				err, errlen,
				"delete: the answer is not an S3 DeleteResult");
			return r;
		}
		if (nerr) {
			snprintf(err, errlen,
				 "delete: %zu keys not deleted: %s", nerr,
				 first);
			return -EIO;
		}
		done += batch;
	}
	return 0;
}

int s3_head_bucket(struct s3_client *c, const char *bucket, char *err,
		   size_t errlen)
{
	struct s3_req req = {.method = S3_HEAD, .bucket = bucket};
	int r = s3_run(c, &req);

	if (r && r != -EPROTO && req.http_status && !req.code[0]) {
		/*
		 * A HEAD's error has no body: ask again with a GET (a listing
		 * of no keys) to get S3's code and message for the user.
		 */
		struct s3_req g = {.method = S3_GET, .bucket = bucket};

		g.params[0] = (struct s3_param){"list-type", "2"};
		g.params[1] = (struct s3_param){"max-keys", "0"};
		g.nr_params = 2;
		if (s3_run(c, &g) && g.code[0]) {
			s3_req_reset(&req);
			r = fail(&g, bucket, err, errlen);
			s3_req_reset(&g);
			return r;
		}
		s3_req_reset(&g);
	}
	if (r)
		fail(&req, bucket, err, errlen);
	s3_req_reset(&req);
	return r;
}

int s3_create_bucket(struct s3_client *c, const char *bucket, char *err,
		     size_t errlen)
{
	struct client *cl = (struct client *)c;
	struct s3_req req = {.method = S3_PUT, .bucket = bucket};
	char *body = NULL;
	struct iovec iov;
	int r;

	/* Outside us-east-1, S3 wants the region in the body. */
	if (c->ops == &client_ops && strcmp(cl->cfg.region, "us-east-1")) {
		if (asprintf(
			    &body,
			    "<CreateBucketConfiguration><LocationConstraint>%s"
			    "</LocationConstraint></CreateBucketConfiguration>",
			    cl->cfg.region) < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		iov.iov_base = body;
		iov.iov_len = strlen(body);
		req.iov = &iov;
		req.iovcnt = 1;
	}
	r = s3_run(c, &req);
	free(body);

	if (r)
		fail(&req, bucket, err, errlen);
	s3_req_reset(&req);
	return r;
}
