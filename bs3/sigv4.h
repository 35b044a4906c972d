/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * AWS Signature Version 4 (internal to the S3 client; the unit test checks
 * it against AWS's published vectors).  Pure functions: no I/O, no clock.
 */
#ifndef BS3_SIGV4_H
#define BS3_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "s3.h"

struct sigv4_header {
	const char *name;  /* any case; lowercased for signing */
	const char *value; /* trimmed, inner runs of spaces collapsed */
};

struct sigv4_req {
	const char *method;
	/* The path, unencoded ("/bucket/a key"): encoded except '/' (S3 style). */
	const char *path;
	const struct s3_param *params; /* unencoded; sorted and encoded here */
	unsigned nr_params;
	/* Every header to sign, host and x-amz-date included; unique names. */
	const struct sigv4_header *headers;
	unsigned nr_headers;
	const char *
		payload_hash; /* hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
	const char *
		amz_date; /* "20150830T123600Z" (its first 8 chars: the scope date) */
	const char *region;
	const char *service; /* "s3" */
	const char *access_key;
	const char *secret_key;
};

/* Every intermediate string, so the tests can say which step is wrong. */
struct sigv4_out {
	char *canonical_request;
	char *string_to_sign;
	char *signed_headers;
	char *authorization; /* the Authorization header's value */
	char signature[65];
};

/* Sign; 0, or -ENOMEM / -EINVAL (too many headers, bad date). */
int sigv4_sign(const struct sigv4_req *r, struct sigv4_out *out);
void sigv4_out_free(struct sigv4_out *out);

/*
 * RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9
 * - _ . ~ (and '/' when keep_slash) as %XX with upper-case hex.  malloc'd.
 */
char *sigv4_uri_encode(const char *s, bool keep_slash);

/*
 * The canonical query string (names and values encoded, sorted by name then
 * value, "name=" for a bare name), also what the client puts in the URL so
 * the two can never differ.  malloc'd ("" for no params).
 */
char *sigv4_query(const struct s3_param *params, unsigned n);

/* Lower-case hex SHA-256 of a buffer / of the concatenated iovecs. */
void sigv4_sha256_hex(const void *data, size_t len, char hex[65]);
void sigv4_sha256_iov_hex(const struct iovec *iov, unsigned iovcnt,
			  char hex[65]);

/* The SHA-256 of an empty body, which every GET/HEAD/DELETE signs. */
#define SIGV4_EMPTY_SHA256                                                     \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#endif /* BS3_SIGV4_H */
