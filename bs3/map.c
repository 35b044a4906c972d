// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The extent map (map.h).  Each region of BS3_MAP_REGION blocks owns a
 * sorted array of 8-byte entries; an update of a region works on a window
 * of the array (the overlapped entries plus one neighbour each side, for
 * merging), builds the replacement in a small stack buffer, and splices it
 * in with one memmove.  Multi-region updates first plan every region and
 * reserve the array space they need, then apply: an -ENOMEM leaves the map
 * unchanged.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "map.h"

/* One extent inside a region: 8 bytes. */
struct ent {
	uint8_t start; /* first block, relative to the region */
	uint8_t len1;  /* length - 1 (1..256 blocks) */
	uint16_t off;  /* block offset in the object (off + len <= 65536) */
	uint32_t obj;
};

struct region {
	struct ent *e;
	uint16_t n;   /* entries in use, <= BS3_MAP_REGION */
	uint16_t cap; /* entries allocated, <= BS3_MAP_REGION */
};

_Static_assert(sizeof(struct ent) == 8, "map entries are 8 bytes");
_Static_assert(BS3_MAX_OBJ_BLOCKS <= 65536, "off is 16 bits");

struct bs3_map {
	uint64_t nr_blocks;
	uint64_t nr_regions;
	struct region *r;
	uint64_t *live; /* live blocks per object id */
	uint64_t live_cap;
	uint64_t extents;
	uint64_t mapped;
	size_t arr_bytes; /* sum of the regions' array allocations */
};

/* A piece being built: wide fields, narrowed when stored. */
struct piece {
	uint32_t start, len, off, obj;
};

enum op { OP_SET, OP_CLEAR, OP_MOVE };

struct opargs {
	enum op op;
	uint32_t obj, off;	   /* SET, MOVE: the new mapping at s */
	uint32_t src_obj, src_off; /* MOVE: the expected mapping at s */
};

/* A region's window [wi, wj) and what replaces it. */
struct plan {
	unsigned int wi, wj, cnt;
	struct piece p[BS3_MAP_REGION + 4];
};

struct bs3_map *bs3_map_new(uint64_t nr_blocks)
{
	struct bs3_map *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nr_blocks = nr_blocks;
	m->nr_regions = (nr_blocks + BS3_MAP_REGION - 1) / BS3_MAP_REGION;
	m->r = calloc(m->nr_regions ? m->nr_regions : 1, sizeof(*m->r));
	if (!m->r) {
		free(m);
		return NULL;
	}
	return m;
}

void bs3_map_free(struct bs3_map *m)
{
	if (!m)
		return;
	for (uint64_t i = 0; i < m->nr_regions; i++)
		free(m->r[i].e);
	free(m->r);
	free(m->live);
	free(m);
}

static unsigned int ent_end(const struct ent *e)
{
	return (unsigned int)e->start + e->len1 + 1;
}

