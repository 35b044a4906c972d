// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libbuse against the fake kernel: parameters, dispatch of every operation,
 * validation, status clamping, long runs through small rings, control plane.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <buse/fake.h>
#include "internal.h"

#define DISK_SIZE (1 << 20)
#define MAX_CALLS 64

enum { C_READ, C_WRITE, C_FLUSH, C_DISCARD, C_WZ };

struct call {
	int op;
	struct buse_req *req;
	unsigned qid;
	const void *buf;
	uint32_t len;
	uint64_t off;
	unsigned flags;
	pthread_t thread;
};

/* A RAM disk that records every call. */
static struct drv {
	pthread_mutex_t lock;
	char disk[DISK_SIZE];
	struct call calls[MAX_CALLS];
	unsigned nr_calls;
	int status;		 /* returned by every callback */
	bool status_from_sector; /* read: return -(int)sector instead */
	bool no_record;		 /* keep calls[] from filling up */
} drv = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct call *record(int op, struct buse_req *req, const void *buf,
			   uint32_t len, uint64_t off, unsigned flags)
{
	struct call *c;

	pthread_mutex_lock(&drv.lock);
	/* No cmocka asserts here: this runs in the queue threads. */
	c = &drv.calls[drv.nr_calls < MAX_CALLS ? drv.nr_calls++ : 0];
	if (drv.no_record)
		drv.nr_calls = 0;
	*c = (struct call){op,	req,   buse_req_queue(req), buf, len,
			   off, flags, pthread_self()};
	pthread_mutex_unlock(&drv.lock);
	return c;
}

static int d_read(void *priv, struct buse_req *req, void *buf, uint32_t len,
		  uint64_t off)
{
	record(C_READ, req, buf, len, off, 0);
	if (drv.status_from_sector)
		return (int)(int64_t)(off >> 9) * -1;
	memcpy(buf, drv.disk + off, len);
	return drv.status;
}

static int d_write(void *priv, struct buse_req *req, const void *buf,
		   uint32_t len, uint64_t off, unsigned flags)
{
	record(C_WRITE, req, buf, len, off, flags);
	memcpy(drv.disk + off, buf, len);
	return drv.status;
}

static int d_flush(void *priv, struct buse_req *req)
{
	record(C_FLUSH, req, NULL, 0, 0, 0);
	return drv.status;
}

static int d_discard(void *priv, struct buse_req *req, uint32_t len,
		     uint64_t off)
{
	record(C_DISCARD, req, NULL, len, off, 0);
	return drv.status;
}

static int d_wz(void *priv, struct buse_req *req, uint32_t len, uint64_t off,
		unsigned flags)
{
	record(C_WZ, req, NULL, len, off, flags);
	return drv.status;
}

static const struct buse_ops all_ops = {
	.read = d_read,
	.write = d_write,
	.flush = d_flush,
	.discard = d_discard,
	.write_zeroes = d_wz,
};

static int setup(void **state)
{
	unsigned i;

	pthread_mutex_lock(&drv.lock);
	for (i = 0; i < DISK_SIZE; i++)
		drv.disk[i] = (char)(i * 7 + i / 4096);
	drv.nr_calls = 0;
	drv.status = 0;
	drv.status_from_sector = false;
	drv.no_record = false;
	pthread_mutex_unlock(&drv.lock);
	return 0;
}

