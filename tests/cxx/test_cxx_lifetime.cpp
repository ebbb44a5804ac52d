// <wsm.hpp>'s lifetimes: the callables given to a config live exactly as
// long as a manager built from it can call them (through the close events
// wsm_manager_destroy() reports, after the config is gone), no longer; a
// config changed after building a manager leaves that manager's callables
// alone; moves; the throwing and non-throwing setup calls. The callables
// count their live copies and mark themselves dead when destroyed, so a
// call on a destroyed one is seen here (and by ASan, as a use after free).
// A plain program: exits 0 when every check passed.
#include <wsm.hpp>

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "server.hpp"

namespace {

struct probe_state {
	std::mutex mu;
	std::condition_variable cv;
	int live = 0; // probes alive, copies included
	int opens = 0, closes = 0, shutdown_closes = 0, peer_closes = 0;
	int dead_calls = 0; // calls on a destroyed probe
};

// An event callable that knows whether it is still alive.
class probe {
public:
	explicit probe(probe_state *st) : st_(st) { add(1); }
	probe(const probe &other) : st_(other.st_) { add(1); }
	probe(probe &&other) noexcept : st_(other.st_) { add(1); }
	probe &operator=(const probe &) = delete;
	~probe()
	{
		magic_ = kDead;
		add(-1);
	}

	void operator()(wsm_event_t ev, std::uint64_t conn_id,
			std::string_view session, wsm_close_cause_t cause) const
	{
		std::lock_guard<std::mutex> lock(st_->mu);

		if (magic_ != kAlive)
			st_->dead_calls++;
		CHECK(conn_id > 0 && !session.empty());
		if (ev == WSM_EVENT_OPEN)
			st_->opens++;
		if (ev == WSM_EVENT_CLOSE) {
			st_->closes++;
			st_->shutdown_closes += cause == WSM_CAUSE_SHUTDOWN;
			st_->peer_closes += cause == WSM_CAUSE_PEER;
		}
		st_->cv.notify_all();
	}

private:
	static constexpr unsigned kAlive = 0x11fe, kDead = 0xdead;

	void add(int n) noexcept
	{
		std::lock_guard<std::mutex> lock(st_->mu);
		st_->live += n;
	}

