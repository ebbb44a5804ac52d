/*
 * Certificates for one test, made with the openssl command in a fresh
 * temporary directory: a CA, a server certificate it signed for localhost,
 * redis.test, 127.0.0.1 and ::1, a client certificate it signed, and an
 * unrelated CA to see verification fail. EC P-256 keys, valid for 3 days.
 */
#ifndef LIBWSM_TESTS_TLS_FILES_H
#define LIBWSM_TESTS_TLS_FILES_H

#include <stdbool.h>

struct tls_files {
	char dir[64];         /* the temporary directory holding them all */
	char ca[128];         /* the CA's certificate (PEM) */
	char ca_dir[128];     /* a directory with ca under its subject hash */
	char server_cert[128], server_key[128];
	char client_cert[128], client_key[128];
	char other_ca[128];   /* a CA that signed none of the above */
	/* Signed by ca for other.test alone: a server that is not the one named. */
	char elsewhere_cert[128], elsewhere_key[128];
	/* For redis_start_with(): tls-auth-clients yes (true) or no. */
	bool require_client_cert;
};

/*
 * 0, or -1 when openssl is missing or failed (nothing is left behind).
 * require_client_cert is false afterwards: the caller sets it.
 */
int tls_files_make(struct tls_files *t);
/* Removes the files and their directory. */
void tls_files_remove(struct tls_files *t);

#endif
