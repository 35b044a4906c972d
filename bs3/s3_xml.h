/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* S3's XML documents, parsed with libexpat (internal to the S3 client). */
#ifndef BS3_S3_XML_H
#define BS3_S3_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "s3.h"

/*
 * An <Error> document: 0 with Code and Message copied (truncated to fit),
 * -1 if the body is not well-formed XML with an <Error> root (e.g. an
 * HTML page from something that is not S3).
 */
int s3_xml_error(const char *body, size_t len, char *code, size_t codelen,
		 char *msg, size_t msglen);

/* One page of ListObjectsV2 (a <ListBucketResult>), appended to a list. */
struct s3_xml_list {
	struct s3_object *objs;
	size_t n, cap;
	bool truncated;
	char *next_token; /* NextContinuationToken, malloc'd, or NULL */
};

/* 0, -EPROTO if not a ListBucketResult, -ENOMEM. */
int s3_xml_list_page(const char *body, size_t len, struct s3_xml_list *l);

/*
 * A <DeleteResult>: the number of <Error> entries other than NoSuchKey
 * (deleting what is gone is success), the first one described in first.
 * 0, or -EPROTO if not a DeleteResult.
 */
int s3_xml_delete_result(const char *body, size_t len, size_t *nerrors,
			 char *first, size_t firstlen);

/* XML-escape s (& < > " ') onto a malloc'd string; NULL on ENOMEM. */
char *s3_xml_escape(const char *s);

#endif /* BS3_S3_XML_H */
