/*
 * rt_rendezvous.h — how a traced process gets its ring from the collector.
 *
 * Producer of the request: the shim, once per process image (constructor,
 * or first hook before it; a forked child keeps the inherited mapping).
 * Consumer: the collector's rendezvous server (collector/rendezvous.go, the
 * Go mirror of this file). The shim connects to one well-known unix stream
 * socket, sends a hello, and gets back a reply with, on success, one file
 * descriptor (SCM_RIGHTS): the ring of the uid the kernel vouches for
 * (SO_PEERCRED), which the collector created owned by that uid, mode 0600.
 * The shim maps it and closes the fd: the process keeps no descriptor.
 * A refused registration (the collector cannot make a ring for this uid)
 * carries a reason and no fd, and the collector counts the process as not
 * traced. docs/shim.md and docs/collector.md describe the guarantees.
 */
#ifndef RESTRACK_RT_RENDEZVOUS_H
#define RESTRACK_RT_RENDEZVOUS_H

#include <stdint.h>

/* The collector's well-known socket; RESTRACK_SOCKET overrides it (not in
 * a setuid program, which trusts no environment variable). */
#define RT_RDV_DEFAULT_SOCKET "/run/restrack/collector.sock"

#define RT_RDV_MAGIC 0x31564452u /* "RDV1" little-endian */
#define RT_RDV_VERSION 1u

/* Hello flags. */
#define RT_RDV_HELLO_SECURE 0x1u /* AT_SECURE: a setuid/setgid image */

/* Sent by the shim right after connect. */
struct rt_rdv_hello {
	uint32_t magic;
	uint32_t version;
	int32_t pid; /* as the process sees itself (its pid namespace) */
	uint32_t flags;
};

/* The collector's answer: this header, then text_len bytes of text. With
 * status 0 the message carries the ring's fd and the text is the
 * process's executable (readlink of /proc/PID/exe, taken by the collector
 * so that the process need not read /proc itself); otherwise no fd, and
 * the text says why (shown with RESTRACK_DEBUG=1). */
struct rt_rdv_reply {
	uint32_t magic;
	int32_t status;    /* 0, or a positive errno-like code */
	uint32_t uid;      /* the uid the collector verified and attributes records to */
	uint32_t text_len; /* ≤ RT_RDV_TEXT_MAX */
	uint64_t start_ns; /* the process's start (/proc/PID/stat field 22), 0 if unknown */
};

#define RT_RDV_TEXT_MAX 4096u
/* How long a process start may wait for the collector's answer: a stopped
 * or overloaded collector costs each new process at most this, after which
 * the process runs untraced. */
#define RT_RDV_TIMEOUT_MS 500

#endif /* RESTRACK_RT_RENDEZVOUS_H */
