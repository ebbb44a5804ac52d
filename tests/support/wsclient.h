/*
 * wsclient.h - minimal blocking-with-timeouts RFC 6455 client for the
 * libwsm integration tests (loopback only, no TLS, no extensions).
 *
 * No global state: each wsc_t is independent; a single wsc_t must only be
 * used from one thread at a time.  All waits are bounded by the timeouts
 * given (negative timeouts are treated as 0, i.e. "poll once").
 */
#ifndef LIBWSM_TESTS_WSCLIENT_H
#define LIBWSM_TESTS_WSCLIENT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wsc wsc_t;

/* Connect to 127.0.0.1:port and upgrade via "GET <path>" (+ extra_headers, each line ending in \r\n); *http_status gets the response status (0 on no valid response/timeout/connect failure); returns the client only on 101, else NULL. */
wsc_t *wsc_connect(int port, const char *path, const char *extra_headers, int timeout_ms, int *http_status);

/* Like wsc_connect, but binds the local end of the socket to src_ip (e.g. "127.0.0.2") first. */
wsc_t *wsc_connect_from(const char *src_ip, int port, const char *path, const char *extra_headers, int timeout_ms, int *http_status);

/* Like wsc_connect_from, to dst_ip (NULL: 127.0.0.1) instead of loopback. */
wsc_t *wsc_connect_to(const char *src_ip, const char *dst_ip, int port, const char *path, const char *extra_headers, int timeout_ms, int *http_status);
/* Like wsc_connect, with a receive buffer of rcvbuf bytes set before the TCP connect: the server's writes back up quickly. */
wsc_t *wsc_connect_rcvbuf(int port, const char *path, int rcvbuf, int timeout_ms, int *http_status);
/* Answer server pings with pongs automatically (on != 0; default on). */
void wsc_set_auto_pong(wsc_t *c, int on);

/* Wait up to timeout_ms for the next data message: 1 = got one (*out malloc'ed, NUL-terminated, *len; out/len may be NULL), 0 = timeout, -1 = closed (close frame or EOF), -2 = protocol error. */
int wsc_recv(wsc_t *c, char **out, size_t *len, int timeout_ms);

/* Read (discarding data) until the server's close frame or EOF: returns its close code, 1005 if it had none, 1006 on EOF without close frame, 0 on timeout, -1 on protocol error. */
int wsc_wait_close(wsc_t *c, int timeout_ms);

/* Close code received so far (1005 = close frame without code, 1006 = EOF without close frame), or 0 if none yet. */
int wsc_close_code(const wsc_t *c);

/* Reason text of the server's close frame ("" if none yet). */
const char *wsc_close_reason(const wsc_t *c);
/* Number of ping frames received so far. */
unsigned wsc_pings(const wsc_t *c);

/* Send one masked frame with any opcode (0x0..0xF, not validated) and FIN bit (fin != 0); any payload size; bounded by 5 s; returns 0 or -1. */
int wsc_send_frame(wsc_t *c, int opcode, int fin, const void *data, size_t len);

/* Send one unfragmented text frame containing strlen(text) bytes; returns 0 or -1. */
int wsc_send_text(wsc_t *c, const char *text);

/* Send raw bytes (no framing), bounded by timeout_ms; returns 0 or -1. */
int wsc_send_raw(wsc_t *c, const void *data, size_t len, int timeout_ms);
/* Send a close frame carrying this 16-bit code and no reason (code 0: empty payload); does not wait; returns 0 or -1. */
int wsc_send_close(wsc_t *c, int code);

/* Underlying (non-blocking) socket fd, or -1 if c is NULL. */
int wsc_fd(const wsc_t *c);

/* Close the socket and free everything; safe with NULL. */
void wsc_free(wsc_t *c);

/* One HTTP/1.1 request (Connection: close; optional extra header lines and body with Content-Length) to 127.0.0.1:port; returns the status (0 on failure/timeout) and, if body_out, a malloc'ed NUL-terminated body (NULL on failure). */
int wsc_http(int port, const char *method, const char *path, const char *extra_headers, const char *body, char **body_out, int timeout_ms);

/* Sends request as it is to 127.0.0.1:port and reads until the server closes; returns the response's status (0: none, e.g. the socket was dropped, or a timeout) and, if response_out, the malloc'ed response (head and body) when the server closed in time. */
int wsc_exchange(int port, const char *request, char **response_out, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* LIBWSM_TESTS_WSCLIENT_H */
