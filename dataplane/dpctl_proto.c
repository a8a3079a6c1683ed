/* tvsd control socket messages, see dpctl_proto.h. DPDK-free: tvsd,
 * control/ and the fuzzer link it. */
#include <string.h>

#include "dpctl_proto.h"

static const char *const dpctl_names[DPCTL_REQ_MAX] = {
	[DPCTL_HELP] = "help",
	[DPCTL_STATUS] = "status",
	[DPCTL_STATS] = "stats",
	[DPCTL_RELOAD] = "reload",
	[DPCTL_ROLLOUT] = "rollout",
	[DPCTL_MEMORY] = "memory",
};

const char *
dpctl_name(uint32_t type)
{
	return type > 0 && type < DPCTL_REQ_MAX ? dpctl_names[type] : NULL;
}

uint32_t
dpctl_type_of(const char *name)
{
	for (uint32_t t = 1; t < DPCTL_REQ_MAX; t++)
		if (strcmp(dpctl_names[t], name) == 0)
			return t;
	return 0;
}

static bool
is_request(uint32_t type)
{
	return type > 0 && type < DPCTL_REQ_MAX;
}

/* The most a payload of this type may hold; 0 also for unknown types. */
static size_t
payload_max(uint32_t type)
{
	if (type == DPCTL_ERROR)
		return DPCTL_MSG_MAX;
	if (type == (DPCTL_RELOAD | DPCTL_REPLY))
		return sizeof(struct dpctl_reload) + DPCTL_LCORES_MAX * sizeof(uint32_t) +
			DPCTL_MSG_MAX;
	if ((type & DPCTL_REPLY) != 0 && is_request(type & ~DPCTL_REPLY))
		return DPCTL_JSON_MAX;
	return 0;
}

bool
dpctl_check_hdr(const struct dpctl_hdr *h, bool from_tvsd)
{
	if (h->magic != DPCTL_MAGIC)
		return false;
	if (!from_tvsd)
		return is_request(h->type) && h->len == 0;
	return payload_max(h->type) > 0 && h->len <= payload_max(h->type);
}

/* p[0..len) is text without NUL, then one NUL that ends it; at least min
 * bytes of text. */
static bool
nul_ended(const uint8_t *p, size_t len, size_t min)
{
	return len > min && p[len - 1] == '\0' && memchr(p, '\0', len - 1) == NULL;
}

static bool
check_reload(const uint8_t *p, size_t len)
{
	struct dpctl_reload r;
	size_t ids;

	if (len < sizeof(r))
		return false;
	memcpy(&r, p, sizeof(r));
	if (r.ok > 1 || r.nlcores > DPCTL_LCORES_MAX)
		return false;
	ids = (size_t)r.nlcores * sizeof(uint32_t);
	if (len - sizeof(r) < ids)
		return false;
	return nul_ended(p + sizeof(r) + ids, len - sizeof(r) - ids, 0) &&
		len - sizeof(r) - ids <= DPCTL_MSG_MAX;
}

bool
dpctl_check(uint32_t type, const uint8_t *p, size_t len)
{
	if (is_request(type))
		return len == 0;
	if (type == DPCTL_ERROR)
		return len <= DPCTL_MSG_MAX && nul_ended(p, len, 1);
	if (type == (DPCTL_RELOAD | DPCTL_REPLY))
		return check_reload(p, len);
	if ((type & DPCTL_REPLY) != 0 && is_request(type & ~DPCTL_REPLY))
		return len <= DPCTL_JSON_MAX && nul_ended(p, len, 1) && p[0] == '{';
	return false;
}

long
dpctl_frame(const uint8_t *buf, size_t n, bool from_tvsd, struct dpctl_hdr *h)
{
	if (n < sizeof(*h))
		return 0;
	memcpy(h, buf, sizeof(*h));
	if (!dpctl_check_hdr(h, from_tvsd))
		return -1;
	if (n - sizeof(*h) < h->len)
		return 0;
	if (!dpctl_check(h->type, buf + sizeof(*h), h->len))
		return -1;
	return (long)(sizeof(*h) + h->len);
}

void
dpctl_reload_parse(const uint8_t *p, struct dpctl_reload_view *v)
{
	memcpy(&v->r, p, sizeof(v->r));
	v->lcores = p + sizeof(v->r);
	v->msg = (const char *)(v->lcores + (size_t)v->r.nlcores * sizeof(uint32_t));
}

uint32_t
dpctl_reload_lcore(const struct dpctl_reload_view *v, uint32_t i)
{
	uint32_t id;

	memcpy(&id, v->lcores + (size_t)i * sizeof(id), sizeof(id));
	return id;
}
