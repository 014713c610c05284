/*
 * tp.h — the LTTng-UST tracepoint the `lttng` benchmark mode fires after
 * every open, carrying what restrack's record carries (the path and the
 * result), so the two user-space tracers are compared doing the same work.
 * tp.c instantiates the provider; openloop.c fires it when built with
 * -DWITH_LTTNG.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER restrack_bench

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./tp.h"

#if !defined(RESTRACK_BENCH_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define RESTRACK_BENCH_TP_H

#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(restrack_bench, open,
	LTTNG_UST_TP_ARGS(const char *, path, int, result),
	LTTNG_UST_TP_FIELDS(
		lttng_ust_field_string(path, path)
		lttng_ust_field_integer(int, result, result)
	)
)

#endif /* RESTRACK_BENCH_TP_H */

#include <lttng/tracepoint-event.h>
