// <wsm.hpp> with a real lws server and real WebSocket clients on loopback:
// progress, error and complete broadcast from several std::threads to
// several sessions arrive in order at every client; the wrapper's error
// results (bad or empty session ids, views holding a NUL, wrong thread,
// after drain, after destroy); the status document; a graceful shutdown.
// A plain program: exits 0 when every check passed.
#include <wsm.hpp>

#include <jansson.h>

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "server.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int kSessions = 4, kClientsPerSession = 2, kThreads = 4;
constexpr int kPerThread = 100; // progress and errors, each, per session

std::string session_name(int s)
{
	return "job-" + std::to_string(s);
}

// The manager's open and close events and its refusals, for waiting on.
struct event_log {
	std::mutex mu;
	std::condition_variable cv;
	int opens = 0, closes = 0, drained = 0;
	std::map<wsm_refusal_t, int> refused;
};

struct client {
	wsc_t *ws = nullptr;
	int session = 0;
	std::vector<std::string> frames;
};

// Reads until the client has every error sent to its session and the
// complete, or until a frame is 5 s late.
void read_all(client &c, int errors_expected)
{
	int errors = 0;
	bool complete = false;

	while (errors < errors_expected || !complete) {
		char *text = nullptr;
		std::size_t len = 0;

		if (wsc_recv(c.ws, &text, &len, 5000) != 1)
			return;
		c.frames.emplace_back(text, len);
		std::free(text);
		const std::string &f = c.frames.back();
		if (f.find("\"type\":\"error\"") != std::string::npos)
			errors++;
		else if (f.find("\"type\":\"complete\"") != std::string::npos)
			complete = true;
	}
}

std::string json_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

// Seq rises across all of a client's frames; each thread's progress and
// errors arrive in the order it sent them, every error of every thread
// arrives, and the complete comes after its sender's last error.
void check_order(const client &c, const std::string &extra_error)
{
	long long last_seq = 0;
	int next_error[kThreads] = {}, last_progress[kThreads];
	int completes = 0, extra = 0;

	for (int &p : last_progress)
		p = -1;
	for (const std::string &f : c.frames) {
		json_error_t jerr;
		json_t *j = json_loads(f.c_str(), 0, &jerr);

		CHECK(j != nullptr);
		if (!j)
			continue;
		long long seq = json_integer_value(json_object_get(j, "seq"));
		CHECK(seq > last_seq);
		last_seq = seq;
		CHECK(json_str(j, "sessionId") == session_name(c.session));
		std::string type = json_str(j, "type");
		int t = -1, i = -1;

		if (type == "progress") {
			CHECK(std::sscanf(json_str(j, "message").c_str(),
					  "t%d-p%d", &t, &i) == 2);
			CHECK(json_str(j, "stage") == "stage");
			if (t >= 0 && t < kThreads) {
				CHECK(i > last_progress[t]); // may coalesce
				last_progress[t] = i;
			}
		} else if (type == "error") {
			std::string e = json_str(j, "error");

			if (e == extra_error) {
				extra++;
			} else {
				CHECK(std::sscanf(e.c_str(), "t%d-e%d", &t,
						  &i) == 2);
				if (t >= 0 && t < kThreads) {
					CHECK(i == next_error[t]);
					next_error[t] = i + 1;
				}
			}
		} else if (type == "complete") {
			json_t *meta = json_object_get(j, "metadata");
			int by = static_cast<int>(json_integer_value(
				json_object_get(meta, "thread")));

			completes++;
			CHECK(by == c.session % kThreads);
			CHECK(next_error[by] == kPerThread);
		} else {
			CHECK(!"unexpected message type");
		}
		json_decref(j);
	}
	for (int t = 0; t < kThreads; t++)
		CHECK(next_error[t] == kPerThread);
	CHECK(completes == 1);
	CHECK(extra == (extra_error.empty() ? 0 : 1));
}

// A broadcast that retries while the inbox is full (it never is here, at
// this capacity), without sleeping, for at most 5 s.
template <class Call> std::error_code retrying(Call call)
{
	auto until = std::chrono::steady_clock::now() + 5s;
	std::error_code ec;

	while ((ec = call()) == wsm::errc::again &&
	       std::chrono::steady_clock::now() < until)
		std::this_thread::yield();
	return ec;
}