/* First entry that ends after s. */
static unsigned int first_after(const struct region *g, unsigned int s)
{
	unsigned int lo = 0, hi = g->n;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (ent_end(&g->e[mid]) <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Append, merging with the last piece when it continues it. */
static void push(struct plan *pl, uint32_t start, uint32_t len, uint32_t obj,
		 uint32_t off)
{
	struct piece *l = pl->cnt ? &pl->p[pl->cnt - 1] : NULL;

	if (l && l->start + l->len == start && l->obj == obj &&
	    l->off + l->len == off) {
		l->len += len;
		return;
	}
	pl->p[pl->cnt++] = (struct piece){start, len, off, obj};
}

/*
 * Plan op on [s, e) of region g.  With m set, also account the change in
 * live and mapped counts (the apply pass); returns the blocks moved.
 */
static uint32_t plan(const struct region *g, unsigned int s, unsigned int e,
		     const struct opargs *a, struct plan *pl, struct bs3_map *m)
{
	unsigned int i = first_after(g, s), j = i;
	bool placed = a->op != OP_SET;
	uint32_t moved = 0;

	while (j < g->n && g->e[j].start < e)
		j++;
	pl->wi = i ? i - 1 : 0;
	pl->wj = j < g->n ? j + 1 : j;
	pl->cnt = 0;
	for (unsigned int k = pl->wi; k < pl->wj; k++) {
		const struct ent *x = &g->e[k];
		unsigned int es = x->start, ee = ent_end(x);
		unsigned int ms = es > s ? es : s, me = ee < e ? ee : e;

		if (ee <= s || es >= e) {
			if (es >= e && !placed) {
				push(pl, s, e - s, a->obj, a->off);
				placed = true;
			}
			push(pl, es, ee - es, x->obj, x->off);
			continue;
		}
		if (a->op == OP_MOVE) {
			/* Moved only where it still maps to the source. */
			if (x->obj != a->src_obj ||
			    (int64_t)x->off - es != (int64_t)a->src_off - s) {
				push(pl, es, ee - es, x->obj, x->off);
				continue;
			}
			if (es < ms)
				push(pl, es, ms - es, x->obj, x->off);
			push(pl, ms, me - ms, a->obj, a->off + (ms - s));
			if (ee > me)
				push(pl, me, ee - me, x->obj,
				     x->off + (me - es));
			moved += me - ms;
			continue;
		}
		if (m) {
			m->live[x->obj] -= me - ms;
			m->mapped -= me - ms;
		}
		if (es < s)
			push(pl, es, s - es, x->obj, x->off);
		if (!placed) {
			push(pl, s, e - s, a->obj, a->off);
			placed = true;
		}
		if (ee > e)
			push(pl, e, ee - e, x->obj, x->off + (e - es));
	}
	if (!placed)
		push(pl, s, e - s, a->obj, a->off);
	if (m && a->op == OP_SET) {
		m->live[a->obj] += e - s;
		m->mapped += e - s;
	}
	if (m && moved) {
		m->live[a->src_obj] -= moved;
		m->live[a->obj] += moved;
	}
	return moved;
}

static int reserve(struct bs3_map *m, struct region *g, unsigned int need)
{
	unsigned int cap = g->cap + g->cap / 4u;
	struct ent *e;

	if (need <= g->cap)
		return 0;
	/* Growth by a quarter, never past a full region: <= 8 B per block. */
	if (cap < need)
		cap = need;
	if (cap > BS3_MAP_REGION)
		cap = BS3_MAP_REGION;
	e = realloc(g->e, cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	m->arr_bytes += (cap - g->cap) * sizeof(*e);
	g->e = e;
	g->cap = (uint16_t)cap;
	return 0;
}

/* Give back an array that is mostly unused (failure to shrink is fine). */
static void trim(struct bs3_map *m, struct region *g)
{
	unsigned int cap;
	struct ent *e;

	if (!g->n) {
		m->arr_bytes -= g->cap * sizeof(*g->e);
		free(g->e);
		g->e = NULL;
		g->cap = 0;
		return;
	}
	if (g->cap < 8 || g->n > g->cap / 2u)
		return;
	cap = g->n + g->n / 4u + 1;
	e = realloc(g->e, cap * sizeof(*e));
	if (!e)
		return;
	m->arr_bytes -= (g->cap - cap) * sizeof(*e);
	g->e = e;
	g->cap = (uint16_t)cap;
}

static void splice(struct bs3_map *m, struct region *g, const struct plan *pl)
{
	unsigned int n = g->n - (pl->wj - pl->wi) + pl->cnt;

	if (g->n > pl->wj)
		memmove(g->e + pl->wi + pl->cnt, g->e + pl->wj,
			(g->n - pl->wj) * sizeof(*g->e));
	for (unsigned int k = 0; k < pl->cnt; k++) {
		const struct piece *p = &pl->p[k];

		g->e[pl->wi + k] = (struct ent){
			.start = (uint8_t)p->start,
			.len1 = (uint8_t)(p->len - 1),
			.off = (uint16_t)p->off,
			.obj = p->obj,
		};
	}
	m->extents += n;
	m->extents -= g->n;
	g->n = (uint16_t)n;
	trim(m, g);
}

static int reserve_live(struct bs3_map *m, uint32_t obj)
{
	uint64_t cap = m->live_cap + m->live_cap / 2;
	uint64_t *l;

	if (obj < m->live_cap)
		return 0;
	if (cap < (uint64_t)obj + 1)
		cap = (uint64_t)obj + 1;
	if (cap < 16)
		cap = 16;
	l = realloc(m->live, cap * sizeof(*l));
	if (!l)
		return -ENOMEM;
	memset(l + m->live_cap, 0, (cap - m->live_cap) * sizeof(*l));
	m->live = l;
	m->live_cap = cap;
	return 0;
}

/* Run op over lba..lba+n-1 region by region: plan and reserve, then apply. */
static int64_t run(struct bs3_map *m, uint64_t lba, uint64_t n,
		   const struct opargs *a)
{
	struct plan *pl;
	int64_t moved = 0;

	if (lba > m->nr_blocks || n > m->nr_blocks - lba)
		return -EINVAL;
	if (!n)
		return 0;
	if (a->op != OP_CLEAR && reserve_live(m, a->obj))
		return -ENOMEM;
	pl = malloc(sizeof(*pl));
	if (!pl)
		return -ENOMEM;
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t b = lba; b < lba + n;) {
			uint64_t ri = b / BS3_MAP_REGION;
			unsigned int s = (unsigned int)(b % BS3_MAP_REGION);
			uint64_t left = lba + n - b;
			unsigned int e = left < BS3_MAP_REGION - s
						 ? s + (unsigned int)left
						 : BS3_MAP_REGION;
			struct region *g = &m->r[ri];
			struct opargs ra = *a;

			ra.off = a->off + (uint32_t)(b - lba);
			ra.src_off = a->src_off + (uint32_t)(b - lba);
			if (!pass) {
				plan(g, s, e, &ra, pl, NULL);
				if (reserve(m, g,
					    g->n - (pl->wj - pl->wi) +
						    pl->cnt)) {
					free(pl);
					return -ENOMEM;
				}
			} else {
				moved += plan(g, s, e, &ra, pl, m);
				splice(m, g, pl);
			}
			b += e - s;
		}
	}
	free(pl);
	return moved;
}

int bs3_map_set(struct bs3_map *m, uint64_t lba, uint32_t n, uint32_t obj,
		uint32_t off)
{
	struct opargs a = {.op = OP_SET, .obj = obj, .off = off};

	if (obj == BS3_MAP_NONE || off > BS3_MAX_OBJ_BLOCKS ||
	    n > BS3_MAX_OBJ_BLOCKS - off)
		return -EINVAL;
	return (int)run(m, lba, n, &a);
}

int bs3_map_clear(struct bs3_map *m, uint64_t lba, uint64_t n)
{
	struct opargs a = {.op = OP_CLEAR};

	return (int)run(m, lba, n, &a);
}

int64_t bs3_map_move(struct bs3_map *m, uint64_t lba, uint32_t n,
		     uint32_t src_obj, uint32_t src_off, uint32_t obj,
		     uint32_t off)
{
	struct opargs a = {.op = OP_MOVE,
			   .obj = obj,
			   .off = off,
			   .src_obj = src_obj,
			   .src_off = src_off};

	if (obj == BS3_MAP_NONE || src_obj == BS3_MAP_NONE ||
	    off > BS3_MAX_OBJ_BLOCKS || n > BS3_MAX_OBJ_BLOCKS - off ||
	    src_off > BS3_MAX_OBJ_BLOCKS || n > BS3_MAX_OBJ_BLOCKS - src_off)
		return -EINVAL;
	return run(m, lba, n, &a);
}

/* Pieces are gathered with the last one pending, so neighbours merge. */
struct gather {
	struct bs3_map_piece cur;
	bool have;
	bool holes; /* lookup: holes included, pieces counted into out */
	size_t count, max;
	struct bs3_map_piece *out;
	int (*fn)(void *arg, const struct bs3_map_piece *p);
	void *arg;
	int ret;
};

static void flush_piece(struct gather *g)
{
	if (!g->have)
		return;
	g->have = false;
	if (g->holes) {
		if (g->count < g->max)
			g->out[g->count] = g->cur;
		g->count++;
	} else if (!g->ret) {
		g->ret = g->fn(g->arg, &g->cur);
	}
}

static void add_piece(struct gather *g, uint64_t lba, uint64_t n, uint32_t obj,
		      uint32_t off)
{
	struct bs3_map_piece *c = &g->cur;

	if (obj == BS3_MAP_NONE && !g->holes)
		return;
	while (n) {
		uint32_t k = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;

		if (g->have && c->lba + c->nblocks == lba && c->obj == obj &&
		    (obj == BS3_MAP_NONE || c->off + c->nblocks == off) &&
		    (uint64_t)c->nblocks + k <= UINT32_MAX) {
			c->nblocks += k;
		} else {
			flush_piece(g);
			*c = (struct bs3_map_piece){lba, k, obj, off};
			g->have = true;
		}
		lba += k;
		n -= k;
		if (obj != BS3_MAP_NONE)
			off += k;
	}
}

/* Feed the pieces of lba..lba+n-1 (valid range) to g. */
static void scan(const struct bs3_map *m, uint64_t lba, uint64_t n,
		 struct gather *g)
{
	uint64_t end = lba + n;

	for (uint64_t b = lba; b < end && !g->ret;) {
		uint64_t base = b - b % BS3_MAP_REGION;
		const struct region *r = &m->r[base / BS3_MAP_REGION];
		unsigned int s = (unsigned int)(b - base);
		unsigned int e = end - base < BS3_MAP_REGION
					 ? (unsigned int)(end - base)
					 : BS3_MAP_REGION;
		unsigned int at = s;

		for (unsigned int k = first_after(r, s); k < r->n; k++) {
			const struct ent *x = &r->e[k];
			unsigned int es = x->start > s ? x->start : s;
			unsigned int ee = ent_end(x) < e ? ent_end(x) : e;

			if (x->start >= e)
				break;
			if (es > at)
				add_piece(g, base + at, es - at, BS3_MAP_NONE,
					  0);
			add_piece(g, base + es, ee - es, x->obj,
				  x->off + (es - x->start));
			at = ee;
		}
		if (at < e)
			add_piece(g, base + at, e - at, BS3_MAP_NONE, 0);
		b = base + e;
	}
	flush_piece(g);
}

size_t bs3_map_lookup(const struct bs3_map *m, uint64_t lba, uint64_t n,
		      struct bs3_map_piece *out, size_t max)
{
	struct gather g = {.holes = true, .out = out, .max = max};

	if (!n || lba > m->nr_blocks || n > m->nr_blocks - lba)
		return 0;
	scan(m, lba, n, &g);
	return g.count;
}

int bs3_map_walk(const struct bs3_map *m,
		 int (*fn)(void *arg, const struct bs3_map_piece *p), void *arg)
{
	struct gather g = {.fn = fn, .arg = arg};

	/* Regions without entries are skipped without a scan. */
	for (uint64_t ri = 0; ri < m->nr_regions && !g.ret; ri++) {
		const struct region *r = &m->r[ri];

		for (unsigned int k = 0; k < r->n; k++) {
			const struct ent *x = &r->e[k];

			add_piece(&g, ri * BS3_MAP_REGION + x->start,
				  x->len1 + 1u, x->obj, x->off);
			if (g.ret)
				break;
		}
	}
	flush_piece(&g);
	return g.ret;
}

uint64_t bs3_map_live(const struct bs3_map *m, uint32_t obj)
{
	return obj < m->live_cap ? m->live[obj] : 0;
}

uint64_t bs3_map_blocks(const struct bs3_map *m)
{
	return m->nr_blocks;
}

uint64_t bs3_map_extents(const struct bs3_map *m)
{
	return m->extents;
}

uint64_t bs3_map_mapped(const struct bs3_map *m)
{
	return m->mapped;
}

size_t bs3_map_memory(const struct bs3_map *m)
{
	return sizeof(*m) + m->nr_regions * sizeof(*m->r) + m->arr_bytes +
	       m->live_cap * sizeof(*m->live);
}
