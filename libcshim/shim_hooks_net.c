/*
 * shim_hooks_net.c — network endpoints (design §16, issue 17): bind,
 * listen, connect, accept/accept4 on AF_INET and AF_INET6 sockets (TCP,
 * UDP, SCTP), and sendto/sendmsg on an unconnected datagram socket the first
 * time this process meets a peer.
 *
 * Producer: these hooks (bind and connect are the hooks of
 * shim_hooks_ipc.c, which hand inet addresses to rt_net_bind and
 * rt_net_connect). Consumer: the collector, through the same event record
 * as a file access: str1 is the endpoint, str2 the peer, both canonical
 * strings ("tcp://127.0.0.1:5432", "udp://[::1]:53"; docs/ring-abi.md,
 * "Network endpoints"), so the store aggregates them per process like paths.
 *
 * Transparency: the real call runs first and its result and errno are
 * handed back untouched. The protocol and the local address come from
 * what the program's own calls said (socket's type, bind's address),
 * kept in a per-process table indexed by fd; only a socket this image did
 * not create (inherited, passed, dup'ed) costs one getsockopt or
 * getsockname, once per fd, and a failure is counted in producer_errors.
 * No lock, no allocation, nothing that is not async-signal-safe.
 */
#undef _FORTIFY_SOURCE
#include "shim.h"

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/* ---- what this process knows of its sockets ---- */

enum { RT_K_UNKNOWN = 0, RT_K_TCP, RT_K_UDP, RT_K_SCTP, RT_K_NOT_INET };

/* An endpoint: protocol, family, address, port (host order). */
struct rt_ep {
	uint8_t kind;
	uint8_t family; /* AF_INET, AF_INET6; 0: unknown */
	uint16_t port;
	uint32_t scope; /* IPv6 scope id (link-local) */
	uint8_t addr[16];
};

/* Per fd: the protocol from socket(), the local address from bind() (or
 * learnt once). A sequence counter makes a torn read (a signal handler or
 * another thread rewriting the same fd's entry) read as "unknown". */
struct rt_sockinfo {
	uint32_t seq; /* odd while being written */
	struct rt_ep local;
};

#define RT_NET_FDS 1024
static struct rt_sockinfo rt_socks[RT_NET_FDS];

static void rt_sock_store(int fd, const struct rt_ep *ep)
{
	if (fd < 0 || fd >= RT_NET_FDS)
		return;
	struct rt_sockinfo *si = &rt_socks[fd];
	uint32_t s = __atomic_load_n(&si->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&si->seq, s | 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	si->local = *ep;
	__atomic_store_n(&si->seq, (s | 1) + 1, __ATOMIC_RELEASE);
}

/* Returns 0 when this image knows nothing of fd. */
static int rt_sock_load(int fd, struct rt_ep *ep)
{
	if (fd < 0 || fd >= RT_NET_FDS)
		return 0;
	struct rt_sockinfo *si = &rt_socks[fd];
	uint32_t s = __atomic_load_n(&si->seq, __ATOMIC_ACQUIRE);
	if (s == 0 || (s & 1))
		return 0;
	*ep = si->local;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&si->seq, __ATOMIC_RELAXED) == s;
}

static uint8_t rt_kind_of(int domain, int type)
{
	if (domain != AF_INET && domain != AF_INET6)
		return RT_K_NOT_INET;
	switch (type & 0xf) { /* SOCK_NONBLOCK and SOCK_CLOEXEC are above */
	case SOCK_STREAM:
		return RT_K_TCP;
	case SOCK_DGRAM:
		return RT_K_UDP;
	case SOCK_SEQPACKET:
		return RT_K_SCTP;
	}
	return RT_K_NOT_INET; /* raw sockets have no ports */
}

/* The socket's protocol, asking the kernel once for a socket this image
 * did not create. RT_K_UNKNOWN when even that failed (counted). */
