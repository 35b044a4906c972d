// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * AWS Signature Version 4 on OpenSSL 3: SHA-256 through EVP, HMAC-SHA256
 * through the one-shot HMAC() (not deprecated, unlike HMAC_CTX).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"

#define SIGV4_MAX_HEADERS 32

/* A growable string; a failed allocation sticks, checked once at the end. */
struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_chr(struct sb *b, char c)
{
	sb_add(b, &c, 1);
}

/* Take the string (never NULL unless out of memory). */
static char *sb_take(struct sb *b)
{
	if (b->oom) {
		free(b->p);
		return NULL;
	}
	if (!b->p)
		return strdup("");
	return b->p;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

static void sb_encode(struct sb *b, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (unreserved(c) || (keep_slash && c == '/')) {
			sb_chr(b, (char)c);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			sb_add(b, e, 3);
		}
	}
}

char *sigv4_uri_encode(const char *s, bool keep_slash)
{
	struct sb b = {0};

	sb_encode(&b, s, keep_slash);
	return sb_take(&b);
}

struct enc_param {
	char *name;
	char *value;
};

static int cmp_param(const void *a, const void *b)
{
	const struct enc_param *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	return r ? r : strcmp(x->value, y->value);
}

char *sigv4_query(const struct s3_param *params, unsigned n)
{
	struct enc_param *e;
	struct sb b = {0};
	unsigned i;
	bool oom = false;

	if (!n)
		return strdup("");
	e = calloc(n, sizeof(*e));
	if (!e)
		return NULL;
	for (i = 0; i < n; i++) {
		e[i].name = sigv4_uri_encode(params[i].name, false);
		e[i].value = sigv4_uri_encode(
			params[i].value ? params[i].value : "", false);
		if (!e[i].name || !e[i].value)
			oom = true;
	}
	/* Sorting the encoded forms sorts by byte, as SigV4 requires. */
	if (!oom)
		qsort(e, n, sizeof(*e), cmp_param);
	for (i = 0; i < n; i++) {
		if (!oom) {
			if (i)
				sb_chr(&b, '&');
			sb_str(&b, e[i].name);
			sb_chr(&b, '=');
			sb_str(&b, e[i].value);
		}
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
	if (oom) {
		free(b.p);
		return NULL;
	}
	return sb_take(&b);
}

static void to_hex(const unsigned char *d, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[2 * n] = 0;
}

void sigv4_sha256_iov_hex(const struct iovec *iov, unsigned iovcnt,
			  char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned i;

	/* Only allocation failure can fail here; abort rather than mis-sign. */
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		abort();
	for (i = 0; i < iovcnt; i++)
		if (iov[i].iov_len &&
		    !EVP_DigestUpdate(ctx, iov[i].iov_base, iov[i].iov_len))
			abort();
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen))
		abort();
	EVP_MD_CTX_free(ctx);
	to_hex(md, mdlen, hex);
}

void sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
	struct iovec v = {.iov_base = (void *)data, .iov_len = len};

	sigv4_sha256_iov_hex(&v, 1, hex);
}

static void hmac(const void *key, size_t klen, const char *msg,
		 unsigned char out[32])
{
	unsigned int len = 32;

	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
		  strlen(msg), out, &len))
		abort();
}

struct hdr {
	char *name;  /* lowercased */
	char *value; /* canonical */
};

static int cmp_hdr(const void *a, const void *b)
{
	return strcmp(((const struct hdr *)a)->name,
		      ((const struct hdr *)b)->name);
}

/* Trim and collapse runs of spaces/tabs into one space. */
static char *canon_value(const char *v)
{
	char *o = malloc(strlen(v) + 1), *p = o;
	bool sp = false;

	if (!o)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			sp = true;
			continue;
		}
		if (sp)
			*p++ = ' ';
		sp = false;
		*p++ = *v;
	}
	*p = 0;
	return o;
}

