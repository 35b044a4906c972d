// SPDX-License-Identifier: LGPL-2.1-or-later
/* s3_config_load(): the environment and shared credentials file rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3.h"

static const char *vars[] = {
	"AWS_ENDPOINT_URL",
	"AWS_REGION",
	"AWS_DEFAULT_REGION",
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
	"AWS_SHARED_CREDENTIALS_FILE",
	"AWS_PROFILE",
	"AWS_CA_BUNDLE",
};

static char tmpdir[64];

static int setup(void **state)
{
	unsigned i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bs3cfg.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	setenv("HOME", tmpdir, 1); /* no ~/.aws/credentials there */
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static char *write_file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void from_env(void **state)
{
	struct s3_config c;
	char err[256];

	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:18080", 1);
	setenv("AWS_REGION", "eu-central-1", 1);
	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
	setenv("AWS_ACCESS_KEY_ID", "test:tester", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	setenv("AWS_CA_BUNDLE", "/etc/ssl/ca.pem", 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.endpoint, "http://127.0.0.1:18080");
	assert_string_equal(c.region, "eu-central-1"); /* AWS_REGION wins */
	assert_string_equal(c.access_key, "test:tester");
	assert_string_equal(c.secret_key, "testing");
	assert_string_equal(c.session_token, "tok");
	assert_string_equal(c.ca_file, "/etc/ssl/ca.pem");
	assert_true(c.path_style);
	assert_int_equal(c.connections, 16);
	assert_int_equal(c.timeout_ms, 60000);
	s3_config_free(&c);

	/* An explicit endpoint beats the environment. */
	assert_int_equal(s3_config_load(&c, "https://minio.local:9000", err,
					sizeof(err)),
			 0);
	assert_string_equal(c.endpoint, "https://minio.local:9000");
	s3_config_free(&c);
}

static void aws_default_endpoint(void **state)
{
	struct s3_config c;
	char err[256];

	setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.region, "eu-west-1");
	assert_string_equal(c.endpoint, "https://s3.eu-west-1.amazonaws.com");
	assert_false(c.path_style); /* virtual-hosted on AWS */
	assert_null(c.session_token);
	assert_null(c.ca_file);
	s3_config_free(&c);

	unsetenv("AWS_DEFAULT_REGION");
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.region, "us-east-1");
	s3_config_free(&c);
}

static const char creds[] = "# comment\n"
			    "[default]\n"
			    "aws_access_key_id = DEFAULTAK\n"
			    "aws_secret_access_key=DEFAULTSK\n"
			    "\n"
			    "[ other ]\n"
			    "aws_access_key_id   =   OTHERAK  \n"
			    "aws_secret_access_key = OTHER/SK+x=\n"
			    "aws_session_token = OTHERTOK\n";

static void credentials_file(void **state)
{
	struct s3_config c;
	char err[256];

	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", write_file("creds", creds), 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "DEFAULTAK");
	assert_string_equal(c.secret_key, "DEFAULTSK");
	assert_null(c.session_token);
	s3_config_free(&c);

	setenv("AWS_PROFILE", "other", 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "OTHERAK");
	assert_string_equal(c.secret_key, "OTHER/SK+x=");
	assert_string_equal(c.session_token, "OTHERTOK");
	s3_config_free(&c);

	setenv("AWS_PROFILE", "nope", 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "profile [nope] not found"));
	unsetenv("AWS_PROFILE");

	/* ~/.aws/credentials when no file is named */
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	{
		char dir[128];

		snprintf(dir, sizeof(dir), "%s/.aws", tmpdir);
		assert_int_equal(mkdir(dir, 0700), 0);
		write_file(".aws/credentials", creds);
	}
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "DEFAULTAK");
	s3_config_free(&c);

	/* The environment beats the file. */
	setenv("AWS_ACCESS_KEY_ID", "ENVAK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ENVSK", 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ENVAK");
	s3_config_free(&c);
}

static void clear_errors(void **state)
{
	struct s3_config c;
	char err[256];

	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no S3 credentials found"));
	assert_null(strchr(err, '\n'));

	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/creds", 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot read /nonexistent/creds"));

	setenv("AWS_SHARED_CREDENTIALS_FILE",
	       write_file("nokeys", "[default]\nregion = x\n"), 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "has no aws_access_key_id"));
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");

	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	assert_int_equal(s3_config_load(&c, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY is not"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(from_env, setup, teardown),
		cmocka_unit_test_setup_teardown(aws_default_endpoint, setup,
						teardown),
		cmocka_unit_test_setup_teardown(credentials_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(clear_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