void broadcaster(wsm::manager &m, int t, std::atomic<int> &bad)
{
	// A stage that is a slice of a longer, unterminated-looking buffer.
	static const char stage_buf[] = "stageXYZ";
	std::string_view stage(stage_buf, 5);

	for (int i = 0; i < kPerThread; i++) {
		for (int s = 0; s < kSessions; s++) {
			std::string id = session_name(s);
			std::string p = "t" + std::to_string(t) + "-p" +
					std::to_string(i);
			std::string e = "t" + std::to_string(t) + "-e" +
					std::to_string(i);
			double pct = 100.0 * i / kPerThread;

			if (retrying([&] {
				    return m.broadcast_progress(id, pct, p,
								stage);
			    }) ||
			    retrying([&] { return m.broadcast_error(id, e); }))
				bad++;
		}
	}
	// The sessions whose complete this thread sends.
	for (int s = t; s < kSessions; s += kThreads) {
		std::string meta = "{\"thread\":" + std::to_string(t) + "}";

		if (retrying([&] {
			    return m.broadcast_complete(session_name(s), meta);
		    }))
			bad++;
	}
}

// Wrong arguments come back as error codes, never as crashes or throws.
void check_argument_errors(wsm::manager &m)
{
	const char with_nul[] = { 'j', 'o', 'b', '\0', 'x' };

	CHECK(m.broadcast_progress("", 1.0) == wsm::errc::session_id);
	CHECK(m.broadcast_progress(std::string_view(), 1.0) ==
	      wsm::errc::session_id);
	CHECK(m.broadcast_error(std::string_view(with_nul, 5), "e") ==
	      wsm::errc::inval);
	CHECK(m.broadcast_error("job-0", std::string_view(with_nul, 5)) ==
	      wsm::errc::inval);
	CHECK(m.broadcast_progress("job-0", 101.0) == wsm::errc::range);
	CHECK(m.broadcast_progress("job-0", 1.0, std::nullopt,
				   std::string(2000, 's')) ==
	      wsm::errc::too_long);
	// Longer than any session id: through the wrapper's heap copy.
	CHECK(m.broadcast_error(std::string(300, 'a'), "e") ==
	      wsm::errc::session_id);
	CHECK(m.broadcast_complete("job-0", "[1]") == wsm::errc::json);
	CHECK(m.broadcast_complete("job-0", "{") == wsm::errc::json);
	CHECK(m.session_close("no-such-job").error() == wsm::errc::not_found);
	CHECK(m.session_close("").error() == wsm::errc::session_id);
	CHECK(m.session_open(std::string_view(with_nul, 5)) ==
	      wsm::errc::inval);
	// Service-thread calls from another thread.
	CHECK(m.sweep().error() == wsm::errc::thread);
	CHECK(m.drain(100ms).error() == wsm::errc::thread);
	CHECK(m.drain_wait(100ms) == wsm::errc::thread);
	CHECK(m.register_connection(nullptr, "job-0").error() ==
	      wsm::errc::inval);
	// The generic condition, through the category.
	CHECK(m.broadcast_error(std::string_view(with_nul, 5), "e") ==
	      std::errc::invalid_argument);
	CHECK(wsm::strerror(WSM_ETHREAD) ==
	      wsm::category().message(WSM_ETHREAD));
}

void check_status(const wsm::manager &m, const char *status,
		  long long connections)
{
	wsm::result<std::string> doc = m.status_json();

	REQUIRE(doc);
	json_error_t jerr;
	json_t *j = json_loadb(doc->data(), doc->size(), 0, &jerr);

	REQUIRE(j != nullptr);
	CHECK(json_str(j, "status") == status);
	CHECK(json_integer_value(json_object_get(
		      json_object_get(j, "metrics"), "totalConnections")) ==
	      connections);
	CHECK(json_integer_value(json_object_get(
		      json_object_get(j, "config"), "maxQueuedMessages")) ==
	      4096);
	json_decref(j);
}

} // namespace