	probe_state *st_;
	unsigned magic_ = kAlive;
};

int live(probe_state &st)
{
	std::lock_guard<std::mutex> lock(st.mu);
	return st.live;
}

// The config goes first; the manager still calls its callable, through
// its own destruction, and lets it go right after.
void callable_outlives_config()
{
	probe_state st;
	std::optional<test::server> srv;

	{
		wsm::config cfg;

		cfg.set_event_cb(probe(&st));
		srv.emplace(wsm::manager(cfg));
	}
	CHECK(live(st) == 1); // the manager's, no more
	wsc_t *c[3] = { srv->join("a-1"), srv->join("a-1"), srv->join("a-2") };
	for (wsc_t *w : c)
		REQUIRE(w != nullptr);
	REQUIRE(test::wait_for(st.mu, st.cv, 5000, [&] { return st.opens == 3; }));

	CHECK(wsc_send_close(c[0], 1000) == 0);
	CHECK(wsc_wait_close(c[0], 5000) == 1000);
	CHECK(test::wait_for(st.mu, st.cv, 5000,
			     [&] { return st.peer_closes == 1; }));

	// Two connections left: destroy reports their closes on this call.
	srv->call([&] { srv->mgr().destroy(); });
	{
		std::lock_guard<std::mutex> lock(st.mu);
		CHECK(st.closes == 3);
		CHECK(st.shutdown_closes == 2);
		CHECK(st.dead_calls == 0);
		CHECK(st.live == 0); // released with the manager
	}
	srv.reset();
	for (wsc_t *w : c)
		wsc_free(w);
}

// Changing a config's callback after building a manager: the first
// manager keeps its callable, the second gets the new one.
void config_changes_after_build()
{
	probe_state first, second;
	wsm::config cfg;

	cfg.set_event_cb(probe(&first));
	auto s1 = std::make_unique<test::server>(wsm::manager(cfg));
	cfg.set_event_cb(probe(&second));
	CHECK(live(first) == 1); // only s1's manager holds it now
	auto s2 = std::make_unique<test::server>(wsm::manager(cfg));
	cfg.set_event_cb(nullptr); // s2 keeps its callable
	CHECK(live(second) == 1);

	wsc_t *a = s1->join("b-1"), *b = s2->join("b-2");
	REQUIRE(a && b);
	REQUIRE(test::wait_for(first.mu, first.cv, 5000,
			       [&] { return first.opens == 1; }));
	REQUIRE(test::wait_for(second.mu, second.cv, 5000,
			       [&] { return second.opens == 1; }));
	s1.reset(); // its manager is destroyed on its service thread
	CHECK(live(first) == 0);
	CHECK(live(second) == 1);
	{
		std::lock_guard<std::mutex> lock(first.mu);
		CHECK(first.opens == 1 && first.closes == 1);
		CHECK(first.dead_calls == 0);
	}
	s2.reset();
	CHECK(live(second) == 0);
	{
		std::lock_guard<std::mutex> lock(second.mu);
		CHECK(second.opens == 1 && second.closes == 1);
		CHECK(second.dead_calls == 0);
	}
	wsc_free(a);
	wsc_free(b);
}

// The authorize and refused callables, with views of the session id and
// the peer; a path prefix given as a slice of a longer buffer.
void authorize_and_refused()
{
	struct refusal {
		wsm_refusal_t why;
		int status;
		std::string session, peer;
	};
	std::mutex mu;
	std::vector<refusal> refused;
	std::vector<std::string> asked;
	static const char prefix_buf[] = "/jobs/and-more";
	wsm::config cfg;

	cfg.set_str(WSM_OPT_PATH_PREFIX, std::string_view(prefix_buf, 6))
		.set_authorize_cb([&](lws *wsi, std::string_view id) {
			std::lock_guard<std::mutex> lock(mu);
			CHECK(wsi != nullptr);
			asked.emplace_back(id);
			return id == "deny-me" ? 401 : 0;
		})
		.set_refused_cb([&](wsm_refusal_t why, int status,
				    std::string_view id, std::string_view peer) {
			std::lock_guard<std::mutex> lock(mu);
			refused.push_back({ why, status, std::string(id),
					    std::string(peer) });
		});
	test::server srv{ wsm::manager(cfg) };
	int status = 0;

	wsc_t *ok = srv.join("ok-1", &status, "/jobs/");
	CHECK(ok != nullptr && status == 101);
	wsc_t *no = srv.join("deny-me", &status, "/jobs/");
	CHECK(no == nullptr && status == 401);
	wsc_t *lost = srv.join("ok-2", &status, "/api/images_mvp/progress/");
	CHECK(lost == nullptr && status == 404);
	{
		std::lock_guard<std::mutex> lock(mu);
		CHECK(asked.size() == 2);
		CHECK(asked.size() == 2 && asked[0] == "ok-1" &&
		      asked[1] == "deny-me");
		REQUIRE(refused.size() == 2);
		CHECK(refused[0].why == WSM_REFUSAL_DENIED);
		CHECK(refused[0].status == 401);
		CHECK(refused[0].session == "deny-me");
		CHECK(refused[0].peer == "127.0.0.1");
		CHECK(refused[1].why == WSM_REFUSAL_BAD_PATH);
		CHECK(refused[1].status == 404);
	}
	wsc_free(ok);
	wsc_free(no);
	wsc_free(lost);
}

// Setup errors throw wsm::error (or fill an error_code); moves leave
// empty objects whose calls fail with WSM_EINVAL; the callables go with
// the last owner.
void setup_errors_and_moves()
{
	wsm::config cfg;

	try {
		cfg.set_int(WSM_OPT_MAX_CONNECTIONS, 0);
		CHECK(!"set_int(0) did not throw");
	} catch (const wsm::error &e) {
		CHECK(e.code() == wsm::errc::range);
		CHECK(std::strstr(e.what(), "WSM_OPT_MAX_CONNECTIONS"));
	}
	CHECK(!wsm::error_detail().empty());
	// Unknown, but inside the enum's range: C++ allows no other value.
	CHECK(cfg.try_set_int(static_cast<wsm_option_t>(999), 1) ==
	      wsm::errc::option);
	CHECK(cfg.try_set_str(WSM_OPT_PATH_PREFIX,
			      std::string_view("/a\0b/", 5)) ==
	      wsm::errc::inval);
	CHECK(cfg.try_set_str(WSM_OPT_PROTOCOL_NAME, "") == wsm::errc::range);
	CHECK(cfg.try_set_str(WSM_OPT_PROTOCOL_NAME, std::string(300, 'p')) ==
	      wsm::errc::range);
	CHECK(!cfg.try_set_str(WSM_OPT_ORIGIN_ALLOW, std::string_view()));

	// Two options that are each in range but not together.
	cfg.set_int(WSM_OPT_PING_INTERVAL_MS, 1000)
		.set_int(WSM_OPT_STALE_TIMEOUT_MS, 1000);
	try {
		wsm::manager bad(cfg);
		CHECK(!"manager() did not throw");
	} catch (const wsm::error &e) {
		CHECK(e.code() == wsm::errc::range);
		CHECK(std::strstr(e.what(), "WSM_OPT_STALE_TIMEOUT_MS"));
	}
	std::error_code ec;
	wsm::manager empty(cfg, ec);
	CHECK(ec == wsm::errc::range && !empty);
	CHECK(empty.broadcast_progress("s", 1.0) == wsm::errc::inval);
	try {
		empty.metrics().value();
		CHECK(!"value() did not throw");
	} catch (const wsm::error &e) {
		CHECK(e.code() == wsm::errc::inval);
	}

	probe_state st;
	cfg.set_int(WSM_OPT_STALE_TIMEOUT_MS, 3000).set_event_cb(probe(&st));
	CHECK(live(st) == 1);
	wsm::manager m1(cfg);
	wsm::manager m2(std::move(m1));
	CHECK(!m1 && m2);
	CHECK(m1.status_json().error() == wsm::errc::inval);
	CHECK(m2.status_json().has_value());
	CHECK(live(st) == 1); // one block, shared by cfg and m2
	// Assigning destroys the old manager (never bound to a context, so
	// any thread may); cfg still holds the callable.
	m2 = wsm::manager(wsm::config{});
	CHECK(m2 && live(st) == 1);
	wsm::config moved(std::move(cfg));
	CHECK(cfg.get() == nullptr && live(st) == 1);
	CHECK(cfg.try_set_int(WSM_OPT_MAX_CONNECTIONS, 5) == wsm::errc::inval);
	try {
		cfg.set_event_cb(nullptr);
		CHECK(!"set_event_cb on a moved-from config did not throw");
	} catch (const wsm::error &e) {
		CHECK(e.code() == wsm::errc::inval);
	}
	wsm::manager from_moved(cfg, ec);
	CHECK(ec == wsm::errc::inval && !from_moved);
	moved = wsm::config{};
	CHECK(live(st) == 0);

	wsm::result<wsm::bounds> b = wsm::option_bounds(WSM_OPT_MAX_CONNECTIONS);
	CHECK(b && b->min == 1 && b->max == 1000000 && b->def == 10000);
	CHECK(wsm::option_bounds(WSM_OPT_PATH_PREFIX).error() ==
	      wsm::errc::option);
	CHECK(wsm::cause_name(WSM_CAUSE_STALE) == "stale");
	CHECK(wsm::refusal_name(WSM_REFUSAL_SESSION_FULL) == "session_full");
	CHECK(std::string(wsm::make_error_code(wsm::errc::outbox).category()
				  .name()) == "wsm");
	wsm::check(std::error_code());
}

} // namespace

int main()
{
	setup_errors_and_moves();
	callable_outlives_config();
	config_changes_after_build();
	authorize_and_refused();
	std::printf("test_cxx_lifetime: %d of %d checks failed\n", test::failures,
		    test::checks.load());
	return test::failures ? 1 : 0;
}