static char *lower(const char *s)
{
	char *o = strdup(s), *p;

	if (o)
		for (p = o; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	return o;
}

int sigv4_sign(const struct sigv4_req *r, struct sigv4_out *out)
{
	struct hdr h[SIGV4_MAX_HEADERS];
	struct sb creq = {0}, sh = {0}, sts = {0}, auth = {0};
	unsigned char k[32], k2[32], sig[32];
	char date[9], hash[65], *q = NULL;
	unsigned i, nh = r->nr_headers;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (nh > SIGV4_MAX_HEADERS || strlen(r->amz_date) != 16)
		return -EINVAL;
	memcpy(date, r->amz_date, 8);
	date[8] = 0;

	memset(h, 0, sizeof(h));
	for (i = 0; i < nh; i++) {
		h[i].name = lower(r->headers[i].name);
		h[i].value = canon_value(r->headers[i].value);
		if (!h[i].name || !h[i].value)
			goto out;
	}
	qsort(h, nh, sizeof(h[0]), cmp_hdr);

	q = sigv4_query(r->params, r->nr_params);
	if (!q)
		goto out;
	sb_str(&creq, r->method);
	sb_chr(&creq, '\n');
	sb_encode(&creq, r->path && *r->path ? r->path : "/", true);
	sb_chr(&creq, '\n');
	sb_str(&creq, q);
	sb_chr(&creq, '\n');
	for (i = 0; i < nh; i++) {
		sb_str(&creq, h[i].name);
		sb_chr(&creq, ':');
		sb_str(&creq, h[i].value);
		sb_chr(&creq, '\n');
		if (i)
			sb_chr(&sh, ';');
		sb_str(&sh, h[i].name);
	}
	sb_chr(&creq, '\n');
	sb_str(&creq, sh.p ? sh.p : "");
	sb_chr(&creq, '\n');
	sb_str(&creq, r->payload_hash);
	if (creq.oom || sh.oom)
		goto out;

	sigv4_sha256_hex(creq.p, creq.len, hash);
	sb_str(&sts, "AWS4-HMAC-SHA256\n");
	sb_str(&sts, r->amz_date);
	sb_chr(&sts, '\n');
	sb_str(&sts, date);
	sb_chr(&sts, '/');
	sb_str(&sts, r->region);
	sb_chr(&sts, '/');
	sb_str(&sts, r->service);
	sb_str(&sts, "/aws4_request\n");
	sb_str(&sts, hash);
	if (sts.oom)
		goto out;

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
	{
		size_t sl = strlen(r->secret_key);
		char *ks = malloc(sl + 5);

		if (!ks)
			goto out;
		memcpy(ks, "AWS4", 4);
		memcpy(ks + 4, r->secret_key, sl + 1);
		hmac(ks, sl + 4, date, k);
		OPENSSL_cleanse(ks, sl + 4);
		free(ks);
	}
	hmac(k, 32, r->region, k2);
	hmac(k2, 32, r->service, k);
	hmac(k, 32, "aws4_request", k2);
	hmac(k2, 32, sts.p, sig);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(k2, sizeof(k2));
	to_hex(sig, 32, out->signature);

	sb_str(&auth, "AWS4-HMAC-SHA256 Credential=");
	sb_str(&auth, r->access_key);
	sb_chr(&auth, '/');
	sb_str(&auth, date);
	sb_chr(&auth, '/');
	sb_str(&auth, r->region);
	sb_chr(&auth, '/');
	sb_str(&auth, r->service);
	sb_str(&auth, "/aws4_request, SignedHeaders=");
	sb_str(&auth, sh.p ? sh.p : "");
	sb_str(&auth, ", Signature=");
	sb_str(&auth, out->signature);
	if (auth.oom)
		goto out;

	out->canonical_request = sb_take(&creq);
	out->string_to_sign = sb_take(&sts);
	out->signed_headers = sb_take(&sh);
	out->authorization = sb_take(&auth);
	creq.p = sts.p = sh.p = auth.p = NULL;
	if (!out->canonical_request || !out->string_to_sign ||
	    !out->signed_headers || !out->authorization) {
		sigv4_out_free(out);
		goto out;
	}
	ret = 0;
out:
	for (i = 0; i < nh; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(q);
	free(creq.p);
	free(sh.p);
	free(sts.p);
	free(auth.p);
	return ret;
}

void sigv4_out_free(struct sigv4_out *out)
{
	free(out->canonical_request);
	free(out->string_to_sign);
	free(out->signed_headers);
	free(out->authorization);
	memset(out, 0, sizeof(*out));
}