int main()
{
	event_log log;
	wsm::config cfg;

	CHECK(wsm::version() == WSM_VERSION_HEX);
	// Room for every message a client may not have read yet: a slow
	// reader is not what this test is about.
	cfg.set_int(WSM_OPT_MAX_QUEUED_MESSAGES, 4096)
		.set_int(WSM_OPT_MAX_QUEUED_BYTES, 4 << 20)
		.set_event_cb([&log](wsm_event_t ev, std::uint64_t,
				     std::string_view, wsm_close_cause_t) {
			std::lock_guard<std::mutex> lock(log.mu);
			if (ev == WSM_EVENT_OPEN)
				log.opens++;
			else if (ev == WSM_EVENT_CLOSE)
				log.closes++;
			else if (ev == WSM_EVENT_DRAINED)
				log.drained++;
			log.cv.notify_all();
		})
		.set_refused_cb([&log](wsm_refusal_t why, int, std::string_view,
				       std::string_view) {
			std::lock_guard<std::mutex> lock(log.mu);
			log.refused[why]++;
		});
	test::server srv{ wsm::manager(cfg) };
	wsm::manager &m = srv.mgr();

	std::vector<client> clients(kSessions * kClientsPerSession);
	for (std::size_t k = 0; k < clients.size(); k++) {
		clients[k].session = static_cast<int>(k) % kSessions;
		clients[k].ws = srv.join(session_name(clients[k].session));
		REQUIRE(clients[k].ws != nullptr);
	}
	REQUIRE(test::wait_for(log.mu, log.cv, 5000, [&] {
		return log.opens == static_cast<int>(clients.size());
	}));
	check_argument_errors(m);

	// A session id that is the front of a longer buffer, and a text
	// longer than the wrapper's stack buffer: both must arrive intact.
	static const char id_buf[] = "job-0-and-more";
	const std::string long_error(700, 'L');
	CHECK(!m.broadcast_error(std::string_view(id_buf, 5), "sliced"));
	CHECK(!m.broadcast_error("job-1", long_error));

	std::vector<std::thread> readers;
	for (client &c : clients)
		readers.emplace_back([&c] {
			int extra = c.session <= 1 ? 1 : 0;
			read_all(c, kThreads * kPerThread + extra);
		});
	std::atomic<int> bad{ 0 };
	std::vector<std::thread> workers;
	for (int t = 0; t < kThreads; t++)
		workers.emplace_back(
			[&m, t, &bad] { broadcaster(m, t, bad); });
	for (std::thread &w : workers)
		w.join();
	for (std::thread &r : readers)
		r.join();
	CHECK(bad == 0);
	for (const client &c : clients)
		check_order(c, c.session == 0   ? "sliced"
			       : c.session == 1 ? long_error
						: "");

	wsm::result<wsm_metrics_t> met = m.metrics();
	REQUIRE(met);
	CHECK(met->connections == clients.size());
	CHECK(met->broadcasts >=
	      static_cast<std::uint64_t>(kThreads * kPerThread * kSessions * 2));
	check_status(m, "ok", static_cast<long long>(clients.size()));
	wsm::result<std::string> prom = m.metrics_prometheus();
	CHECK(prom && prom->find("wsm_") != std::string::npos);
	srv.call([&] { CHECK(m.sweep().value_or(-1) == 0); });

	// Graceful shutdown: the clients answer the close frames while the
	// service thread drains and waits for the last connection.
	std::vector<std::thread> closers;
	std::vector<int> codes(clients.size());
	for (std::size_t k = 0; k < clients.size(); k++)
		closers.emplace_back([&clients, &codes, k] {
			codes[k] = wsc_wait_close(clients[k].ws, 10000);
		});
	wsm::result<int> drained = wsm::errc::inval;
	std::error_code waited = wsm::errc::inval;
	wsm::result<int> again = wsm::errc::inval;
	srv.call([&] {
		drained = m.drain(200ms);
		waited = m.drain_wait(8000ms);
		again = m.drain(200ms);
	});
	for (std::thread &c : closers)
		c.join();
	CHECK(drained && *drained == static_cast<int>(clients.size()));
	CHECK(!waited);
	CHECK(again && *again == 0); // one under way, or done
	for (int code : codes)
		CHECK(code == WSM_CLOSE_GOING_AWAY);
	CHECK(test::wait_for(log.mu, log.cv, 5000, [&] {
		return log.closes == static_cast<int>(clients.size()) &&
		       log.drained == 1;
	}));
	for (client &c : clients)
		wsc_free(c.ws);

	// After the drain: upgrades are refused with 503, status says so.
	int status = 0;
	wsc_t *late = srv.join("job-late", &status);
	CHECK(late == nullptr && status == 503);
	wsc_free(late);
	check_status(m, "draining", 0);
	{
		std::lock_guard<std::mutex> lock(log.mu);
		CHECK(log.refused[WSM_REFUSAL_SHUTDOWN] == 1);
	}

	// After destroy: the wrapper holds no handle, every call says so.
	srv.call([&] { m.destroy(); });
	CHECK(!m);
	CHECK(m.broadcast_progress("job-0", 1.0) == wsm::errc::inval);
	CHECK(m.broadcast_complete("job-0") == wsm::errc::inval);
	CHECK(m.status_json().error() == wsm::errc::inval);
	CHECK(m.metrics().error() == wsm::errc::inval);
	CHECK(m.session_open("job-0") == wsm::errc::inval);

	std::printf("test_cxx_threads: %d of %d checks failed\n", test::failures,
		    test::checks.load());
	return test::failures ? 1 : 0;
}
