// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * SigV4 against AWS's published vectors: cases of the aws-sig-v4-test-suite
 * (service "service", AKIDEXAMPLE, 20150830T123600Z) and the S3 API
 * reference's header-signing examples (examplebucket, 20130524T000000Z).
 * Each case asserts the canonical request or string to sign as well as the
 * signature, so a failure says which step broke.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sigv4.h"

#define SUITE_AK    "AKIDEXAMPLE"
#define SUITE_SK    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE  "20150830T123600Z"
#define SUITE_HOST  "example.amazonaws.com"
#define SUITE_SCOPE "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"

#define S3_AK	"AKIAIOSFODNN7EXAMPLE"
#define S3_SK	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"

static struct sigv4_req suite_req(const char *method)
{
	struct sigv4_req r = {
		.method = method,
		.path = "/",
		.payload_hash = SIGV4_EMPTY_SHA256,
		.amz_date = SUITE_DATE,
		.region = "us-east-1",
		.service = "service",
		.access_key = SUITE_AK,
		.secret_key = SUITE_SK,
	};
	return r;
}

static struct sigv4_req s3_req(const char *method, const char *path)
{
	struct sigv4_req r = {
		.method = method,
		.path = path,
		.payload_hash = SIGV4_EMPTY_SHA256,
		.amz_date = S3_DATE,
		.region = "us-east-1",
		.service = "s3",
		.access_key = S3_AK,
		.secret_key = S3_SK,
	};
	return r;
}

/* Hash of the canonical request, the last line of the string to sign. */
static const char *sts_hash(const struct sigv4_out *o)
{
	const char *p = strrchr(o->string_to_sign, '\n');

	return p ? p + 1 : "";
}

static void get_vanilla(void **state)
{
	struct sigv4_header h[] = {
		{"Host", SUITE_HOST},
		{"X-Amz-Date", SUITE_DATE},
	};
	struct sigv4_req r = suite_req("GET");
	struct sigv4_out o;

	r.headers = h;
	r.nr_headers = 2;
	assert_int_equal(sigv4_sign(&r, &o), 0);
	assert_string_equal(o.canonical_request,
			    "GET\n/\n\nhost:example.amazonaws.com\n"
			    "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4"
			    "95991b7852b855");
	assert_string_equal(o.string_to_sign,
			    "AWS4-HMAC-SHA256\n20150830T123600Z\n"
			    "20150830/us-east-1/service/aws4_request\n"
			    "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6"
			    "e1c25292927e63");
	assert_string_equal(o.signature, "5fa00fa31553b73ebf1942676e86291e8372f"
					 "f2a2260956d9b8aae1d763fbf31");
	assert_string_equal(o.authorization,
			    "AWS4-HMAC-SHA256 Credential=" SUITE_SCOPE
			    ", SignedHeaders=host;x-amz-date, Signature="
			    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b"
			    "8aae1d763fbf31");
	sigv4_out_free(&o);
}

/* Parameters given out of order must be sorted by name. */
static void get_vanilla_query_order_key_case(void **state)
{
	struct sigv4_header h[] = {
		{"Host", SUITE_HOST},
		{"X-Amz-Date", SUITE_DATE},
	};
	struct s3_param p[] = {{"Param2", "value2"}, {"Param1", "value1"}};
	struct sigv4_req r = suite_req("GET");
	struct sigv4_out o;

	r.headers = h;
	r.nr_headers = 2;
	r.params = p;
	r.nr_params = 2;
	assert_int_equal(sigv4_sign(&r, &o), 0);
	assert_non_null(strstr(o.canonical_request,
			       "\n/\nParam1=value1&Param2=value2\n"));
	assert_string_equal(sts_hash(&o), "816cd5b414d056048ba4f7c5386d6e053312"
					  "0fb1fcfa93762cf0fc39e2cf19e0");
	assert_string_equal(o.signature, "b97d918cfa904a5beff61c982a1b6f458b799"
					 "221646efd99d3219ec94cdf2500");
	sigv4_out_free(&o);
}

