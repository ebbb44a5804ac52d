// A C++ user of <wsm.hpp>, built from the installed files only (.ci/debian
// compiles it with g++ and clang++ and `pkg-config --cflags --libs wsm`):
// an lws server on a free loopback port with libwsm's protocol, one
// WebSocket client of its own on the same context, progress broadcast
// from two std::threads and a complete, then drain and destroy. It
// fails unless the client reads every message's type in seq order, the
// event callback saw the open and the close, and the wrapper's results say
// what the C API says.
#include <wsm.hpp>

#include <libwebsockets.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

struct client_state {
	unsigned long long last_seq = 0;
	int progress = 0;
	bool complete = false, out_of_order = false, closed = false;
};

client_state client;
std::atomic<int> opens{0}, closes{0};

int fail(const char *what)
{
	std::fprintf(stderr, "consumer_hpp: FAIL: %s\n", what);
	return 1;
}

int client_cb(lws *wsi, lws_callback_reasons reason, void *user, void *in,
	      size_t len)
{
	(void)wsi;
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_RECEIVE: {
		std::string text(static_cast<const char *>(in), len);
		const char *seq = std::strstr(text.c_str(), "\"seq\":");
		unsigned long long n = seq ? std::strtoull(seq + 6, nullptr, 10)
					   : 0;

		if (n <= client.last_seq)
			client.out_of_order = true;
		client.last_seq = n;
		if (text.find("\"type\":\"progress\"") != std::string::npos)
			client.progress++;
		if (text.find("\"type\":\"complete\"") != std::string::npos)
			client.complete = true;
		return 0;
	}
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_CLOSED:
		client.closed = true;
		return 0;
	default:
		return 0;
	}
}

} // namespace

int main()
{
	using namespace std::chrono_literals;
	lws_set_log_level(LLL_ERR | LLL_WARN, nullptr);
	wsm::config cfg;
	cfg.set_int(WSM_OPT_PING_INTERVAL_MS, 1000)
	    .set_event_cb([](wsm_event_t ev, std::uint64_t, std::string_view,
			     wsm_close_cause_t) {
		    if (ev == WSM_EVENT_OPEN)
			    opens++;
		    if (ev == WSM_EVENT_CLOSE)
			    closes++;
	    });
	wsm::manager m(cfg);

	std::error_code bad = m.broadcast_progress("no such id", 1);
	if (bad != wsm::errc::session_id) {
		std::fprintf(stderr, "consumer_hpp: %s\n", bad.message().c_str());
		return fail("a bad session id is not WSM_ESESSIONID");
	}

	lws_protocols protocols[3] = {};
	protocols[0].name = "http";
	protocols[0].callback = lws_callback_http_dummy;
	protocols[1].name = "consumer-client";
	protocols[1].callback = client_cb;
	lws_context_creation_info info{};
	info.protocols = protocols;
	info.port = 0;
	info.iface = "127.0.0.1";
	if (m.setup_info(info))
		return fail("setup_info");
	lws_context *ctx = lws_create_context(&info);
	if (!ctx)
		return fail("lws_create_context");
	int port = lws_get_vhost_port(lws_get_vhost_by_name(ctx, "default"));

	lws_client_connect_info ci{};
	ci.context = ctx;
	ci.address = "127.0.0.1";
	ci.port = port;
	ci.path = "/api/images_mvp/progress/job-1";
	ci.host = "127.0.0.1";
	ci.origin = "127.0.0.1";
	ci.protocol = nullptr; // as a browser: no subprotocol
	ci.local_protocol_name = "consumer-client";
	if (!lws_client_connect_via_info(&ci))
		return fail("lws_client_connect_via_info");

	auto deadline = std::chrono::steady_clock::now() + 10s;
	auto service_until = [&](auto done) {
		while (!done() && std::chrono::steady_clock::now() < deadline)
			lws_service(ctx, 0);
		return done();
	};
	if (!service_until([] { return opens.load() == 1; }))
		return fail("the client's connection never opened");

	std::atomic<int> refused{0};
	auto worker = [&m, &refused](double from) {
		for (int i = 0; i < 50; i++)
			if (m.broadcast_progress("job-1", from + i * 0.5, "step"))
				refused++;
	};
	std::thread a(worker, 0.0), b(worker, 50.0);
	a.join();
	b.join();
	if (refused)
		return fail("a progress broadcast was refused");
	if (m.broadcast_complete("job-1", R"({"images":3})"))
		return fail("broadcast_complete");
	if (!service_until([] { return client.complete; }))
		return fail("the client never got the complete");
	if (client.out_of_order || client.progress < 1)
		return fail("messages out of seq order, or no progress");

	auto metrics = m.metrics();
	if (!metrics || metrics.value().broadcasts != 101)
		return fail("metrics: broadcasts is not 101");
	auto status = m.status_json();
	if (!status || status.value().find("\"status\":\"ok\"") ==
			       std::string::npos)
		return fail("status_json");

	auto drained = m.drain(500ms);
	if (!drained || drained.value() != 1)
		return fail("drain did not count the one connection");
	if (!service_until([] { return client.closed; }))
		return fail("the drain did not close the client");
	m.destroy();
	lws_context_destroy(ctx);
	if (closes.load() != 1)
		return fail("the event callback did not see one close");
	std::printf("consumer_hpp: ok: %d progress and the complete at seq %llu "
		    "through <wsm.hpp>, libwsm %#x\n",
		    client.progress, client.last_seq, wsm::version());
	return 0;
}
