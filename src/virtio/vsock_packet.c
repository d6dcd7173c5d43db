// SPDX-License-Identifier: Apache-2.0
#include "virtio/vsock_packet.h"

#include <errno.h>
#include <stdbool.h>
#include <strings.h>

static uint64_t get_le(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void vsock_packet__decode(const uint8_t *raw, struct vsock_hdr *h)
{
	h->src_cid = get_le(raw + 0, 8);
	h->dst_cid = get_le(raw + 8, 8);
	h->src_port = (uint32_t)get_le(raw + 16, 4);
	h->dst_port = (uint32_t)get_le(raw + 20, 4);
	h->len = (uint32_t)get_le(raw + 24, 4);
	h->type = (uint16_t)get_le(raw + 28, 2);
	h->op = (uint16_t)get_le(raw + 30, 2);
	h->flags = (uint32_t)get_le(raw + 32, 4);
	h->buf_alloc = (uint32_t)get_le(raw + 36, 4);
	h->fwd_cnt = (uint32_t)get_le(raw + 40, 4);
}

void vsock_packet__encode(const struct vsock_hdr *h, uint8_t *raw)
{
	put_le(raw + 0, h->src_cid, 8);
	put_le(raw + 8, h->dst_cid, 8);
	put_le(raw + 16, h->src_port, 4);
	put_le(raw + 20, h->dst_port, 4);
	put_le(raw + 24, h->len, 4);
	put_le(raw + 28, h->type, 2);
	put_le(raw + 30, h->op, 2);
	put_le(raw + 32, h->flags, 4);
	put_le(raw + 36, h->buf_alloc, 4);
	put_le(raw + 40, h->fwd_cnt, 4);
}

enum vsock_verdict vsock_packet__check_tx(const struct vsock_hdr *h, uint64_t guest_cid,
					  uint64_t payload_bytes)
{
	if (h->src_cid != guest_cid || h->dst_cid != VSOCK_HOST_CID)
		return VSOCK_PKT_DROP;
	if (h->op == VSOCK_OP_RST)
		return h->type == VSOCK_TYPE_STREAM ? VSOCK_PKT_OK : VSOCK_PKT_DROP;
	if (h->type != VSOCK_TYPE_STREAM)
		return VSOCK_PKT_RST;
	if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST)
		return VSOCK_PKT_RST;
	if (h->op != VSOCK_OP_RW)
		return VSOCK_PKT_OK;
	if (h->len > VSOCK_MAX_PKT_BYTES || h->len > payload_bytes)
		return VSOCK_PKT_RST;
	return h->len ? VSOCK_PKT_OK : VSOCK_PKT_DROP;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int vsock_packet__parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char word[] = "CONNECT";
	const size_t wlen = sizeof(word) - 1;
	uint64_t v = 0;
	size_t i, digits = 0;

	if (len > VSOCK_CONNECT_LINE_MAX || len < wlen + 3 || line[len - 1] != '\n')
		return -EINVAL;
	if (strncasecmp(line, word, wlen))
		return -EINVAL;
	i = wlen;
	if (!is_blank(line[i]))
		return -EINVAL;
	while (is_blank(line[i]))
		i++;
	for (; line[i] >= '0' && line[i] <= '9'; i++) {
		if (++digits > 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	if (!digits)
		return -EINVAL;
	while (is_blank(line[i]) || line[i] == '\r')
		i++;
	if (i != len - 1)
		return -EINVAL;
	if (v > UINT32_MAX)
		return -ERANGE;
	*port = (uint32_t)v;
	return 0;
}