/* Header values are trimmed and inner runs of spaces collapsed. */
static void get_header_value_trim(void **state)
{
	struct sigv4_header h[] = {
		{"Host", SUITE_HOST},
		{"My-Header1", " value1"},
		{"My-Header2", "\"a   b   c\""},
		{"X-Amz-Date", SUITE_DATE},
	};
	struct sigv4_req r = suite_req("GET");
	struct sigv4_out o;

	r.headers = h;
	r.nr_headers = 4;
	assert_int_equal(sigv4_sign(&r, &o), 0);
	assert_non_null(strstr(o.canonical_request,
			       "my-header1:value1\nmy-header2:\"a b c\"\n"));
	assert_string_equal(o.signed_headers,
			    "host;my-header1;my-header2;x-amz-date");
	assert_string_equal(o.signature, "acc3ed3afb60bb290fc8d2dd0098b9911fcaa"
					 "05412b367055dee359757a9c736");
	sigv4_out_free(&o);
}

/* A body: its hash is the payload line; a header given in any case. */
static void post_x_www_form_urlencoded(void **state)
{
	static const char body[] = "Param1=value1";
	struct sigv4_header h[] = {
		{"X-Amz-Date", SUITE_DATE},
		{"Content-Type", "application/x-www-form-urlencoded"},
		{"Host", SUITE_HOST},
	};
	struct sigv4_req r = suite_req("POST");
	struct sigv4_out o;
	char hash[65];

	sigv4_sha256_hex(body, strlen(body), hash);
	assert_string_equal(hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a6541923"
				  "29106275f4c7b24d0b6e");
	r.headers = h;
	r.nr_headers = 3;
	r.payload_hash = hash;
	assert_int_equal(sigv4_sign(&r, &o), 0);
	assert_string_equal(o.canonical_request,
			    "POST\n/\n\n"
			    "content-type:application/x-www-form-urlencoded\n"
			    "host:example.amazonaws.com\n"
			    "x-amz-date:20150830T123600Z\n\n"
			    "content-type;host;x-amz-date\n"
			    "9095672bbd1f56dfc5b65f3e153adc8731a4a6541923291062"
			    "75f4c7b24d0b6e");
	assert_string_equal(sts_hash(&o), "42a5e5bb34198acb3e84da4f085bb7927f2b"
					  "c277ca766e6d19c73c2154021281");
	assert_string_equal(o.signature, "ff11897932ad3f4e8b18135d722051e5ac45f"
					 "c38421b1da7b9d196a0fe09473a");
	sigv4_out_free(&o);
}

#define STS_TOKEN                                                              \
	"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"  \
	"LWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGd"  \
	"QrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU"  \
	"9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz"  \
	"+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

/* post-sts-header-before: the session token is a signed header. */
static void post_sts_header_before(void **state)
{
	struct sigv4_header h[] = {
		{"Host", SUITE_HOST},
		{"X-Amz-Date", SUITE_DATE},
		{"X-Amz-Security-Token", STS_TOKEN},
	};
	struct sigv4_req r = suite_req("POST");
	struct sigv4_out o;

	r.headers = h;
	r.nr_headers = 3;
	assert_int_equal(sigv4_sign(&r, &o), 0);
	assert_string_equal(o.signed_headers,
			    "host;x-amz-date;x-amz-security-token");
	assert_string_equal(sts_hash(&o), "c237e1b440d4c63c32ca95b5b99481081cb7"
					  "b13c7e40434868e71567c1a882f6");
	assert_string_equal(o.signature, "85d96828115b5dc0cfc3bd16ad9e210dd772b"
					 "bebba041836c64533a82be05ead");
	sigv4_out_free(&o);
}

