/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A CoAP request off the wire into the request model and the router:
 * libcoap's coap_pdu_parse (UDP framing, or RFC 8323 TCP framing when the
 * first byte is odd), then the binding's own translation coapb_parse (the
 * binding is compiled in whole so its static functions are reachable without
 * a socket), then router_dispatch. Input: 1 selector byte + the PDU.
 */
#include "../../src/net/coapb.c"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_coap_once(struct fuzz_env *e, const coap_pdu_t *pdu)
{
	coap_string_t *query = coap_get_query(pdu);
	struct coapb_reqbuf b;
	struct mef_req req;
	const uint8_t *body = NULL;
	size_t len = 0;

	memset(&req, 0, sizeof(req));
	if (coapb_parse(pdu, query, &b, &req) == 0) {
		if (coap_get_data(pdu, &len, &body)) {
			req.body = body;
			req.body_len = len;
		}
		fuzz_dispatch(e, &req);
	}
	coap_delete_string(query);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int started;
	struct fuzz_env *e = fuzz_env();
	coap_proto_t proto;
	coap_pdu_t *pdu;

	if (!started) {
		coap_startup();
		coap_set_log_level(LOG_EMERG);
		started = 1;
	}
	if (size < 1)
		return 0;
	proto = (data[0] & 1) ? COAP_PROTO_TCP : COAP_PROTO_UDP;
	pdu = coap_pdu_init(0, 0, 0, size);
	if (!pdu)
		return 0;
	if (coap_pdu_parse(proto, data + 1, size - 1, pdu))
		fuzz_coap_once(e, pdu);
	coap_delete_pdu(pdu);
	return 0;
}
