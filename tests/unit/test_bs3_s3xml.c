// SPDX-License-Identifier: LGPL-2.1-or-later
/* S3's XML documents through expat: errors, listing pages, delete results. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3_xml.h"

#define LEN(s) (sizeof(s) - 1)

static void error_doc(void **state)
{
	static const char ok[] =
		"<?xml version='1.0' encoding='UTF-8'?>\n"
		"<Error><Code>NoSuchKey</Code><Message>The specified key does "
		"not exist &amp; never did.</Message><Key>a</Key></Error>";
	static const char html[] = "<html><body>400 Bad Request</body></html>";
	static const char plain[] = "Bad Request";
	char code[64], msg[256], tiny[8];

	assert_int_equal(
		s3_xml_error(ok, LEN(ok), code, sizeof(code), msg, sizeof(msg)),
		0);
	assert_string_equal(code, "NoSuchKey");
	assert_string_equal(msg,
			    "The specified key does not exist & never did.");
	/* Truncated to fit, still terminated. */
	assert_int_equal(
		s3_xml_error(ok, LEN(ok), tiny, sizeof(tiny), msg, sizeof(msg)),
		0);
	assert_string_equal(tiny, "NoSuchK");
	assert_int_equal(s3_xml_error(html, LEN(html), code, sizeof(code), msg,
				      sizeof(msg)),
			 -1);
	assert_int_equal(s3_xml_error(plain, LEN(plain), code, sizeof(code),
				      msg, sizeof(msg)),
			 -1);
	assert_int_equal(
		s3_xml_error(ok, 40, code, sizeof(code), msg, sizeof(msg)),
		-1); /* torn */
	assert_int_equal(
		s3_xml_error(NULL, 0, code, sizeof(code), msg, sizeof(msg)),
		-1);
}

static const char page1[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>b</Name><Prefix>v/</Prefix><KeyCount>2</KeyCount>"
	"<IsTruncated>true</IsTruncated>"
	"<NextContinuationToken>tok+/=1</NextContinuationToken>"
	"<Contents><Key>v/a&amp;b&lt;c</Key><Size>4194304</Size>"
	"<ETag>&quot;0123abcd&quot;</ETag></Contents>"
	"<Contents><Key>v/b</Key><Size>0</Size><ETag>\"ff\"</ETag>"
	"<Owner><ID>x</ID><DisplayName>y</DisplayName></Owner></Contents>"
	"</ListBucketResult>";
static const char page2[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
			    "<Contents><Key>v/c</Key><Size>12</Size></Contents>"
			    "</ListBucketResult>";

static void list_pages(void **state)
{
	struct s3_xml_list l = {0};

	assert_int_equal(s3_xml_list_page(page1, LEN(page1), &l), 0);
	assert_true(l.truncated);
	assert_string_equal(l.next_token, "tok+/=1");
	assert_int_equal(l.n, 2);
	assert_string_equal(l.objs[0].key, "v/a&b<c");
	assert_int_equal(l.objs[0].size, 4194304);
	assert_string_equal(l.objs[0].etag, "0123abcd");
	assert_string_equal(l.objs[1].key, "v/b");
	assert_string_equal(l.objs[1].etag, "ff");

	assert_int_equal(s3_xml_list_page(page2, LEN(page2), &l), 0);
	assert_false(l.truncated);
	assert_null(l.next_token);
	assert_int_equal(l.n, 3); /* appended */
	assert_string_equal(l.objs[2].key, "v/c");
	assert_int_equal(l.objs[2].size, 12);
	s3_objects_free(l.objs, l.n);
}

static void list_not_s3(void **state)
{
	static const char err[] = "<Error><Code>AccessDenied</Code></Error>";
	static const char html[] = "<html><p>hi</p></html>";
	static const char torn[] = "<ListBucketResult><Contents><Key>a";
	struct s3_xml_list l = {0};

	assert_int_equal(s3_xml_list_page(err, LEN(err), &l), -EPROTO);
	assert_int_equal(s3_xml_list_page(html, LEN(html), &l), -EPROTO);
	assert_int_equal(s3_xml_list_page(torn, LEN(torn), &l), -EPROTO);
	assert_int_equal(s3_xml_list_page("", 0, &l), -EPROTO);
	assert_int_equal(l.n, 0);
	s3_objects_free(l.objs, l.n);
}

static void delete_result(void **state)
{
	static const char ok[] =
		"<DeleteResult "
		"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Deleted><Key>a</Key></Deleted>"
		"<Error><Key>gone</Key><Code>NoSuchKey</Code><Message>m</"
		"Message></Error>"
		"</DeleteResult>";
	static const char bad[] =
		"<DeleteResult>"
		"<Error><Key>k1</Key><Code>AccessDenied</Code><Message>Access "
		"Denied</Message></Error>"
		"<Error><Key>k2</Key><Code>InternalError</Code><Message>x</"
		"Message></Error>"
		"</DeleteResult>";
	char first[256];
	size_t n = 99;

	assert_int_equal(
		s3_xml_delete_result(ok, LEN(ok), &n, first, sizeof(first)), 0);
	assert_int_equal(n, 0); /* NoSuchKey: already deleted */
	assert_int_equal(
		s3_xml_delete_result(bad, LEN(bad), &n, first, sizeof(first)),
		0);
	assert_int_equal(n, 2);
	assert_string_equal(first, "k1: AccessDenied: Access Denied");
	assert_int_equal(
		s3_xml_delete_result("<x/>", 4, &n, first, sizeof(first)),
		-EPROTO);
}

static void escape(void **state)
{
	char *s = s3_xml_escape("a&b<c>d\"e'f/g");

	assert_string_equal(s, "a&amp;b&lt;c&gt;d&quot;e&apos;f/g");
	free(s);
	s = s3_xml_escape("");
	assert_string_equal(s, "");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(error_doc),   cmocka_unit_test(list_pages),
		cmocka_unit_test(list_not_s3), cmocka_unit_test(delete_result),
		cmocka_unit_test(escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
