/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The extent map: volume block -> (object id, block offset in its data).
 *
 * The volume is cut into regions of BS3_MAP_REGION blocks; each region holds
 * a sorted array of 8-byte extents (start and length within the region,
 * object id, offset).  Lookups index the region directly and search 256
 * entries at most; an update moves at most one region's array.  Adjacent
 * extents that continue each other in one object are merged, so a volume
 * written sequentially costs one extent per region.  Worst case (every
 * block its own extent): 8 bytes per block plus array slack (arrays grow
 * by 1/4, capped at a full region), i.e. <= 10 bytes per block, 2.5 GiB
 * for 1 TiB of 4 KiB blocks; measured 8.06 (test_bs3_map).  An update that
 * fails with -ENOMEM leaves the map unchanged.
 *
 * Object ids are small integers chosen by the engine (its object table
 * slots); the map counts live blocks per object id.  Not thread-safe: the
 * engine locks.
 */
#ifndef BS3_MAP_H
#define BS3_MAP_H

#include <stddef.h>
#include <stdint.h>

#define BS3_MAP_REGION 256u	  /* blocks per region */
#define BS3_MAP_NONE   UINT32_MAX /* "unmapped" (reads as zeros) */

struct bs3_map;

/* One piece of a lookup, or of a walk: obj == BS3_MAP_NONE for a hole. */
struct bs3_map_piece {
	uint64_t lba;
	uint32_t nblocks;
	uint32_t obj;
	uint32_t off;
};

/* A map of nr_blocks blocks, all unmapped.  NULL on ENOMEM. */
struct bs3_map *bs3_map_new(uint64_t nr_blocks);
void bs3_map_free(struct bs3_map *m);

/*
 * Map lba..lba+n-1 to obj at off..off+n-1 (off + n <= BS3_MAX_OBJ_BLOCKS),
 * replacing whatever was there.  0 or -ENOMEM, -EINVAL (out of range).
 */
int bs3_map_set(struct bs3_map *m, uint64_t lba, uint32_t n, uint32_t obj,
		uint32_t off);

/* Unmap lba..lba+n-1 (discard, write-zeroes).  0 or -ENOMEM, -EINVAL. */
int bs3_map_clear(struct bs3_map *m, uint64_t lba, uint64_t n);

/*
 * GC's conditional move: every block of lba..lba+n-1 that maps to
 * (src_obj, src_off + i) now maps to (obj, off + i); others are left alone.
 * Returns the number of blocks moved, or -ENOMEM / -EINVAL.
 */
int64_t bs3_map_move(struct bs3_map *m, uint64_t lba, uint32_t n,
		     uint32_t src_obj, uint32_t src_off, uint32_t obj,
		     uint32_t off);

/*
 * The pieces covering lba..lba+n-1, holes included, in order; at most max
 * are written to out.  Returns how many pieces there are in all (so a
 * return > max means the caller must look again with a bigger array);
 * 0 when the range is empty or not inside the volume.  Pieces are merged
 * across region boundaries: neighbours never continue each other.
 */
size_t bs3_map_lookup(const struct bs3_map *m, uint64_t lba, uint64_t n,
		      struct bs3_map_piece *out, size_t max);

/*
 * Every mapped extent in lba order (no holes), merged across region
 * boundaries as in bs3_map_lookup() (so at most 65536 blocks each, one
 * object's worth).  Stops and returns fn's value when it is not 0.
 */
int bs3_map_walk(const struct bs3_map *m,
		 int (*fn)(void *arg, const struct bs3_map_piece *p),
		 void *arg);

/* Live (mapped) blocks of an object id; 0 for ids never used. */
uint64_t bs3_map_live(const struct bs3_map *m, uint32_t obj);

uint64_t bs3_map_blocks(const struct bs3_map *m);  /* nr_blocks */
/* Mapped extents now, as stored: split at region boundaries. */
uint64_t bs3_map_extents(const struct bs3_map *m);
uint64_t bs3_map_mapped(const struct bs3_map *m);  /* mapped blocks now */
size_t bs3_map_memory(const struct bs3_map *m);	   /* bytes allocated */

#endif /* BS3_MAP_H */
