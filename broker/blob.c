/*
 * blob.c: the blob store (being built: HAVE, PUT and GET answer that
 * they are not served yet).
 */
#include "simqd.h"

void
h_have(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	conn_error(c, PERR_SERVER, "this broker does not store blobs yet");
}

void
h_put(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	conn_error(c, PERR_SERVER, "this broker does not store blobs yet");
}

void
h_get(struct conn *c, struct proto_req *r, char *body, size_t blen)
{
	conn_error(c, PERR_SERVER, "this broker does not store blobs yet");
}