static void start(struct fake_runner *r, const struct fake_cfg *cfg,
		  const struct buse_ops *ops)
{
	fake_install(cfg);
	memset(r, 0, sizeof(*r));
	buse_params_init(&r->params);
	r->params.size = DISK_SIZE;
	r->params.handle_signals = false;
	r->params.name = "unit";
	r->ops = *ops;
	fake_run_start(r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
}

static void stop(struct fake_runner *r)
{
	assert_int_equal(fake_run_stop(r), 0);
}

/* Submit one request and wait for it. */
static int io(unsigned qid, struct fake_io *fio, unsigned *ticket)
{
	unsigned t;

	if (!fio->raw_data_off)
		fio->tag = -1;
	t = fake_submit(qid, fio);
	if (ticket)
		*ticket = t;
	return fake_wait(t);
}

static unsigned nr_calls(void)
{
	unsigned n;

	pthread_mutex_lock(&drv.lock);
	n = drv.nr_calls;
	pthread_mutex_unlock(&drv.lock);
	return n;
}

static void test_params_init(void **state)
{
	struct buse_params p;

	memset(&p, 0xa5, sizeof(p));
	buse_params_init(&p);
	assert_int_equal(p.size, 0);
	assert_int_equal(p.logical_block_size, 512);
	assert_int_equal(p.physical_block_size, 0);
	assert_int_equal(p.nr_queues, 0);
	assert_int_equal(p.queue_depth, 0);
	assert_int_equal(p.max_io_bytes, 0);
	assert_int_equal(p.max_discard_bytes, 0);
	assert_int_equal(p.timeout_ms, 0);
	assert_int_equal(p.dev_id, BUSE_DEV_ID_ANY);
	assert_false(p.read_only);
	assert_false(p.rotational);
	assert_true(p.handle_signals);
	assert_true(p.pin_threads);
	assert_null(p.name);
}

static void test_flags_from_ops(void **state)
{
	struct buse_dev_params kp;
	struct buse_params p;
	struct buse_ops ops = {.read = d_read};
	size_t i;

	buse_params_init(&p);
	p.size = 4096;
	buse_make_dev_params(&kp, &p, &ops);
	assert_int_equal(kp.flags, BUSE_F_READ_ONLY);

	ops.write = d_write;
	buse_make_dev_params(&kp, &p, &ops);
	assert_int_equal(kp.flags, 0);

	ops.flush = d_flush;
	buse_make_dev_params(&kp, &p, &ops);
	assert_int_equal(kp.flags, BUSE_F_FLUSH | BUSE_F_FUA);

	ops.flush = NULL;
	ops.discard = d_discard;
	buse_make_dev_params(&kp, &p, &ops);
	assert_int_equal(kp.flags, BUSE_F_DISCARD);

	ops.discard = NULL;
	ops.write_zeroes = d_wz;
	buse_make_dev_params(&kp, &p, &ops);
	assert_int_equal(kp.flags, BUSE_F_WRITE_ZEROES);

	/* Recoverable devices carry their recovery limit. */
	p.recoverable = true;
	p.recovery_timeout_ms = 5000;
	buse_make_dev_params(&kp, &p, &ops);
	assert_int_equal(kp.flags, BUSE_F_WRITE_ZEROES | BUSE_F_RECOVERABLE);
	assert_int_equal(kp.recovery_timeout_ms, 5000);
	p.recoverable = false;
	p.recovery_timeout_ms = 0;

	p.read_only = true;
	p.rotational = true;
	buse_make_dev_params(&kp, &p, &all_ops);
	assert_int_equal(kp.flags, BUSE_F_READ_ONLY | BUSE_F_ROTATIONAL |
					   BUSE_F_FLUSH | BUSE_F_FUA |
					   BUSE_F_DISCARD |
					   BUSE_F_WRITE_ZEROES);

	/* A long name is cut, always NUL-terminated; reserved stay zero. */
	memset(&kp, 0xff, sizeof(kp));
	p.name = "a-driver-name-that-is-much-longer-than-thirty-two";
	buse_make_dev_params(&kp, &p, &all_ops);
	assert_int_equal(strlen(kp.name), BUSE_NAME_LEN - 1);
	assert_memory_equal(kp.name, p.name, BUSE_NAME_LEN - 1);
	assert_int_equal(kp.recovery_timeout_ms, 0);
	for (i = 0; i < sizeof(kp.reserved) / sizeof(kp.reserved[0]); i++)
		assert_int_equal(kp.reserved[i], 0);
	/* No name: an all-zero serial; a name: copied, zero-padded. */
	for (i = 0; i < BUSE_SERIAL_LEN; i++)
		assert_int_equal(kp.serial[i], 0);
	memset(&kp, 0xff, sizeof(kp));
	p.serial = "data";
	buse_make_dev_params(&kp, &p, &all_ops);
	assert_string_equal(kp.serial, "data");
	for (i = 4; i < BUSE_SERIAL_LEN; i++)
		assert_int_equal(kp.serial[i], 0);
	/* Too long to terminate: sent unterminated, for the kernel to refuse. */
	p.serial = "0123456789012345678901234567890123";
	buse_make_dev_params(&kp, &p, &all_ops);
	assert_memory_equal(kp.serial, p.serial, BUSE_SERIAL_LEN);
	p.serial = NULL;
}

/* What the kernel receives in BUSE_CTL_ADD. */
static void test_add_params(void **state)
{
	struct buse_dev_params kp;
	struct fake_runner r;
	struct fake_cfg cfg;
	struct buse_ops ops = {.read = d_read, .flush = d_flush};

	fake_cfg_init(&cfg);
	fake_install(&cfg);
	memset(&r, 0, sizeof(r));
	buse_params_init(&r.params);
	r.params.size = DISK_SIZE;
	r.params.logical_block_size = 4096;
	r.params.physical_block_size = 8192;
	r.params.nr_queues = 1;
	r.params.queue_depth = 4;
	r.params.max_io_bytes = 65536;
	r.params.max_discard_bytes = 1 << 20;
	r.params.timeout_ms = 1234;
	r.params.dev_id = 5;
	r.params.rotational = true;
	r.params.handle_signals = false;
	r.params.name = "mydrv";
	r.ops = ops;
	fake_run_start(&r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
	kp = fake_last_add();
	assert_int_equal(kp.dev_id, 5);
	assert_int_equal(kp.size, DISK_SIZE);
	assert_int_equal(kp.logical_block_size, 4096);
	assert_int_equal(kp.physical_block_size, 8192);
	assert_int_equal(kp.nr_queues, 1);
	assert_int_equal(kp.queue_depth, 4);
	assert_int_equal(kp.max_io_bytes, 65536);
	assert_int_equal(kp.max_discard_bytes, 1 << 20);
	assert_int_equal(kp.timeout_ms, 1234);
	assert_int_equal(kp.flags, BUSE_F_READ_ONLY | BUSE_F_ROTATIONAL |
					   BUSE_F_FLUSH | BUSE_F_FUA);
	assert_string_equal(kp.name, "mydrv");
	assert_int_equal(fake_dev_id(), 5);
	stop(&r);
}

static void test_run_needs_read(void **state)
{
	struct buse_ops ops = {.write = d_write};
	struct fake_stats st;
	struct buse_params p;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	fake_install(&cfg);
	buse_params_init(&p);
	p.size = DISK_SIZE;
	assert_int_equal(buse_run(&p, &ops, NULL), -EINVAL);
	assert_int_equal(buse_run(&p, NULL, NULL), -EINVAL);
	assert_int_equal(buse_run(NULL, &all_ops, NULL), -EINVAL);
	fake_get_stats(&st);
	assert_int_equal(st.opens, 0);
	fake_uninstall();
}

static struct call *last_call(void)
{
	assert_true(drv.nr_calls > 0);
	return &drv.calls[drv.nr_calls - 1];
}

static void check_call(int op, unsigned qid, const void *buf, uint32_t len,
		       uint64_t off, unsigned flags)
{
	struct call *c = last_call();

	assert_int_equal(c->op, op);
	assert_int_equal(c->qid, qid);
	assert_ptr_equal(c->buf, buf);
	assert_int_equal(c->len, len);
	assert_int_equal(c->off, off);
	assert_int_equal(c->flags, flags);
	assert_non_null(c->req);
	assert_false(pthread_equal(c->thread, pthread_self()));
}

static void test_dispatch_every_op(void **state)
{
	struct fake_runner r;
	struct fake_cfg cfg;
	char wbuf[8192];
	unsigned t, i, n = 0;
	pthread_t q0_thread;

	fake_cfg_init(&cfg);
	cfg.nr_queues = 2;
	start(&r, &cfg, &all_ops);
	for (i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (char)(i ^ 0x5c);

	/* Read: the driver fills the tag's buffer at the right offset. */
	struct fake_io rd = {.op = BUSE_OP_READ, .sector = 24, .len = 4096};
	assert_int_equal(io(0, &rd, &t), 0);
	assert_int_equal(nr_calls(), ++n);
	check_call(C_READ, 0, fake_region(0) + rd.data_off, 4096, 24 * 512, 0);
	assert_memory_equal(fake_ticket_buf(t), drv.disk + 24 * 512, 4096);
	q0_thread = last_call()->thread;

	/* Reads on other tags use other buffers. */
	for (i = 0; i < 3; i++) {
		struct fake_io rd2 = {.op = BUSE_OP_READ,
				      .sector = 100 + i,
				      .len = 512 * (i + 1)};
		assert_int_equal(io(0, &rd2, &t), 0);
		assert_int_equal(nr_calls(), ++n);
		assert_int_not_equal(rd2.data_off, rd.data_off);
		check_call(C_READ, 0, fake_region(0) + rd2.data_off,
			   512 * (i + 1), (100 + i) * 512, 0);
		assert_memory_equal(fake_ticket_buf(t),
				    drv.disk + (100 + i) * 512, 512 * (i + 1));
	}

	/* A buffer that is not at a slot start. */
	struct fake_io rd3 = {.op = BUSE_OP_READ,
			      .sector = 7,
			      .len = 1024,
			      .raw_data_off = true,
			      .data_off = fake_slot_off(0, 5) + 512,
			      .tag = 5};
	assert_int_equal(io(0, &rd3, &t), 0);
	assert_int_equal(nr_calls(), ++n);
	check_call(C_READ, 0, fake_region(0) + fake_slot_off(0, 5) + 512, 1024,
		   7 * 512, 0);
	assert_memory_equal(fake_region(0) + fake_slot_off(0, 5) + 512,
			    drv.disk + 7 * 512, 1024);

	/* Writes, with and without FUA. */
	struct fake_io wr = {
		.op = BUSE_OP_WRITE, .sector = 40, .len = 8192, .wdata = wbuf};
	assert_int_equal(io(0, &wr, NULL), 0);
	assert_int_equal(nr_calls(), ++n);
	check_call(C_WRITE, 0, fake_region(0) + wr.data_off, 8192, 40 * 512, 0);
	assert_memory_equal(drv.disk + 40 * 512, wbuf, 8192);

	struct fake_io fua = {.op = BUSE_OP_WRITE,
			      .flags = BUSE_SQE_FUA,
			      .sector = 2000,
			      .len = 1024,
			      .wdata = wbuf + 100};
	assert_int_equal(io(1, &fua, NULL), 0);
	assert_int_equal(nr_calls(), ++n);
	check_call(C_WRITE, 1, fake_region(1) + fua.data_off, 1024, 2000 * 512,
		   BUSE_FUA);
	assert_memory_equal(drv.disk + 2000 * 512, wbuf + 100, 1024);
	/* Queue 1 has a thread of its own. */
	assert_false(pthread_equal(last_call()->thread, q0_thread));

	struct fake_io fl = {.op = BUSE_OP_FLUSH};
	assert_int_equal(io(1, &fl, NULL), 0);
	assert_int_equal(nr_calls(), ++n);
	check_call(C_FLUSH, 1, NULL, 0, 0, 0);

	struct fake_io dc = {.op = BUSE_OP_DISCARD, .sector = 64, .len = 65536};
	assert_int_equal(io(0, &dc, NULL), 0);
	assert_int_equal(nr_calls(), ++n);
	check_call(C_DISCARD, 0, NULL, 65536, 64 * 512, 0);

	struct fake_io wz = {
		.op = BUSE_OP_WRITE_ZEROES, .sector = 128, .len = 4096};
	assert_int_equal(io(0, &wz, NULL), 0);
	assert_int_equal(nr_calls(), ++n);
	check_call(C_WZ, 0, NULL, 4096, 128 * 512, 0);

	struct fake_io wzn = {.op = BUSE_OP_WRITE_ZEROES,
			      .flags = BUSE_SQE_NOUNMAP,
			      .sector = 256,
			      .len = 512};
	assert_int_equal(io(1, &wzn, NULL), 0);
	assert_int_equal(nr_calls(), ++n);
	check_call(C_WZ, 1, NULL, 512, 256 * 512, BUSE_NOUNMAP);

	/* The last sector is in range. */
	struct fake_io end = {
		.op = BUSE_OP_READ, .sector = DISK_SIZE / 512 - 1, .len = 512};
	assert_int_equal(io(0, &end, NULL), 0);
	assert_int_equal(nr_calls(), ++n);
	stop(&r);
}

static void test_unsupported_ops(void **state)
{
	struct buse_ops ops = {.read = d_read};
	struct fake_runner r;
	struct fake_cfg cfg;
	char buf[512] = {0};

	fake_cfg_init(&cfg);
	start(&r, &cfg, &ops);
	assert_int_equal(fake_last_add().flags, BUSE_F_READ_ONLY);

	struct fake_io w = {.op = BUSE_OP_WRITE, .len = 512, .wdata = buf};
	assert_int_equal(io(0, &w, NULL), -EOPNOTSUPP);
	struct fake_io f = {.op = BUSE_OP_FLUSH};
	assert_int_equal(io(0, &f, NULL), -EOPNOTSUPP);
	struct fake_io d = {.op = BUSE_OP_DISCARD, .len = 512};
	assert_int_equal(io(0, &d, NULL), -EOPNOTSUPP);
	struct fake_io z = {.op = BUSE_OP_WRITE_ZEROES, .len = 512};
	assert_int_equal(io(0, &z, NULL), -EOPNOTSUPP);
	struct fake_io u = {.op = 5, .len = 512};
	assert_int_equal(io(0, &u, NULL), -EOPNOTSUPP);
	struct fake_io u2 = {.op = 0xff, .len = 512};
	assert_int_equal(io(1, &u2, NULL), -EOPNOTSUPP);
	assert_int_equal(nr_calls(), 0);

	/* The device still works. */
	struct fake_io rd = {.op = BUSE_OP_READ, .len = 512};
	assert_int_equal(io(0, &rd, NULL), 0);
	assert_int_equal(nr_calls(), 1);
	stop(&r);
}

static void test_bad_ranges_fail_with_eio(void **state)
{
	struct fake_runner r;
	struct fake_cfg cfg;
	uint64_t d, end;

	fake_cfg_init(&cfg);
	cfg.nr_queues = 1;
	start(&r, &cfg, &all_ops);
	d = fake_data_off(0);
	end = d + fake_data_size(0);

	struct {
		uint8_t op;
		uint64_t data_off;
		uint32_t len;
		uint64_t sector;
	} bad[] = {
		{BUSE_OP_READ, 0, 512, 0},	    /* the ring header */
		{BUSE_OP_READ, d - 512, 512, 0},    /* the rings */
		{BUSE_OP_READ, end - 512, 1024, 0}, /* past the end */
		{BUSE_OP_WRITE, end, 512, 0},
		{BUSE_OP_WRITE, UINT64_MAX - 511, 1024, 0}, /* wraps */
		{BUSE_OP_READ, d, 512, DISK_SIZE / 512},    /* past disk */
		{BUSE_OP_WRITE, d, 1024, DISK_SIZE / 512 - 1},
		{BUSE_OP_READ, d, 512, UINT64_MAX / 256}, /* off wraps */
		{BUSE_OP_DISCARD, 0, 1024, DISK_SIZE / 512 - 1},
		{BUSE_OP_WRITE_ZEROES, 0, 512, DISK_SIZE / 512},
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fake_io b = {.op = bad[i].op,
				    .len = bad[i].len,
				    .sector = bad[i].sector,
				    .raw_data_off = true,
				    .data_off = bad[i].data_off,
				    .tag = 1};
		assert_int_equal(io(0, &b, NULL), -EIO);
	}
	assert_int_equal(nr_calls(), 0);
	stop(&r);
}

static void test_status_clamped(void **state)
{
	static const struct {
		int ret, want;
	} cases[] = {
		{0, 0},	       {-EIO, -EIO},   {-ENOSPC, -ENOSPC}, {7, -EIO},
		{-5000, -EIO}, {-4095, -4095}, {INT32_MAX, -EIO},
	};
	struct fake_runner r;
	struct fake_cfg cfg;
	size_t i;

	fake_cfg_init(&cfg);
	start(&r, &cfg, &all_ops);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_io f = {.op = BUSE_OP_FLUSH};

		drv.status = cases[i].ret;
		assert_int_equal(io(i % 2, &f, NULL), cases[i].want);
	}
	drv.status = 0;
	stop(&r);
}

/* Thousands of requests through 4-entry rings, many in flight at once. */
static void wrap_run(uint32_t start_index)
{
	enum { N = 6000 };
	static unsigned tickets[N];
	struct fake_stats st;
	struct fake_runner r;
	struct fake_cfg cfg;
	unsigned i;

	fake_cfg_init(&cfg);
	cfg.depth = 4;
	cfg.sq_entries = 4;
	cfg.cq_entries = 4;
	cfg.start_index = start_index;
	start(&r, &cfg, &all_ops);
	drv.status_from_sector = true;
	drv.no_record = true;
	for (i = 0; i < N; i++) {
		struct fake_io rd = {.op = BUSE_OP_READ,
				     .sector = i % 100,
				     .len = 512,
				     .tag = -1};
		tickets[i] = fake_submit(i % 2, &rd);
	}
	assert_true(fake_wait_all());
	for (i = 0; i < N; i++)
		assert_int_equal(fake_wait(tickets[i]),
				 buse_status_clamp(-(int)(i % 100)));
	fake_get_stats(&st);
	assert_int_equal(st.completed_total, N);
	assert_int_equal(st.completed[0], N / 2);
	assert_int_equal(st.bad_cqe, 0);
	stop(&r);
	drv.status_from_sector = false;
	drv.no_record = false;
}

static void test_ring_wraparound(void **state)
{
	wrap_run(0);
	wrap_run(UINT32_MAX - 9);
}

static void test_control_plane(void **state)
{
	struct buse_dev_info info;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	fake_install(&cfg);
	assert_int_equal(fake_add_device(3, "three"), 3);
	assert_int_equal(fake_add_device(7, "seven"), 7);

	memset(&info, 0xee, sizeof(info));
	assert_int_equal(buse_info(3, &info), 0);
	assert_int_equal(info.dev_id, 3);
	assert_string_equal(info.params.name, "three");
	assert_int_equal(info.state, BUSE_STATE_CREATED);
	assert_int_equal(buse_info(5, &info), -ENOENT);

	assert_int_equal(buse_info_next(0, &info), 0);
	assert_int_equal(info.dev_id, 3);
	assert_int_equal(buse_info_next(4, &info), 0);
	assert_int_equal(info.dev_id, 7);
	assert_string_equal(info.params.name, "seven");
	assert_int_equal(buse_info_next(8, &info), -ENOENT);

	assert_int_equal(buse_delete(3), 0);
	assert_int_equal(buse_info(3, &info), -ENOENT);
	assert_int_equal(buse_delete(3), -ENOENT);
	assert_int_equal(buse_info_next(0, &info), 0);
	assert_int_equal(info.dev_id, 7);
	assert_int_equal(buse_delete(7), 0);
	fake_uninstall(); /* also: every control fd was closed */

	/* No module loaded. */
	cfg.open_errno = ENOENT;
	fake_install(&cfg);
	assert_int_equal(buse_info(0, &info), -ENOENT);
	assert_int_equal(buse_info_next(0, &info), -ENOENT);
	assert_int_equal(buse_delete(0), -ENOENT);
	fake_uninstall();
}

static void test_state_names(void **state)
{
	assert_string_equal(buse_state_name(BUSE_STATE_CREATED), "created");
	assert_string_equal(buse_state_name(BUSE_STATE_READY), "ready");
	assert_string_equal(buse_state_name(BUSE_STATE_LIVE), "live");
	assert_string_equal(buse_state_name(BUSE_STATE_DEAD), "dead");
	assert_string_equal(buse_state_name(BUSE_STATE_DELETING), "deleting");
	assert_string_equal(buse_state_name(BUSE_STATE_ORPHANED), "orphaned");
	assert_string_equal(buse_state_name(6), "unknown");
	assert_string_equal(buse_state_name(UINT32_MAX), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params_init),
		cmocka_unit_test(test_flags_from_ops),
		cmocka_unit_test_setup(test_add_params, setup),
		cmocka_unit_test(test_run_needs_read),
		cmocka_unit_test_setup(test_dispatch_every_op, setup),
		cmocka_unit_test_setup(test_unsupported_ops, setup),
		cmocka_unit_test_setup(test_bad_ranges_fail_with_eio, setup),
		cmocka_unit_test_setup(test_status_clamped, setup),
		cmocka_unit_test_setup(test_ring_wraparound, setup),
		cmocka_unit_test(test_control_plane),
		cmocka_unit_test(test_state_names),
	};

	alarm(120); /* a hang fails instead of blocking `make unit` */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
