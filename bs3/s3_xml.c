// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * S3's XML on libexpat.  Expat decodes entities (&amp; in a key) and may
 * deliver one text node in pieces, so text is gathered until its end tag.
 * Names are compared without namespaces: S3 puts its xmlns on the root.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "s3_xml.h"

#define XML_MAX_DEPTH 8

struct xp {
	XML_Parser p;
	char *names[XML_MAX_DEPTH]; /* the open elements, root first */
	int depth;
	char *text;
	size_t tlen, tcap;
	bool oom;
	void (*end)(struct xp *x, const char *text);
	void *priv;
};

/* True when the open elements are exactly the given path. */
static bool at(struct xp *x, int n, ...)
{
	va_list ap;
	int i;
	bool ok = x->depth == n;

	va_start(ap, n);
	for (i = 0; ok && i < n; i++)
		ok = !strcmp(x->names[i], va_arg(ap, const char *));
	va_end(ap);
	return ok;
}

static void XMLCALL on_start(void *ud, const XML_Char *name,
			     const XML_Char **attrs)
{
	struct xp *x = ud;

	if (x->depth < XML_MAX_DEPTH) {
		x->names[x->depth] = strdup(name);
		if (!x->names[x->depth])
			x->oom = true;
	}
	x->depth++;
	x->tlen = 0;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xp *x = ud;

	if (x->depth <= XML_MAX_DEPTH && !x->oom && x->end)
		x->end(x, x->text ? x->text : "");
	x->depth--;
	if (x->depth < XML_MAX_DEPTH) {
		free(x->names[x->depth]);
		x->names[x->depth] = NULL;
	}
	x->tlen = 0;
	if (x->text)
		x->text[0] = 0;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct xp *x = ud;

	if (x->oom)
		return;
	if (x->tlen + (size_t)len + 1 > x->tcap) {
		size_t cap = x->tcap ? x->tcap * 2 : 256;
		char *t;

		while (cap < x->tlen + (size_t)len + 1)
			cap *= 2;
		t = realloc(x->text, cap);
		if (!t) {
			x->oom = true;
			return;
		}
		x->text = t;
		x->tcap = cap;
	}
	memcpy(x->text + x->tlen, s, (size_t)len);
	x->tlen += (size_t)len;
	x->text[x->tlen] = 0;
}

/* Parse the whole body; 0, -EPROTO (not XML), -ENOMEM. */
static int xp_parse(struct xp *x, const char *body, size_t len,
		    void (*end)(struct xp *, const char *), void *priv)
{
	int ret = 0, i;

	memset(x, 0, sizeof(*x));
	x->end = end;
	x->priv = priv;
	x->p = XML_ParserCreate(NULL);
	if (!x->p)
		return -ENOMEM;
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	if (XML_Parse(x->p, body, (int)len, 1) == XML_STATUS_ERROR)
		ret = -EPROTO;
	if (x->oom)
		ret = -ENOMEM;
	for (i = 0; i < XML_MAX_DEPTH; i++)
		free(x->names[i]);
	free(x->text);
	XML_ParserFree(x->p);
	return ret;
}

static void copy(char *dst, size_t n, const char *s)
{
	if (n)
		snprintf(dst, n, "%s", s);
}

/* Error documents */

struct err_ctx {
	char *code, *msg;
	size_t codelen, msglen;
	bool root;
};

static void err_end(struct xp *x, const char *text)
{
	struct err_ctx *e = x->priv;

	if (at(x, 1, "Error"))
		e->root = true;
	else if (at(x, 2, "Error", "Code"))
		copy(e->code, e->codelen, text);
	else if (at(x, 2, "Error", "Message"))
		copy(e->msg, e->msglen, text);
}

int s3_xml_error(const char *body, size_t len, char *code, size_t codelen,
		 char *msg, size_t msglen)
{
	struct err_ctx e = {code, msg, codelen, msglen, false};
	struct xp x;

	copy(code, codelen, "");
	copy(msg, msglen, "");
	if (!body || !len)
		return -1;
	if (xp_parse(&x, body, len, err_end, &e) || !e.root)
		return -1;
	return 0;
}

/* ListObjectsV2 */

struct list_ctx {
	struct s3_xml_list *l;
	bool root;
	int err;
	struct s3_object cur;
};

