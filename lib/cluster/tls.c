/*
 * TLS to Redis (rediss://), by OpenSSL over memory BIOs: the connection
 * feeds what the socket read and sends what OpenSSL wrote, so TLS rides
 * the same lws raw socket on every event loop. lws's own client TLS is not
 * used on that socket: lws 4.1's raw client never reports
 * LWS_CALLBACK_RAW_CONNECTED for a TLS connection and does not continue a
 * handshake that needs a round trip (client-handshake.c, the "rawish"
 * branch), and the two lws versions libwsm supports differ there.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"

struct wsm_tls {
	SSL *ssl;
	BIO *in, *out; /* what the socket read; what it must send */
};

/* OpenSSL's reason for the last failure, and the queue emptied. */
static void last_error(char *why, size_t size, const char *what)
{
	unsigned long e = ERR_get_error();
	char text[160];

	if (e)
		ERR_error_string_n(e, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "no detail");
	snprintf(why, size, "%s: %s", what, text);
	ERR_clear_error();
}

SSL_CTX *wsm__tls_ctx_new(const struct wsm_settings *s, char *why,
			  size_t size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	const char *file = s->cluster_tls_ca_file[0] ? s->cluster_tls_ca_file
						     : NULL;
	const char *dir = s->cluster_tls_ca_path[0] ? s->cluster_tls_ca_path
						    : NULL;

	if (!ctx) {
		last_error(why, size, "TLS");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (file || dir) {
		if (SSL_CTX_load_verify_locations(ctx, file, dir) != 1) {
			last_error(why, size, file ? "WSM_OPT_CLUSTER_TLS_CA_FILE"
						   : "WSM_OPT_CLUSTER_TLS_CA_PATH");
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		last_error(why, size, "TLS: the system's CA store");
		goto fail;
	}
	if (s->cluster_tls_cert_file[0] &&
	    SSL_CTX_use_certificate_chain_file(ctx, s->cluster_tls_cert_file) !=
		    1) {
		last_error(why, size, "WSM_OPT_CLUSTER_TLS_CERT_FILE");
		goto fail;
	}
	if (s->cluster_tls_key_file[0] &&
	    (SSL_CTX_use_PrivateKey_file(ctx, s->cluster_tls_key_file,
					 SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1)) {
		last_error(why, size, "WSM_OPT_CLUSTER_TLS_KEY_FILE");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void wsm__tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

struct wsm_tls *wsm__tls_new(wsm_manager_t *m, SSL_CTX *ctx,
			     const char *name)
{
	struct wsm_tls *t = wsm__alloc(m, sizeof(*t));
	unsigned char bin[16];
	bool ip = inet_pton(AF_INET, name, bin) == 1 ||
		  inet_pton(AF_INET6, name, bin) == 1;

	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	if (!(t->ssl = SSL_new(ctx)) || !(t->in = BIO_new(BIO_s_mem())) ||
	    !(t->out = BIO_new(BIO_s_mem())))
		goto fail;
	/* EOF on an empty input BIO is "more to come", not the end. */
	BIO_set_mem_eof_return(t->in, -1);
	SSL_set_bio(t->ssl, t->in, t->out);
	SSL_set_connect_state(t->ssl);
	/* The certificate must name what the host wrote: a name, or an IP. */
	if (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl),
					       name) != 1
	       : (SSL_set_tlsext_host_name(t->ssl, name) != 1 ||
		  SSL_set1_host(t->ssl, name) != 1))
		goto fail;
	return t;
fail:
	if (t->ssl) {
		SSL_free(t->ssl); /* and the BIOs it was given */
	} else {
		BIO_free(t->in);
		BIO_free(t->out);
	}
	ERR_clear_error();
	wsm__free(m, t, sizeof(*t));
	return NULL;
}

void wsm__tls_free(wsm_manager_t *m, struct wsm_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	wsm__free(m, t, sizeof(*t));
}

int wsm__tls_feed(struct wsm_tls *t, const void *in, size_t len)
{
	return len > INT_MAX || BIO_write(t->in, in, (int)len) != (int)len
		       ? -1
		       : 0;
}

/* 1: done; 0: waiting for the peer; -1: failed, why says why. */
int wsm__tls_handshake(struct wsm_tls *t, char *why, size_t size)
{
	int rc = SSL_do_handshake(t->ssl);
	long v;

	if (rc == 1)
		return 1;
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	default:
		if ((v = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
			snprintf(why, size, "TLS: the server's certificate: %s",
				 X509_verify_cert_error_string(v));
			ERR_clear_error();
		} else {
			last_error(why, size, "TLS handshake");
		}
		return -1;
	}
}

int wsm__tls_read(struct wsm_tls *t, void *buf, int size, char *why,
		  size_t why_size)
{
	int n = SSL_read(t->ssl, buf, size);

	if (n > 0)
		return n;
	switch (SSL_get_error(t->ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(why, why_size, "TLS: the server closed the session");
		return -1;
	default:
		/* An alert after the handshake: a client certificate refused. */
		last_error(why, why_size, "TLS");
		return -1;
	}
}

int wsm__tls_write(struct wsm_tls *t, const void *buf, int len)
{
	/* Memory BIOs take everything: a partial write cannot happen. */
	if (SSL_write(t->ssl, buf, len) != len) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

size_t wsm__tls_pending(const struct wsm_tls *t)
{
	return BIO_ctrl_pending(t->out);
}

int wsm__tls_take(struct wsm_tls *t, void *buf, int size)
{
	int n = BIO_read(t->out, buf, size);

	return n > 0 ? n : 0;
}
