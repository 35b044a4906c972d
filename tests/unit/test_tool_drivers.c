// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The bundled drivers under the real libbuse and the fake kernel: a random
 * mix of writes, reads, discards, write-zeroes and flushes, checked against
 * a model of the disk, on one queue and concurrently on several.
 *
 * The file driver needs liburing: the Makefile builds this test with
 * -DBUSE_TEST_FILE_DRIVER and -luring (without, it tests null and ram).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <buse/fake.h>

/* The Makefile links unit tests with lib/ only: take the drivers whole. */
#include "../../drivers/null.c"
#include "../../drivers/ram.c"
#ifdef BUSE_TEST_FILE_DRIVER
#include "../../drivers/file.c"
#endif

#define DEV_SIZE (4U << 20)
#define SLOT	 (16U << 10) /* largest read or write */
#define DEPTH	 16

static unsigned char model[DEV_SIZE];
static uint32_t seed;

static uint32_t rnd(void)
{
	seed = seed * 1103515245 + 12345;
	return seed >> 8;
}

/* params.workers of the next start(): what the driver's parse asked for. */
static uint32_t start_workers;

static void start(struct fake_runner *r, const struct buse_ops *ops, void *priv,
		  unsigned nr_queues, uint64_t size)
{
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.nr_queues = nr_queues;
	cfg.depth = DEPTH;
	cfg.slot_size = SLOT;
	fake_install(&cfg);
	memset(r, 0, sizeof(*r));
	buse_params_init(&r->params);
	r->params.size = size;
	r->params.handle_signals = false;
	r->params.pin_threads = false;
	r->params.workers = start_workers;
	r->ops = *ops;
	r->priv = priv;
	fake_run_start(r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
}

static void stop(struct fake_runner *r)
{
	assert_int_equal(fake_run_stop(r), 0);
}

static unsigned submit(unsigned qid, uint8_t op, uint16_t flags, uint64_t off,
		       uint32_t len, const void *wdata)
{
	struct fake_io io = {
		.op = op,
		.flags = flags,
		.sector = off >> 9,
		.len = len,
		.wdata = wdata,
		.tag = -1,
	};

	return fake_submit(qid, &io);
}

/* Read [off, off + len) and compare it with the model. */
static void check_read(unsigned qid, uint64_t off, uint32_t len)
{
	unsigned t = submit(qid, BUSE_OP_READ, 0, off, len, NULL);

	assert_int_equal(fake_wait(t), 0);
	assert_memory_equal(fake_ticket_buf(t), model + off, len);
}

/* One request at a time, so the model knows what each read must see. */
static void random_ops(unsigned nr_queues, unsigned n)
{
	static unsigned char buf[SLOT];
	uint32_t len, i;
	uint64_t off;
	unsigned qid, op, t;
	uint16_t flags;

	while (n--) {
		qid = rnd() % nr_queues;
		op = rnd() % 10;
		/* Discards and write-zeroes may span many 64K ram chunks. */
		len = (1 + rnd() % (op >= 7 ? 1024 : SLOT / 512)) * 512;
		off = (uint64_t)(rnd() % ((DEV_SIZE - len) / 512 + 1)) * 512;
		flags = rnd() % 2;
		if (op < 4) {
			for (i = 0; i < len; i++)
				buf[i] = rnd();
			t = submit(qid, BUSE_OP_WRITE, flags ? BUSE_SQE_FUA : 0,
				   off, len, buf);
			assert_int_equal(fake_wait(t), 0);
			memcpy(model + off, buf, len);
		} else if (op < 7) {
			check_read(qid, off, len);
		} else if (op < 9) {
			t = submit(qid,
				   op == 7 ? BUSE_OP_DISCARD
					   : BUSE_OP_WRITE_ZEROES,
				   flags ? BUSE_SQE_NOUNMAP : 0, off, len,
				   NULL);
			assert_int_equal(fake_wait(t), 0);
			memset(model + off, 0, len);
		} else {
			t = submit(qid, BUSE_OP_FLUSH, 0, 0, 0, NULL);
			assert_int_equal(fake_wait(t), 0);
		}
	}
}

/* Many requests in flight on every queue, on disjoint ranges. */
static void concurrent_ops(unsigned nr_queues)
{
	static unsigned char data[DEV_SIZE / 2];
	unsigned i, n = sizeof(data) / SLOT;

	for (i = 0; i < sizeof(data); i++)
		data[i] = rnd();
	for (i = 0; i < n; i++)
		submit(i % nr_queues, BUSE_OP_WRITE, 0, (uint64_t)i * SLOT,
		       SLOT, data + i * SLOT);
	assert_true(fake_wait_all());
	memcpy(model, data, sizeof(data));
	/* Punch a hole across a chunk boundary while reads go elsewhere. */
	for (i = 0; i < n; i++)
		if (i == n / 2)
			submit(i % nr_queues, BUSE_OP_DISCARD, 0,
			       (uint64_t)i * SLOT, 5 * SLOT, NULL);
		else if (i < n / 2 || i >= n / 2 + 5)
			submit(i % nr_queues, BUSE_OP_READ, 0,
			       (uint64_t)i * SLOT, SLOT, NULL);
	assert_true(fake_wait_all());
	memset(model + (uint64_t)n / 2 * SLOT, 0, 5 * SLOT);
	for (i = 0; i < DEV_SIZE / SLOT; i++)
		check_read(i % nr_queues, (uint64_t)i * SLOT, SLOT);
}

static int setup(void **state)
{
	memset(model, 0, sizeof(model));
	seed = 42;
	optind = 0;
	return 0;
}

static void test_null(void **state)
{
	char *argv[] = {"null", NULL};
	struct buse_params p;
	struct fake_runner r;
	unsigned t;
	void *priv;

	buse_params_init(&p);
	assert_int_equal(null_parse(1, argv, &p, &priv), 0);
	assert_true(p.size == NULL_DEFAULT_SIZE);
	start(&r, null_driver.ops, priv, 2, DEV_SIZE);
	t = submit(1, BUSE_OP_WRITE, BUSE_SQE_FUA, 4096, 4096, model);
	assert_int_equal(fake_wait(t), 0);
	t = submit(0, BUSE_OP_READ, 0, 0, SLOT, NULL);
	assert_int_equal(fake_wait(t), 0);
	t = submit(0, BUSE_OP_WRITE_ZEROES, 0, 0, DEV_SIZE, NULL);
	assert_int_equal(fake_wait(t), 0);
	stop(&r);
}

static void test_ram_parse(void **state)
{
	char *argv[] = {"ram", "--bogus", NULL};
	struct buse_params p;
	void *priv = NULL;

	buse_params_init(&p);
	assert_int_equal(ram_parse(1, argv, &p, &priv),
			 BUSE_DRV_USAGE); /* size */
	p.size = DEV_SIZE;
	assert_int_equal(ram_parse(2, argv, &p, &priv), BUSE_DRV_USAGE);
	assert_null(priv);
}

static void test_ram(void **state)
{
	char *argv[] = {"ram", NULL};
	struct buse_params p;
	struct fake_runner r;
	struct ram_dev *ram;
	void *priv;
	unsigned t;

	buse_params_init(&p);
	p.size = DEV_SIZE;
	assert_int_equal(ram_parse(1, argv, &p, &priv), 0);
	ram = priv;
	start(&r, ram_driver.ops, priv, 1, DEV_SIZE);
	random_ops(1, 3000);

	/* Whole chunks are freed, unless NOUNMAP asks to keep them. */
	t = submit(0, BUSE_OP_WRITE, 0, 3 * RAM_CHUNK - 512, 1024, model);
	assert_int_equal(fake_wait(t), 0);
	assert_non_null(ram->chunks[2]);
	assert_non_null(ram->chunks[3]);
	t = submit(0, BUSE_OP_WRITE_ZEROES, BUSE_SQE_NOUNMAP, 2 * RAM_CHUNK,
		   2 * RAM_CHUNK, NULL);
	assert_int_equal(fake_wait(t), 0);
	assert_non_null(ram->chunks[2]);
	t = submit(0, BUSE_OP_DISCARD, 0, 2 * RAM_CHUNK, 2 * RAM_CHUNK, NULL);
	assert_int_equal(fake_wait(t), 0);
	assert_null(ram->chunks[2]);
	assert_null(ram->chunks[3]);
	memset(model + 2 * RAM_CHUNK, 0, 2 * RAM_CHUNK);
	check_read(0, 2 * RAM_CHUNK - SLOT / 2, SLOT);
	stop(&r);
	ram_cleanup(priv);
}

static void test_ram_queues(void **state)
{
	char *argv[] = {"ram", NULL};
	struct buse_params p;
	struct fake_runner r;
	void *priv;

	buse_params_init(&p);
	p.size = DEV_SIZE;
	assert_int_equal(ram_parse(1, argv, &p, &priv), 0);
	start(&r, ram_driver.ops, priv, 4, DEV_SIZE);
	concurrent_ops(4);
	random_ops(4, 2000);
	stop(&r);
	ram_cleanup(priv);
}

#ifdef BUSE_TEST_FILE_DRIVER
static char path[] = "/tmp/buse-test-file.XXXXXX";

/* Parse `file --path PATH [extra]` with the size and flags given. */
static void *file_setup(struct buse_params *p, const char *extra)
{
	char *argv[] = {"file", "--path", path, (char *)extra, NULL};
	void *priv = NULL;

	optind = 0;
	assert_int_equal(file_parse(extra ? 4 : 3, argv, p, &priv), 0);
	return priv;
}

/* The backing file holds exactly what the model says. */
static void check_file(void)
{
	static unsigned char buf[DEV_SIZE];
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, DEV_SIZE, 0), DEV_SIZE);
	assert_memory_equal(buf, model, DEV_SIZE);
	close(fd);
}