static uint8_t rt_sock_kind(int fd, struct rt_ep *local)
{
	if (rt_sock_load(fd, local) && local->kind != RT_K_UNKNOWN)
		return local->kind;
	__builtin_memset(local, 0, sizeof(*local));
	int type = 0, domain = 0;
	socklen_t l = sizeof(type);
	long r = rt_sys(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, (long)&type, (long)&l, 0);
	l = sizeof(domain);
	if (r == 0)
		r = rt_sys(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, (long)&domain, (long)&l, 0);
	if (r != 0) {
		rt_count_error();
		return RT_K_UNKNOWN;
	}
	local->kind = rt_kind_of(domain, type);
	rt_sock_store(fd, local);
	return local->kind;
}

/* ---- addresses ---- */

/* Reads an inet sockaddr of len bytes into ep (kind left alone). */
static int rt_ep_from(const struct sockaddr *sa, socklen_t len, struct rt_ep *ep)
{
	if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
		return 0;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		ep->family = AF_INET;
		ep->port = ntohs(in->sin_port);
		ep->scope = 0;
		__builtin_memset(ep->addr, 0, sizeof(ep->addr));
		__builtin_memcpy(ep->addr, &in->sin_addr, 4);
		return 1;
	}
	/* 24 bytes: the RFC 2133 sockaddr_in6, without a scope id. */
	if (sa->sa_family == AF_INET6 && len >= 24) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		ep->family = AF_INET6;
		ep->port = ntohs(in6->sin6_port);
		ep->scope = len >= (socklen_t)sizeof(struct sockaddr_in6) ? in6->sin6_scope_id : 0;
		__builtin_memcpy(ep->addr, &in6->sin6_addr, 16);
		return 1;
	}
	return 0;
}

static int rt_is_inet(const struct sockaddr *sa, socklen_t len)
{
	return sa != NULL && len >= (socklen_t)sizeof(sa_family_t) &&
	       (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

/* The local address of fd from the kernel, for a socket whose bind this
 * image did not see or that bound port 0. */
static int rt_ep_local(int fd, struct rt_ep *ep)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	if (rt_sys3(SYS_getsockname, fd, &ss, &l) != 0) {
		rt_count_error();
		return 0;
	}
	return rt_ep_from((const struct sockaddr *)&ss, l < sizeof(ss) ? l : sizeof(ss), ep);
}

static char *rt_put(char *o, const char *s)
{
	while (*s)
		*o++ = *s++;
	return o;
}

static char *rt_hex16(char *o, unsigned v)
{
	static const char hx[] = "0123456789abcdef";
	int started = 0;
	for (int sh = 12; sh >= 0; sh -= 4) {
		unsigned d = (v >> sh) & 0xf;
		if (d || started || sh == 0) {
			*o++ = hx[d];
			started = 1;
		}
	}
	return o;
}

static char *rt_ipv4(char *o, const uint8_t *a)
{
	for (int i = 0; i < 4; i++) {
		if (i)
			*o++ = '.';
		o = rt_utoa(o, a[i]);
	}
	return o;
}

/* RFC 5952 text: lower-case hex, the longest run of two or more zero
 * groups as "::", an IPv4-mapped address with its dotted tail. */
static char *rt_ipv6(char *o, const uint8_t *a)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (__builtin_memcmp(a, mapped, 12) == 0)
		return rt_ipv4(rt_put(o, "::ffff:"), a + 12);
	unsigned g[8];
	int best = -1, bestlen = 0;
	for (int i = 0; i < 8; i++)
		g[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
	for (int i = 0; i < 8;) {
		int j = i;
		while (j < 8 && g[j] == 0)
			j++;
		if (j - i > bestlen && j - i >= 2) {
			best = i;
			bestlen = j - i;
		}
		i = j > i ? j : i + 1;
	}
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			*o++ = ':';
			*o++ = ':';
			i += bestlen - 1;
			continue;
		}
		if (i > 0 && !(best >= 0 && i == best + bestlen))
			*o++ = ':';
		o = rt_hex16(o, g[i]);
	}
	return o;
}

static const char *rt_scheme(uint8_t kind)
{
	switch (kind) {
	case RT_K_TCP:
		return "tcp://";
	case RT_K_UDP:
		return "udp://";
	case RT_K_SCTP:
		return "sctp://";
	}
	return "ip://"; /* the protocol could not be learnt */
}

