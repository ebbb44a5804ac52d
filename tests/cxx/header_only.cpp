// Compiled, never run, by header-hpp.sh: <wsm.hpp> first (it must stand
// alone) and every member used once, so that each template and inline
// function is instantiated under the strict warnings the script sets.
#include <wsm.hpp>

#include <type_traits>

using namespace std::chrono_literals;

static_assert(!std::is_copy_constructible<wsm::config>::value, "move-only");
static_assert(!std::is_copy_assignable<wsm::manager>::value, "move-only");
static_assert(std::is_nothrow_move_constructible<wsm::config>::value, "");
static_assert(std::is_nothrow_move_assignable<wsm::manager>::value, "");
static_assert(std::is_error_code_enum<wsm::errc>::value, "");
static_assert(noexcept(std::declval<wsm::manager &>().broadcast_progress(
		      "s", 1.0, "m", "st")),
	      "broadcasts never throw");
static_assert(noexcept(std::declval<const wsm::manager &>().status_json()),
	      "");

int use_everything(struct lws *wsi, struct lws_context_creation_info &info);

int use_everything(struct lws *wsi, struct lws_context_creation_info &info)
{
	wsm::config cfg;
	int calls = 0;

	cfg.set_int(WSM_OPT_MAX_CONNECTIONS, 10)
		.set_str(WSM_OPT_PATH_PREFIX, std::string_view("/p/x", 3))
		.set_authorize_cb([&](lws *, std::string_view id) {
			return id.empty() ? 403 : 0;
		})
		.set_event_cb([&calls](wsm_event_t, std::uint64_t,
				       std::string_view, wsm_close_cause_t) {
			calls++;
		})
		.set_refused_cb(nullptr);
	std::error_code ec = cfg.try_set_int(WSM_OPT_APP_PING, 2);
	ec = cfg.try_set_str(WSM_OPT_ORIGIN_ALLOW, std::string("a,b"));
	cfg.set_refused_cb([](wsm_refusal_t, int, std::string_view,
			      std::string_view) {});

	wsm::manager m(cfg, ec);
	wsm::manager m2(std::move(m));
	m = std::move(m2);
	if (!m || m.get() == nullptr)
		return 1;
	ec = m.setup_info(info);
	int n = m.callback(wsi, 0, nullptr, nullptr, 0) + m.admit(wsi, "s");
	wsm::result<std::uint64_t> id = m.register_connection(wsi, "s");
	if (id)
		n += static_cast<int>(*id);
	ec = m.broadcast_progress("s", 50.0);
	ec = m.broadcast_progress("s", 50.0, std::nullopt, "stage");
	ec = m.broadcast_error("s", "failed");
	ec = m.broadcast_complete("s", R"({"a":1})");
	ec = m.broadcast_complete("s");
	ec = m.session_open("s");
	n += m.session_close("s").value_or(0);
	if (ec == wsm::errc::again || ec == std::errc::timed_out)
		n++;
	wsm::result<wsm_metrics_t> met = m.metrics();
	if (met)
		n += static_cast<int>(met->connections + (*met).sessions);
	std::string doc = m.status_json().value() +
			  std::move(m.metrics_prometheus()).value();
	n += m.sweep().value_or(-1) + m.drain(2s).value_or(-1);
	ec = m.drain_wait(1500ms);
	wsm::check(ec);
	n += static_cast<int>(wsm::strerror(WSM_EAGAIN).size() +
			      wsm::cause_name(WSM_CAUSE_STALE).size() +
			      wsm::refusal_name(WSM_REFUSAL_RATE).size() +
			      wsm::error_detail().size() + doc.size());
	n += static_cast<int>(wsm::version() & 1);
	if (auto b = wsm::option_bounds(WSM_OPT_MAX_CONNECTIONS))
		n += static_cast<int>(b->max - b->min + b.value().def);
	try {
		wsm::manager thrown(cfg);
		thrown.destroy();
	} catch (const wsm::error &e) {
		n += e.code() == wsm::errc::range;
		n += static_cast<int>(std::string_view(e.what()).size());
	}
	return n + calls;
}