static void file_run(const char *extra, unsigned nr_queues)
{
	struct buse_params p;
	struct fake_runner r;
	void *priv;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path); /* a unique name; the driver creates the file */
	buse_params_init(&p);
	p.size = DEV_SIZE; /* a missing file is created with --size */
	priv = file_setup(&p, extra);
	start_workers = p.workers;
	start(&r, file_driver.ops, priv, nr_queues, p.size);
	random_ops(nr_queues, 1500);
	concurrent_ops(nr_queues);
	stop(&r);
	start_workers = 0;
	file_cleanup(priv);
	check_file();

	/* Without --size the file gives it. */
	buse_params_init(&p);
	priv = file_setup(&p, extra);
	assert_true(p.size == DEV_SIZE);
	file_cleanup(priv);
	unlink(path);
	strcpy(path + strlen(path) - 6, "XXXXXX");
}

static void test_file(void **state)
{
	file_run(NULL, 2);
}

static void test_file_direct(void **state)
{
	file_run("--direct", 3);
}

/* The pool: the same model checks, every operation a blocking call. */
static void test_file_workers(void **state)
{
	struct buse_params p;
	void *priv;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	buse_params_init(&p);
	p.size = DEV_SIZE;
	priv = file_setup(&p, "--workers=4");
	assert_int_equal(p.workers, 4);
	file_cleanup(priv);
	unlink(path);
	strcpy(path + strlen(path) - 6, "XXXXXX");
	file_run("--workers=4", 2);
}