/* Room for "sctp://[" + 45 + "%4294967295]:65535" and a "?peer=" host. */
#define RT_EP_MAX 160

/* Writes the address alone (no scheme, no port) at o. */
static char *rt_host(char *o, const struct rt_ep *ep)
{
	if (ep->family == AF_INET)
		return rt_ipv4(o, ep->addr);
	o = rt_ipv6(o, ep->addr);
	if (ep->scope) {
		*o++ = '%';
		o = rt_utoa(o, ep->scope);
	}
	return o;
}

/* "tcp://127.0.0.1:5432", "udp://[::1]:53"; NUL-terminated, returns the end. */
static char *rt_ep_format(char *o, const struct rt_ep *ep)
{
	o = rt_put(o, rt_scheme(ep->kind));
	if (ep->family == AF_INET6)
		*o++ = '[';
	o = rt_host(o, ep);
	if (ep->family == AF_INET6)
		*o++ = ']';
	*o++ = ':';
	o = rt_utoa(o, ep->port);
	*o = 0;
	return o;
}

static void rt_net_emit(uint16_t op, uint32_t flags, int32_t result, uint16_t rflags, const char *s1, const char *s2)
{
	struct rt_call c = {.op = op, .access = RT_ACCESS_WRITE, .rflags = rflags, .result = result, .flags = flags,
			    .dirfd1 = AT_FDCWD, .path1 = s1, .path1_raw = 1, .dirfd2 = AT_FDCWD, .path2 = s2,
			    .path2_raw = 1};
	rt_emit(&c);
}

/* ---- bind, connect (called from shim_hooks_ipc.c's hooks) ---- */

void rt_net_bind(int fd, const struct sockaddr *addr, socklen_t len, int ret) RT_HIDDEN;
void rt_net_connect(int fd, const struct sockaddr *addr, socklen_t len, int ret) RT_HIDDEN;

/* The address of a bind or connect on an inet socket, with the socket's
 * protocol; 0 for anything else, or a pointer the kernel could not read. */
static int rt_inet_call(int fd, const struct sockaddr *addr, socklen_t len, int ret, int err, struct rt_ep *ep)
{
	struct rt_ep local;
	if ((ret < 0 && err == EFAULT) || !rt_is_inet(addr, len) || !rt_ep_from(addr, len, ep))
		return 0;
	ep->kind = rt_sock_kind(fd, &local);
	return ep->kind != RT_K_NOT_INET;
}

void rt_net_bind(int fd, const struct sockaddr *addr, socklen_t len, int ret)
{
	int err = errno;
	struct rt_ep ep;
	if (!rt_inet_call(fd, addr, len, ret, err, &ep))
		return;
	/* A bind to port 0 gets a port the kernel chose, which only the
	 * kernel can say: a datagram socket serves it from now on, and the
	 * eBPF mode records the same. */
	if (ret == 0 && ep.port == 0) {
		uint8_t kind = ep.kind;
		if (rt_ep_local(fd, &ep))
			ep.kind = kind;
		else
			ep.port = 0, ep.kind = kind;
	}
	if (ret == 0)
		rt_sock_store(fd, &ep);
	if (rt_active()) {
		char s[RT_EP_MAX];
		rt_ep_format(s, &ep);
		rt_net_emit(RT_OP_BIND, 0, rt_result(ret, err), 0, s, NULL);
	}
	errno = err;
}

/* Datagram peers this process has met, so a sendto records a peer once,
 * not per datagram: open addressing over hashes of (peer, pid, outcome),
 * inserted with a CAS. The pid in the hash makes a forked child meet its
 * peers anew without clearing anything. When a probe run is full the
 * send is recorded anyway (the store aggregates it). */
#define RT_PEERS 512
#define RT_PEER_PROBES 16
static uint64_t rt_peers[RT_PEERS];