/* S3 reference: GET Object with a Range. */
static void s3_get_object_range(void **state)
{
	struct sigv4_header h[] = {
		{"Host", S3_HOST},
		{"Range", "bytes=0-9"},
		{"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
		{"x-amz-date", S3_DATE},
	};
	struct sigv4_req r = s3_req("GET", "/test.txt");
	struct sigv4_out o;

	r.headers = h;
	r.nr_headers = 4;
	assert_int_equal(sigv4_sign(&r, &o), 0);
	assert_string_equal(o.canonical_request,
			    "GET\n/test.txt\n\n"
			    "host:examplebucket.s3.amazonaws.com\n"
			    "range:bytes=0-9\n"
			    "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\n"
			    "x-amz-date:20130524T000000Z\n\n"
			    "host;range;x-amz-content-sha256;x-amz-"
			    "date\n" SIGV4_EMPTY_SHA256);
	assert_string_equal(o.string_to_sign,
			    "AWS4-HMAC-SHA256\n20130524T000000Z\n"
			    "20130524/us-east-1/s3/aws4_request\n"
			    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb"
			    "2dc43964946972");
	assert_string_equal(o.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44"
					 "f0170aba48dd91039c6036bdb41");
	assert_string_equal(
		o.authorization,
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
		"us-east-1/s3/aws4_request, SignedHeaders=host;range;"
		"x-amz-content-sha256;x-amz-date, Signature="
		"f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb"
		"41");
	sigv4_out_free(&o);
}

/* S3 reference: PUT Object; '$' in the key is encoded, '/' is not. */
static void s3_put_object(void **state)
{
	static const char body[] = "Welcome to Amazon S3.";
	struct sigv4_header h[] = {
		{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
		{"Host", S3_HOST},
		{"x-amz-date", S3_DATE},
		{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
		{"x-amz-content-sha256", NULL},
	};
	struct iovec iov[] = {
		{.iov_base = (void *)body, .iov_len = 8},
		{.iov_base = (void *)(body + 8), .iov_len = 0},
		{.iov_base = (void *)(body + 8), .iov_len = sizeof(body) - 9},
	};
	struct sigv4_req r = s3_req("PUT", "/test$file.text");
	struct sigv4_out o;
	char hash[65];

	/* The body hashed from pieces, as the client hashes a PUT's iovecs. */
	sigv4_sha256_iov_hex(iov, 3, hash);
	assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e"
				  "99e42034a8b803f8b072");
	h[4].value = hash;
	r.headers = h;
	r.nr_headers = 5;
	r.payload_hash = hash;
	assert_int_equal(sigv4_sign(&r, &o), 0);
	assert_string_equal(o.canonical_request,
			    "PUT\n/test%24file.text\n\n"
			    "date:Fri, 24 May 2013 00:00:00 GMT\n"
			    "host:examplebucket.s3.amazonaws.com\n"
			    "x-amz-content-sha256:"
			    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e420"
			    "34a8b803f8b072\n"
			    "x-amz-date:20130524T000000Z\n"
			    "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
			    "date;host;x-amz-content-sha256;x-amz-date;x-amz-"
			    "storage-class\n"
			    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e420"
			    "34a8b803f8b072");
	assert_string_equal(sts_hash(&o), "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a"
					  "3be3951ddb7f6a76b4158342019d");
	assert_string_equal(o.signature, "98ad721746da40c64f1a55b78f14c238d841e"
					 "a1380cd77a1b5971af0ece108bd");
	sigv4_out_free(&o);
}

/* S3 reference: GET Bucket Lifecycle, a bare query name signs as "name=". */
static void s3_get_bucket_lifecycle(void **state)
{
	struct sigv4_header h[] = {
		{"Host", S3_HOST},
		{"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
		{"x-amz-date", S3_DATE},
	};
	struct s3_param p[] = {{"lifecycle", NULL}};
	struct sigv4_req r = s3_req("GET", "/");
	struct sigv4_out o;

	r.headers = h;
	r.nr_headers = 3;
	r.params = p;
	r.nr_params = 1;
	assert_int_equal(sigv4_sign(&r, &o), 0);
	assert_non_null(strstr(o.canonical_request, "GET\n/\nlifecycle=\n"));
	assert_string_equal(o.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65"
					 "c699e0f91ac7a200a0136783543");
	sigv4_out_free(&o);
}

/* S3 reference: ListObjects with max-keys and prefix, given unsorted. */
static void s3_list_objects(void **state)
{
	struct sigv4_header h[] = {
		{"Host", S3_HOST},
		{"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
		{"x-amz-date", S3_DATE},
	};
	struct s3_param p[] = {{"prefix", "J"}, {"max-keys", "2"}};
	struct sigv4_req r = s3_req("GET", "/");
	struct sigv4_out o;

	r.headers = h;
	r.nr_headers = 3;
	r.params = p;
	r.nr_params = 2;
	assert_int_equal(sigv4_sign(&r, &o), 0);
	assert_non_null(
		strstr(o.canonical_request, "GET\n/\nmax-keys=2&prefix=J\n"));
	assert_string_equal(sts_hash(&o), "df57d21db20da04d7fa30298dd4488ba3a2b"
					  "47ca3a489c74750e0f1e7df1b9b7");
	assert_string_equal(o.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a5"
					 "34bc59db6670ed5711ef69dc6f7");
	sigv4_out_free(&o);
}

static void encoding(void **state)
{
	struct s3_param p[] = {
		{"prefix", "vol/d/0a/"},
		{"continuation-token", "1ab+/c=d e"},
		{"list-type", "2"},
		{"b", "2"},
		{"b", "1"},
	};
	char *s;

	s = sigv4_uri_encode("/bkt/a b/c~d-e_f.g+h%=é", true);
	assert_string_equal(s, "/bkt/a%20b/c~d-e_f.g%2Bh%25%3D%C3%A9");
	free(s);
	s = sigv4_uri_encode("a/b", false);
	assert_string_equal(s, "a%2Fb");
	free(s);
	s = sigv4_query(p, 5);
	assert_string_equal(s, "b=1&b=2&continuation-token=1ab%2B%2Fc%3Dd%20e&"
			       "list-type=2&prefix=vol%2Fd%2F0a%2F");
	free(s);
	s = sigv4_query(NULL, 0);
	assert_string_equal(s, "");
	free(s);
}

/* A wrong secret, region or date must change the signature. */
static void inputs_matter(void **state)
{
	struct sigv4_header h[] = {
		{"Host", SUITE_HOST},
		{"X-Amz-Date", SUITE_DATE},
	};
	struct sigv4_req r = suite_req("GET");
	struct sigv4_out a, b;

	r.headers = h;
	r.nr_headers = 2;
	assert_int_equal(sigv4_sign(&r, &a), 0);
	r.secret_key = "x";
	assert_int_equal(sigv4_sign(&r, &b), 0);
	assert_string_not_equal(a.signature, b.signature);
	sigv4_out_free(&b);
	r.secret_key = SUITE_SK;
	r.region = "us-west-2";
	assert_int_equal(sigv4_sign(&r, &b), 0);
	assert_string_not_equal(a.signature, b.signature);
	assert_non_null(strstr(b.authorization, "/us-west-2/service/"));
	sigv4_out_free(&b);
	r.amz_date = "2015";
	assert_int_equal(sigv4_sign(&r, &b), -EINVAL);
	sigv4_out_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(get_vanilla),
		cmocka_unit_test(get_vanilla_query_order_key_case),
		cmocka_unit_test(get_header_value_trim),
		cmocka_unit_test(post_x_www_form_urlencoded),
		cmocka_unit_test(post_sts_header_before),
		cmocka_unit_test(s3_get_object_range),
		cmocka_unit_test(s3_put_object),
		cmocka_unit_test(s3_get_bucket_lifecycle),
		cmocka_unit_test(s3_list_objects),
		cmocka_unit_test(encoding),
		cmocka_unit_test(inputs_matter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
