// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Where and who, the way AWS tools find it: environment first, then the
 * shared credentials file (INI: [profile] sections of key = value).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = 0;
	return s;
}

/* Read the profile's keys from the credentials file; 0 or -1 with err. */
static int read_credentials(struct s3_config *c, char *err, size_t errlen)
{
	const char *path = env("AWS_SHARED_CREDENTIALS_FILE");
	const char *profile = env("AWS_PROFILE");
	char *dflt = NULL, line[4096];
	bool in = false, found = false;
	FILE *f;

	if (!profile)
		profile = "default";
	if (!path) {
		const char *home = env("HOME");

		if (!home || asprintf(&dflt, "%s/.aws/credentials", home) < 0) {
			snprintf(err, errlen,
				 "no S3 credentials found: set "
				 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
				 "or write ~/.aws/credentials");
			return -1;
		}
		path = dflt;
	}
	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT && dflt)
			snprintf(err, errlen,
				 "no S3 credentials found: set "
				 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
				 "or write %s",
				 path);
		else
			snprintf(err, errlen, "cannot read %s: %s", path,
				 strerror(errno));
		free(dflt);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line), *eq, *k, *v, **dst = NULL;

		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');

			if (end)
				*end = 0;
			in = !strcmp(trim(l + 1), profile);
			found |= in;
			continue;
		}
		if (!in || !(eq = strchr(l, '=')))
			continue;
		*eq = 0;
		k = trim(l);
		v = trim(eq + 1);
		if (!strcmp(k, "aws_access_key_id"))
			dst = &c->access_key;
		else if (!strcmp(k, "aws_secret_access_key"))
			dst = &c->secret_key;
		else if (!strcmp(k, "aws_session_token"))
			dst = &c->session_token;
		if (dst) {
			free(*dst);
			*dst = strdup(v);
		}
	}
	fclose(f);
	if (!found) {
		snprintf(err, errlen, "profile [%s] not found in %s", profile,
			 path);
		free(dflt);
		return -1;
	}
	if (!c->access_key || !c->secret_key || !*c->access_key ||
	    !*c->secret_key) {
		snprintf(err, errlen,
			 "profile [%s] in %s has no aws_access_key_id or "
			 "aws_secret_access_key",
			 profile, path);
		free(dflt);
		return -1;
	}
	free(dflt);
	return 0;
}

int s3_config_load(struct s3_config *c, const char *endpoint, char *err,
		   size_t errlen)
{
	const char *region, *ep, *ak, *sk;

	memset(c, 0, sizeof(*c));
	c->connections = 16;
	c->timeout_ms = 60000;
	region = env("AWS_REGION");
	if (!region)
		region = env("AWS_DEFAULT_REGION");
	c->region = strdup(region ? region : "us-east-1");
	ep = endpoint && *endpoint ? endpoint : env("AWS_ENDPOINT_URL");
	if (ep)
		c->endpoint = strdup(ep);
	else if (asprintf(&c->endpoint, "https://s3.%s.amazonaws.com",
			  c->region) < 0)
		c->endpoint = NULL;
	if (!c->region || !c->endpoint)
		goto oom;
	/* Virtual-hosted for AWS itself, path style for everything else. */
	c->path_style = !strstr(c->endpoint, ".amazonaws.com");
	if (env("AWS_CA_BUNDLE") &&
	    !(c->ca_file = strdup(env("AWS_CA_BUNDLE"))))
		goto oom;

	ak = env("AWS_ACCESS_KEY_ID");
	sk = env("AWS_SECRET_ACCESS_KEY");
	if (ak || sk) {
		if (!ak || !sk) {
			snprintf(err, errlen, "%s is set but %s is not",
				 ak ? "AWS_ACCESS_KEY_ID"
				    : "AWS_SECRET_ACCESS_KEY",
				 ak ? "AWS_SECRET_ACCESS_KEY"
				    : "AWS_ACCESS_KEY_ID");
			s3_config_free(c);
			return -1;
		}
		c->access_key = strdup(ak);
		c->secret_key = strdup(sk);
		if (env("AWS_SESSION_TOKEN"))
			c->session_token = strdup(env("AWS_SESSION_TOKEN"));
		if (!c->access_key || !c->secret_key ||
		    (env("AWS_SESSION_TOKEN") && !c->session_token))
			goto oom;
		return 0;
	}
	if (read_credentials(c, err, errlen)) {
		s3_config_free(c);
		return -1;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	s3_config_free(c);
	return -1;
}

void s3_config_free(struct s3_config *c)
{
	free(c->endpoint);
	free(c->region);
	free(c->access_key);
	free(c->secret_key);
	free(c->session_token);
	free(c->ca_file);
	memset(c, 0, sizeof(*c));
}