static uint64_t rt_peer_hash(const struct rt_ep *ep, int ok)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	const uint8_t *b = ep->addr;
	for (int i = 0; i < 16; i++)
		h = (h ^ b[i]) * UINT64_C(0x100000001b3);
	h ^= (uint64_t)ep->port << 32 | (uint64_t)ep->kind << 24 | (uint64_t)ep->family << 16 | (uint64_t)(ok != 0);
	h ^= (uint64_t)(uint32_t)rt_self_pid() * UINT64_C(0x9e3779b97f4a7c15);
	h ^= (uint64_t)ep->scope * UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 29;
	return h | 1; /* 0 is an empty slot */
}

/* Returns 1 the first time this process meets ep with this outcome. */
static int rt_peer_first(const struct rt_ep *ep, int ok)
{
	uint64_t h = rt_peer_hash(ep, ok);
	for (unsigned i = 0; i < RT_PEER_PROBES; i++) {
		uint64_t *slot = &rt_peers[(h + i) & (RT_PEERS - 1)];
		uint64_t v = __atomic_load_n(slot, __ATOMIC_RELAXED);
		if (v == h)
			return 0;
		if (v == 0) {
			if (__atomic_compare_exchange_n(slot, &v, h, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				return 1;
			if (v == h)
				return 0;
		}
	}
	return 1;
}

void rt_net_connect(int fd, const struct sockaddr *addr, socklen_t len, int ret)
{
	int err = errno;
	struct rt_ep ep;
	if (!rt_inet_call(fd, addr, len, ret, err, &ep))
		return;
	if (ep.kind == RT_K_UDP && ret == 0) {
		struct rt_ep peer = ep;
		peer.kind = RT_K_UNKNOWN; /* as rt_net_send keys it */
		(void)rt_peer_first(&peer, 1); /* its datagrams need no sendto record */
	}
	if (rt_active()) {
		char s[RT_EP_MAX];
		/* A non-blocking connect (or one a signal interrupted) goes on
		 * in the kernel: the program learns the outcome later. */
		uint16_t rf = ret < 0 && (err == EINPROGRESS || err == EINTR) ? RT_RF_IN_PROGRESS : 0;
		rt_ep_format(s, &ep);
		rt_net_emit(RT_OP_CONNECT, 0, rt_result(ret, err), rf, s, NULL);
	}
	errno = err;
}

/* ---- socket, listen, accept ---- */

RT_EXPORT int socket(int domain, int type, int protocol)
{
	RT_REAL(socket);
	if (!real_socket) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_socket(domain, type, protocol);
	if (ret >= 0) {
		struct rt_ep ep = {.kind = rt_kind_of(domain, type)};
		rt_sock_store(ret, &ep);
	}
	return ret;
}

/* The bound address of a listening socket: what bind said, or the
 * kernel's when the port was 0 (chosen at bind) or the bind was not seen. */
static int rt_listening_ep(int fd, struct rt_ep *ep)
{
	uint8_t kind = rt_sock_kind(fd, ep);
	if (kind == RT_K_NOT_INET)
		return 0;
	if (ep->family == 0 || ep->port == 0) {
		if (!rt_ep_local(fd, ep)) {
			ep->family = 0;
			ep->kind = kind;
			return 1;
		}
		ep->kind = kind;
		rt_sock_store(fd, ep);
	}
	return 1;
}

RT_EXPORT int listen(int fd, int backlog)
{
	RT_REAL(listen);
	if (!real_listen) {
		errno = ENOSYS;
		return -1;
	}
	int ret = real_listen(fd, backlog);
	int err = errno;
	struct rt_ep ep;
	if (rt_active() && rt_listening_ep(fd, &ep)) {
		char s[RT_EP_MAX];
		if (ep.family)
			rt_ep_format(s, &ep);
		else
			rt_put(rt_put(s, rt_scheme(ep.kind)), "?")[0] = 0; /* address unknown, counted */
		rt_net_emit(RT_OP_LISTEN, (uint32_t)backlog, rt_result(ret, err), 0, s, NULL);
	}
	errno = err;
	return ret;
}

/* One accepted connection: str1 = the listening endpoint with the peer's
 * host ("tcp://0.0.0.0:5432?peer=127.0.0.1": the store keeps one row per
 * listener and client host, never per connection), str2 = the peer with its
 * port. "Nothing to accept" (EAGAIN, EINTR) is the loop's normal end, not
 * a use of the endpoint: not recorded. */
static void rt_net_accept(uint16_t op, int fd, const struct sockaddr *addr, socklen_t cap, const socklen_t *lenp,
			  int flags, int ret)
{
	int err = errno;
	struct rt_ep ep, peer;
	if (ret < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == EFAULT))
		return;
	if (!rt_active() || !rt_listening_ep(fd, &ep))
		return;
	if (ret >= 0) {
		struct rt_ep acc = {.kind = ep.kind};
		rt_sock_store(ret, &acc);
	}
	char s1[RT_EP_MAX], s2[RT_EP_MAX], *o;
	const char *p2 = NULL;
	if (ep.family)
		o = rt_ep_format(s1, &ep);
	else
		o = rt_put(rt_put(s1, rt_scheme(ep.kind)), "?");
	socklen_t got = lenp != NULL ? *lenp : 0;
	if (ret >= 0 && addr != NULL && rt_ep_from(addr, got < cap ? got : cap, &peer)) {
		peer.kind = ep.kind;
		o = rt_host(rt_put(o, "?peer="), &peer);
		rt_ep_format(s2, &peer);
		p2 = s2;
	}
	*o = 0;
	rt_net_emit(op, (uint32_t)flags, rt_result(ret, err), 0, s1, p2);
	errno = err;
}

RT_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *lenp)
{
	RT_REAL(accept);
	if (!real_accept) {
		errno = ENOSYS;
		return -1;
	}
	socklen_t cap = lenp != NULL && addr != NULL ? *lenp : 0;
	int ret = real_accept(fd, addr, lenp);
	rt_net_accept(RT_OP_ACCEPT, fd, addr, cap, lenp, 0, ret);
	return ret;
}