static void list_end(struct xp *x, const char *text)
{
	struct list_ctx *c = x->priv;
	struct s3_xml_list *l = c->l;

	if (at(x, 1, "ListBucketResult")) {
		c->root = true;
	} else if (at(x, 2, "ListBucketResult", "IsTruncated")) {
		l->truncated = !strcmp(text, "true");
	} else if (at(x, 2, "ListBucketResult", "NextContinuationToken")) {
		free(l->next_token);
		l->next_token = strdup(text);
		if (!l->next_token)
			c->err = -ENOMEM;
	} else if (at(x, 3, "ListBucketResult", "Contents", "Key")) {
		free(c->cur.key);
		c->cur.key = strdup(text);
		if (!c->cur.key)
			c->err = -ENOMEM;
	} else if (at(x, 3, "ListBucketResult", "Contents", "Size")) {
		c->cur.size = strtoull(text, NULL, 10);
	} else if (at(x, 3, "ListBucketResult", "Contents", "ETag")) {
		const char *s = text;
		size_t n;

		if (*s == '"')
			s++;
		n = strlen(s);
		if (n && s[n - 1] == '"')
			n--;
		if (n >= sizeof(c->cur.etag))
			n = sizeof(c->cur.etag) - 1;
		memcpy(c->cur.etag, s, n);
		c->cur.etag[n] = 0;
	} else if (at(x, 2, "ListBucketResult", "Contents")) {
		if (!c->cur.key) /* a Contents without a Key: skip it */
			return;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 256;
			struct s3_object *o =
				realloc(l->objs, cap * sizeof(*o));

			if (!o) {
				c->err = -ENOMEM;
				return;
			}
			l->objs = o;
			l->cap = cap;
		}
		l->objs[l->n++] = c->cur;
		memset(&c->cur, 0, sizeof(c->cur));
	}
}

int s3_xml_list_page(const char *body, size_t len, struct s3_xml_list *l)
{
	struct list_ctx c = {.l = l};
	struct xp x;
	int r;

	l->truncated = false;
	free(l->next_token);
	l->next_token = NULL;
	if (!body || !len)
		return -EPROTO;
	r = xp_parse(&x, body, len, list_end, &c);
	free(c.cur.key);
	if (r)
		return r;
	if (c.err)
		return c.err;
	return c.root ? 0 : -EPROTO;
}

/* DeleteObjects */

struct del_ctx {
	bool root;
	size_t nerr;
	char key[256], code[64], msg[256];
	char *first;
	size_t firstlen;
};

static void del_end(struct xp *x, const char *text)
{
	struct del_ctx *d = x->priv;

	if (at(x, 1, "DeleteResult")) {
		d->root = true;
	} else if (at(x, 3, "DeleteResult", "Error", "Key")) {
		copy(d->key, sizeof(d->key), text);
	} else if (at(x, 3, "DeleteResult", "Error", "Code")) {
		copy(d->code, sizeof(d->code), text);
	} else if (at(x, 3, "DeleteResult", "Error", "Message")) {
		copy(d->msg, sizeof(d->msg), text);
	} else if (at(x, 2, "DeleteResult", "Error")) {
		if (strcmp(d->code, "NoSuchKey")) {
			if (!d->nerr && d->first && d->firstlen)
				snprintf(d->first, d->firstlen, "%s: %s: %s",
					 d->key, d->code, d->msg);
			d->nerr++;
		}
		d->key[0] = d->code[0] = d->msg[0] = 0;
	}
}

int s3_xml_delete_result(const char *body, size_t len, size_t *nerrors,
			 char *first, size_t firstlen)
{
	struct del_ctx d = {.first = first, .firstlen = firstlen};
	struct xp x;
	int r;

	copy(first, firstlen, "");
	*nerrors = 0;
	if (!body || !len)
		return -EPROTO;
	r = xp_parse(&x, body, len, del_end, &d);
	if (r)
		return r;
	*nerrors = d.nerr;
	return d.root ? 0 : -EPROTO;
}

char *s3_xml_escape(const char *s)
{
	size_t n = 0;
	const char *p;
	char *o, *q;

	for (p = s; *p; p++)
		n += *p == '&'			 ? 5
		     : (*p == '<' || *p == '>')	 ? 4
		     : (*p == '"' || *p == '\'') ? 6
						 : 1;
	o = malloc(n + 1);
	if (!o)
		return NULL;
	for (p = s, q = o; *p; p++) {
		const char *e = NULL;

		switch (*p) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&apos;";
			break;
		}
		if (e) {
			size_t l = strlen(e);

			memcpy(q, e, l);
			q += l;
		} else {
			*q++ = *p;
		}
	}
	*q = 0;
	return o;
}