/* Read-only on a short file: zeros past its end, even with O_DIRECT. */
static void test_file_short(void **state)
{
	const char *modes[] = {NULL, "--direct"};
	struct buse_params p;
	struct fake_runner r;
	unsigned i, m;
	void *priv;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (i = 0; i < 10000; i++)
		model[i] = rnd();
	assert_int_equal(write(fd, model, 10000), 10000);
	close(fd);
	for (m = 0; m < 2; m++) {
		buse_params_init(&p);
		p.size = 1 << 20;
		p.read_only = true;
		priv = file_setup(&p, modes[m]);
		start(&r, file_driver.ops, priv, 1, p.size);
		for (i = 0; i < 64; i++)
			check_read(0, (uint64_t)i * 512, SLOT);
		check_read(0, (1 << 20) - SLOT, SLOT);
		stop(&r);
		file_cleanup(priv);
	}
	unlink(path);
	strcpy(path + strlen(path) - 6, "XXXXXX");
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_null, setup),
		cmocka_unit_test_setup(test_ram_parse, setup),
		cmocka_unit_test_setup(test_ram, setup),
		cmocka_unit_test_setup(test_ram_queues, setup),
#ifdef BUSE_TEST_FILE_DRIVER
		cmocka_unit_test_setup(test_file, setup),
		cmocka_unit_test_setup(test_file_direct, setup),
		cmocka_unit_test_setup(test_file_workers, setup),
		cmocka_unit_test_setup(test_file_short, setup),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
