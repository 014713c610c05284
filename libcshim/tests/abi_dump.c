/*
 * abi_dump.c — prints every size, offset and constant of ring_abi.h, one per
 * line, for ring/abi_test.go to compare against the Go mirror.
 * Lines: "field STRUCT.FIELD OFFSET SIZE", "sizeof STRUCT N",
 * "const NAME VALUE", "op NUMBER NAME ACCESS",
 * "layout NSUB CTL_OFFSET CUT_OFFSET DATA_OFFSET CUT_SIZE".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../ring_abi.h"

#define FIELD(s, f) printf("field %s.%s %zu %zu\n", #s, #f, offsetof(struct s, f), sizeof(((struct s *)0)->f))
#define CONST(c) printf("const %s %llu\n", #c, (unsigned long long)(c))

int main(void)
{
	printf("sizeof rt_ring_header %zu\n", sizeof(struct rt_ring_header));
	FIELD(rt_ring_header, magic);
	FIELD(rt_ring_header, abi_major);
	FIELD(rt_ring_header, abi_minor);
	FIELD(rt_ring_header, header_size);
	FIELD(rt_ring_header, data_size);
	FIELD(rt_ring_header, slot_size);
	FIELD(rt_ring_header, max_record);
	FIELD(rt_ring_header, ring_id);
	FIELD(rt_ring_header, created_ns);
	FIELD(rt_ring_header, flags);
	FIELD(rt_ring_header, full_wait_ns);
	FIELD(rt_ring_header, nsub);
	FIELD(rt_ring_header, owner_uid);
	FIELD(rt_ring_header, sub_size);
	FIELD(rt_ring_header, ctl_offset);
	FIELD(rt_ring_header, cut_offset);
	FIELD(rt_ring_header, data_offset);
	FIELD(rt_ring_header, file_size);
	FIELD(rt_ring_header, ncuts);
	FIELD(rt_ring_header, cut_size);
	FIELD(rt_ring_header, reserved1);
	FIELD(rt_ring_header, consumer_pid);
	FIELD(rt_ring_header, heartbeat_ns);
	FIELD(rt_ring_header, released_cut);
	FIELD(rt_ring_header, last_cut);
	FIELD(rt_ring_header, reserved2);
	FIELD(rt_ring_header, dropped_full_records);
	FIELD(rt_ring_header, dropped_full_bytes);
	FIELD(rt_ring_header, dropped_toobig_records);
	FIELD(rt_ring_header, dropped_toobig_bytes);
	FIELD(rt_ring_header, full_waits);
	FIELD(rt_ring_header, producer_errors);
	FIELD(rt_ring_header, attached);
	FIELD(rt_ring_header, attach_failed);
	FIELD(rt_ring_header, abandoned_records);
	FIELD(rt_ring_header, abandoned_bytes);
	FIELD(rt_ring_header, corrupted_records);
	FIELD(rt_ring_header, corrupted_bytes);
	FIELD(rt_ring_header, consumed_records);
	FIELD(rt_ring_header, consumed_bytes);
	FIELD(rt_ring_header, repaired_tails);
	FIELD(rt_ring_header, repaired_heads);
	FIELD(rt_ring_header, doorbell);
	FIELD(rt_ring_header, reserved5a);
	FIELD(rt_ring_header, reserved5);
	FIELD(rt_ring_header, reserved_tail);

	printf("sizeof rt_sub %zu\n", sizeof(struct rt_sub));
	FIELD(rt_sub, tail);
	FIELD(rt_sub, reserved_t);
	FIELD(rt_sub, head);
	FIELD(rt_sub, reserved_h);

	printf("sizeof rt_cut %zu\n", sizeof(struct rt_cut));
	FIELD(rt_cut, id);
	FIELD(rt_cut, consumed_records);
	FIELD(rt_cut, consumed_bytes);
	FIELD(rt_cut, abandoned_records);
	FIELD(rt_cut, abandoned_bytes);
	FIELD(rt_cut, corrupted_records);
	FIELD(rt_cut, corrupted_bytes);
	FIELD(rt_cut, reserved);
	printf("field rt_cut.pos %zu 0\n", offsetof(struct rt_cut, pos));

	for (uint32_t nsub = 1; nsub <= RT_MAX_SUB; nsub *= 2) {
		uint64_t ctl, cut, data;
		rt_layout(nsub, &ctl, &cut, &data);
		printf("layout %u %llu %llu %llu %u\n", nsub, (unsigned long long)ctl, (unsigned long long)cut,
		       (unsigned long long)data, rt_cut_size(nsub));
	}

	printf("sizeof rt_record %zu\n", sizeof(struct rt_record));
	FIELD(rt_record, stamp);
	FIELD(rt_record, len);
	FIELD(rt_record, type);
	FIELD(rt_record, access);
	FIELD(rt_record, op);
	FIELD(rt_record, time_ns);
	FIELD(rt_record, start_ns);
	FIELD(rt_record, pid);
	FIELD(rt_record, tid);
	FIELD(rt_record, ppid);
	FIELD(rt_record, result);
	FIELD(rt_record, flags);
	FIELD(rt_record, mode);
	FIELD(rt_record, len1);
	FIELD(rt_record, len2);
	FIELD(rt_record, len3);
	FIELD(rt_record, rflags);

	CONST(RT_MAGIC);
	CONST(RT_ABI_MAJOR);
	CONST(RT_ABI_MINOR);
	CONST(RT_PAGE_SIZE);
	CONST(RT_HEADER_SIZE);
	CONST(RT_CACHE_LINE);
	CONST(RT_SLOT_SIZE);
	CONST(RT_SLOT_SHIFT);
	CONST(RT_SUB_CTL_SIZE);
	CONST(RT_MAX_SUB);
	CONST(RT_MIN_SUB_SIZE);
	CONST(RT_MIN_DATA_SIZE);
	CONST(RT_MAX_DATA_SIZE);
	CONST(RT_DEFAULT_DATA_SIZE);
	CONST(RT_NCUTS);
	CONST(RT_MAX_RECORD_SIZE);
	CONST(RT_PATH_MAX);
	CONST(RT_DEFAULT_FULL_WAIT_NS);
	CONST(RT_HIGH_WATER_PERCENT);
	CONST(RT_STAMP_XOR);
	CONST(RT_HF_FUTEX_DOORBELL);
	CONST(RT_TYPE_EVENT);
	CONST(RT_TYPE_PROC);
	CONST(RT_ACCESS_NONE);
	CONST(RT_ACCESS_READ);
	CONST(RT_ACCESS_WRITE);
	CONST(RT_ACCESS_LOOKUP);
	CONST(RT_RF_ARGV_TRUNCATED);
	CONST(RT_RF_UNRESOLVED);
	CONST(RT_RF_PRE_INIT);
	CONST(RT_RF_PATH2_UNRESOLVED);
	CONST(RT_RF_TOO_LONG);
	CONST(RT_RF_SANDBOXED);
	CONST(RT_RF_IN_PROGRESS);

#define OP_LINE(name, num, str, access) printf("op %d %s %d\n", num, str, access);
	RT_OPS(OP_LINE)
#undef OP_LINE
	return 0;
}