RT_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *lenp, int flags)
{
	RT_REAL(accept4);
	if (!real_accept4) {
		errno = ENOSYS;
		return -1;
	}
	socklen_t cap = lenp != NULL && addr != NULL ? *lenp : 0;
	int ret = real_accept4(fd, addr, lenp, flags);
	rt_net_accept(RT_OP_ACCEPT4, fd, addr, cap, lenp, flags, ret);
	return ret;
}

/* ---- datagrams to a peer named per call ---- */

static void rt_net_send(uint16_t op, int fd, const struct sockaddr *addr, socklen_t len, long ret)
{
	int err = errno;
	struct rt_ep ep, local;
	if (ret < 0 && (err == EFAULT || err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == EBADF ||
			err == ENOTSOCK))
		return;
	if (!rt_is_inet(addr, len) || !rt_ep_from(addr, len, &ep))
		return;
	/* The peer table first, keyed without the protocol: a datagram to a
	 * peer already met costs no lookup and never a system call, even on
	 * an fd the socket table cannot hold. */
	ep.kind = RT_K_UNKNOWN;
	if (!rt_peer_first(&ep, ret >= 0) || !rt_active())
		return;
	ep.kind = rt_sock_kind(fd, &local);
	if (ep.kind != RT_K_UDP && ep.kind != RT_K_UNKNOWN)
		return; /* a stream socket ignores the address */
	char s[RT_EP_MAX];
	rt_ep_format(s, &ep);
	rt_net_emit(op, 0, rt_result(ret, err), 0, s, NULL);
	errno = err;
}

RT_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len)
{
	RT_REAL(sendto);
	if (!real_sendto) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t ret = real_sendto(fd, buf, n, flags, addr, len);
	if (addr != NULL)
		rt_net_send(RT_OP_SENDTO, fd, addr, len, (long)ret);
	return ret;
}

RT_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	RT_REAL(sendmsg);
	if (!real_sendmsg) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t ret = real_sendmsg(fd, msg, flags);
	if (msg != NULL && !(ret < 0 && errno == EFAULT) && msg->msg_name != NULL)
		rt_net_send(RT_OP_SENDMSG, fd, (const struct sockaddr *)msg->msg_name, msg->msg_namelen, (long)ret);
	return ret;
}
