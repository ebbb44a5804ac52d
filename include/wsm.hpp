/*
 * libwsm for C++17: a header-only wrapper over <wsm.h>, which it includes.
 * Nothing here is part of the C ABI; it compiles into the host. wsm.hpp(3).
 *
 * Ownership. wsm::config and wsm::manager own their C handles and are
 * move-only; a moved-from object holds no handle, and calls on it fail
 * with WSM_EINVAL as the C calls do for NULL. get() gives the C handle for
 * calls this header does not wrap.
 *
 * Errors: building throws, using does not.
 *   - The config's set_* setters and the manager's constructor throw
 *     wsm::error, a std::system_error in wsm::category() whose what()
 *     carries wsm_error_detail(). try_set_* and the constructor taking a
 *     std::error_code& are the non-throwing forms.
 *   - Every other member is noexcept and returns a std::error_code, or a
 *     wsm::result<T> (a value or an error code): broadcasts sit on hot
 *     paths, where WSM_EAGAIN or WSM_EOUTBOX are routine. Compare with
 *     wsm::errc (ec == wsm::errc::again); wsm::check() throws if you prefer.
 *
 * Strings. Every std::string_view is copied into a NUL-terminated buffer
 * (on the stack when short, else malloc) before it reaches the C call, so
 * views need not be terminated. A view holding a NUL byte is refused with
 * WSM_EINVAL: the C call would see only its first part.
 *
 * Callbacks. The callables given to a config are kept, with the config,
 * in a block the manager built from it shares: the C manager copies the
 * callbacks' user pointer, so the manager keeps the block alive until
 * wsm_manager_destroy() has returned (which still reports closes). Changing
 * a config's callbacks after a manager was built from it gives the config
 * a new block; the manager keeps calling the callables it was built with.
 * Callables run on the lws service thread (or the thread destroying the
 * manager) and must not throw: an exception cannot cross libwsm's C frames,
 * so one that escapes ends the program (std::terminate).
 */
#ifndef WSM_HPP
#define WSM_HPP

#include "wsm.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace wsm {

/* The WSM_E* codes, for comparing: ec == wsm::errc::again. */
enum class errc : int {
	inval = WSM_EINVAL,
	nomem = WSM_ENOMEM,
	range = WSM_ERANGE,
	option = WSM_EOPTION,
	session_id = WSM_ESESSIONID,
	utf8 = WSM_EUTF8,
	too_long = WSM_ETOOLONG,
	json = WSM_EJSON,
	session_full = WSM_ESESSIONFULL,
	full = WSM_EFULL,
	denied = WSM_EDENIED,
	not_found = WSM_ENOTFOUND,
	exist = WSM_EEXIST,
	shutdown = WSM_ESHUTDOWN,
	again = WSM_EAGAIN,
	thread = WSM_ETHREAD,
	not_bound = WSM_ENOTBOUND,
	timed_out = WSM_ETIMEDOUT,
	no_cluster = WSM_ENOCLUSTER,
	outbox = WSM_EOUTBOX
};

namespace detail {
class category_impl final : public std::error_category {
public:
	const char *name() const noexcept override { return "wsm"; }
	std::string message(int code) const override
	{
		return wsm_strerror(code);
	}
	/* So that generic checks (ec == std::errc::timed_out) work too. */
	std::error_condition default_error_condition(int code) const
		noexcept override
	{
		switch (code) {
		case WSM_EINVAL: return std::errc::invalid_argument;
		case WSM_ENOMEM: return std::errc::not_enough_memory;
		case WSM_EAGAIN: return std::errc::resource_unavailable_try_again;
		case WSM_ETIMEDOUT: return std::errc::timed_out;
		default: return std::error_condition(code, *this);
		}
	}
};
} // namespace detail

/* One instance for the program: an inline function's static is shared. */
inline const std::error_category &category() noexcept
{
	static const detail::category_impl instance;
	return instance;
}

inline std::error_code make_error_code(errc e) noexcept
{
	return std::error_code(static_cast<int>(e), category());
}

/* A C return value as an error code: negative is an error, the rest not. */
inline std::error_code to_error_code(int rc) noexcept
{
	return rc < 0 ? std::error_code(rc, category()) : std::error_code();
}

} // namespace wsm

namespace std {
template <> struct is_error_code_enum<wsm::errc> : true_type {};
} // namespace std

namespace wsm {

/* What the throwing calls throw. */
class error : public std::system_error {
public:
	explicit error(std::error_code ec, const std::string &what = "")
		: std::system_error(ec, what)
	{
	}
	error(int code, const std::string &what)
		: std::system_error(code, category(), what)
	{
	}
};

/* For callers who want exceptions from a non-throwing call. */
inline void check(std::error_code ec)
{
	if (ec)
		throw error(ec);
}

/* A value, or the error code that stood in its way. */
template <class T> class result {
	static_assert(std::is_default_constructible<T>::value,
		      "wsm::result holds a default-constructed T on error");

public:
	result(T value) noexcept(std::is_nothrow_move_constructible<T>::value)
		: value_(std::move(value))
	{
	}
	result(std::error_code ec) noexcept : ec_(ec) {}
	result(errc e) noexcept : ec_(make_error_code(e)) {}

	explicit operator bool() const noexcept { return !ec_; }
	bool has_value() const noexcept { return !ec_; }
	std::error_code error() const noexcept { return ec_; }

	/* Throws wsm::error when there is no value. */
	T &value() &
	{
		check(ec_);
		return value_;
	}
	const T &value() const &
	{
		check(ec_);
		return value_;
	}
	T &&value() &&
	{
		check(ec_);
		return std::move(value_);
	}
	template <class U> T value_or(U &&other) const &
	{
		return ec_ ? static_cast<T>(std::forward<U>(other)) : value_;
	}

	/* Unchecked: only after testing the result. */
	T &operator*() & noexcept { return value_; }
	const T &operator*() const & noexcept { return value_; }
	T *operator->() noexcept { return &value_; }
	const T *operator->() const noexcept { return &value_; }

private:
	T value_{};
	std::error_code ec_;
};

/* Static strings, for every input. */
inline std::string_view strerror(int code) noexcept
{
	return wsm_strerror(code);
}
inline std::string_view cause_name(wsm_close_cause_t cause) noexcept
{
	return wsm_cause_name(cause);
}
inline std::string_view refusal_name(wsm_refusal_t why) noexcept
{
	return wsm_refusal_name(why);
}
/* A copy: the C text is per thread and changes with the next failure. */
inline std::string error_detail()
{
	return wsm_error_detail();
}
/* The library loaded; compare with WSM_VERSION_HEX, the header's. */
inline unsigned int version() noexcept
{
	return wsm_version();
}

/* The C calls' milliseconds; std::chrono::milliseconds and seconds convert. */
using millis = std::chrono::duration<std::int64_t, std::milli>;

struct bounds {
	std::int64_t min = 0, max = 0, def = 0;
};
inline result<bounds> option_bounds(wsm_option_t opt) noexcept
{
	bounds b;
	int rc = wsm_option_bounds(opt, &b.min, &b.max, &b.def);

	if (rc)
		return to_error_code(rc);
	return b;
}

/* Host callbacks; see wsm_config_set_authorize_cb(3) and the others. */
using authorize_fn = std::function<int(struct lws *wsi,
				       std::string_view session_id)>;
using event_fn = std::function<void(wsm_event_t event, std::uint64_t conn_id,
				    std::string_view session_id,
				    wsm_close_cause_t cause)>;
using refused_fn = std::function<void(wsm_refusal_t why, int status,
				      std::string_view session_id,
				      std::string_view peer)>;

namespace detail {

/*
 * A NUL-terminated copy of a view for a C call: inline up to N - 1 bytes,
 * else on the heap. nullopt gives NULL (the C calls' "left out").
 */
template <std::size_t N> class cstr {
public:
	explicit cstr(std::optional<std::string_view> s) noexcept
	{
		if (!s)
			return;
		std::size_t n = s->size();

		if (n && std::memchr(s->data(), '\0', n)) {
			rc_ = WSM_EINVAL;
			return;
		}
		p_ = n < N ? small_ : static_cast<char *>(std::malloc(n + 1));
		if (!p_) {
			rc_ = WSM_ENOMEM;
			return;
		}
		if (n)
			std::memcpy(p_, s->data(), n);
		p_[n] = '\0';
	}
	~cstr()
	{
		if (p_ != small_)
			std::free(p_);
	}
	cstr(const cstr &) = delete;
	cstr &operator=(const cstr &) = delete;

	const char *get() const noexcept { return p_; }
	int rc() const noexcept { return rc_; }

private:
	char small_[N];
	char *p_ = nullptr;
	int rc_ = WSM_OK;
};

/* Room for the longest session id libwsm accepts (128) and its NUL. */
using id_str = cstr<136>;
using text_str = cstr<256>;

/*
 * The callables, owned jointly by a config and the managers built from
 * it; the C side holds a plain pointer to this block as its user pointer.
 */
struct callbacks {
	authorize_fn authorize;
	event_fn event;
	refused_fn refused;

	static int on_authorize(void *user, struct lws *wsi,
				const char *session_id) noexcept
	{
		return static_cast<callbacks *>(user)->authorize(
			wsi, session_id ? session_id : "");
	}
	static void on_event(void *user, wsm_event_t event,
			     std::uint64_t conn_id, const char *session_id,
			     wsm_close_cause_t cause) noexcept
	{
		static_cast<callbacks *>(user)->event(
			event, conn_id, session_id ? session_id : "", cause);
	}
	static void on_refused(void *user, wsm_refusal_t why, int status,
			       const char *session_id,
			       const char *peer) noexcept
	{
		static_cast<callbacks *>(user)->refused(
			why, status, session_id ? session_id : "",
			peer ? peer : "");
	}
};

/* Renders an snprintf-style document into a string, growing it to fit. */
inline result<std::string> render(wsm_manager_t *m,
				  int (*fn)(wsm_manager_t *, char *,
					    std::size_t)) noexcept
{
	try {
		std::string s(2048, '\0');

		/* The document may grow between calls; each retry adds room. */
		for (int tries = 0; tries < 8; tries++) {
			/* size() + 1: the string's own terminator takes the NUL. */
			int n = fn(m, &s[0], s.size() + 1);

			if (n < 0)
				return to_error_code(n);
			if (static_cast<std::size_t>(n) <= s.size()) {
				s.resize(static_cast<std::size_t>(n));
				return result<std::string>(std::move(s));
			}
			s.resize(static_cast<std::size_t>(n) + 256);
		}
		return errc::again;
	} catch (const std::bad_alloc &) {
		return errc::nomem;
	}
}

} // namespace detail

class manager;

/* Options for managers. One thread at a time, like wsm_config_new(3). */
class config {
public:
	config()
		: cbs_(std::make_shared<detail::callbacks>()),
		  cfg_(wsm_config_new())
	{
		if (!cfg_)
			throw error(WSM_ENOMEM, "wsm_config_new");
	}
	~config() { wsm_config_free(cfg_); }
	config(config &&other) noexcept
		: cbs_(std::move(other.cbs_)),
		  cfg_(std::exchange(other.cfg_, nullptr)),
		  shared_(std::exchange(other.shared_, false))
	{
	}
	config &operator=(config &&other) noexcept
	{
		if (this != &other) {
			wsm_config_free(cfg_);
			cfg_ = std::exchange(other.cfg_, nullptr);
			cbs_ = std::move(other.cbs_);
			shared_ = std::exchange(other.shared_, false);
		}
		return *this;
	}
	config(const config &) = delete;
	config &operator=(const config &) = delete;

	wsm_config_t *get() const noexcept { return cfg_; }

	/* wsm_config_set_int(3), wsm_config_set_str(3); throw wsm::error. */
	config &set_int(wsm_option_t opt, std::int64_t value)
	{
		throw_if(try_set_int(opt, value), "wsm_config_set_int");
		return *this;
	}
	config &set_str(wsm_option_t opt, std::string_view value)
	{
		throw_if(try_set_str(opt, value), "wsm_config_set_str");
		return *this;
	}
	std::error_code try_set_int(wsm_option_t opt,
				    std::int64_t value) noexcept
	{
		return to_error_code(wsm_config_set_int(cfg_, opt, value));
	}
	std::error_code try_set_str(wsm_option_t opt,
				    std::string_view value) noexcept
	{
		detail::cstr<256> s(value);

		if (s.rc())
			return to_error_code(s.rc());
		return to_error_code(wsm_config_set_str(cfg_, opt, s.get()));
	}

	/* An empty function (or nullptr) clears the callback. */
	config &set_authorize_cb(authorize_fn fn)
	{
		detail::callbacks &cb = writable();

		cb.authorize = std::move(fn);
		wsm_config_set_authorize_cb(
			cfg_, cb.authorize ? &detail::callbacks::on_authorize
					   : nullptr, &cb);
		return *this;
	}
	config &set_event_cb(event_fn fn)
	{
		detail::callbacks &cb = writable();

		cb.event = std::move(fn);
		wsm_config_set_event_cb(
			cfg_, cb.event ? &detail::callbacks::on_event : nullptr,
			&cb);
		return *this;
	}
	config &set_refused_cb(refused_fn fn)
	{
		detail::callbacks &cb = writable();

		cb.refused = std::move(fn);
		wsm_config_set_refused_cb(
			cfg_, cb.refused ? &detail::callbacks::on_refused
					 : nullptr, &cb);
		return *this;
	}

private:
	friend class manager;

	void throw_if(std::error_code ec, const char *call) const
	{
		if (ec)
			throw error(ec, std::string(call) + ": " +
						wsm_error_detail());
	}

	/*
	 * The block to change: a new copy once a manager shares this one, so
	 * a running manager's callables are never written to. The C config
	 * is pointed at the copy before anything else changes.
	 */
	detail::callbacks &writable()
	{
		if (!cfg_)
			throw error(WSM_EINVAL, "moved-from wsm::config");
		if (shared_) {
			auto copy = std::make_shared<detail::callbacks>(*cbs_);
			detail::callbacks *p = copy.get();

			wsm_config_set_authorize_cb(
				cfg_, p->authorize ? &detail::callbacks::on_authorize
						   : nullptr, p);
			wsm_config_set_event_cb(
				cfg_, p->event ? &detail::callbacks::on_event
					       : nullptr, p);
			wsm_config_set_refused_cb(
				cfg_, p->refused ? &detail::callbacks::on_refused
						 : nullptr, p);
			cbs_ = std::move(copy);
			shared_ = false;
		}
		return *cbs_;
	}

	/* cbs_ first: built before cfg_, so a throw leaks no C config. */
	std::shared_ptr<detail::callbacks> cbs_;
	wsm_config_t *cfg_;
	mutable bool shared_ = false; /* a manager holds cbs_ too */
};

/*
 * One per lws context. The destructor is wsm_manager_destroy(3): run it on
 * the service thread outside the manager's callbacks (or after
 * lws_context_destroy()), once the threads that broadcast are done.
 */
class manager {
public:
	/* wsm_manager_new(3); throws wsm::error. */
	explicit manager(const config &cfg)
	{
		std::error_code ec = create(cfg);

		if (ec)
			throw error(ec, "wsm_manager_new: " +
						std::string(wsm_error_detail()));
	}
	/* Without exceptions: on failure ec is set and the manager is empty. */
	manager(const config &cfg, std::error_code &ec) noexcept
	{
		ec = create(cfg);
	}
	~manager() { wsm_manager_destroy(m_); }
	manager(manager &&other) noexcept
		: m_(std::exchange(other.m_, nullptr)),
		  cbs_(std::move(other.cbs_))
	{
	}
	manager &operator=(manager &&other) noexcept
	{
		if (this != &other) {
			destroy();
			m_ = std::exchange(other.m_, nullptr);
			cbs_ = std::move(other.cbs_);
		}
		return *this;
	}
	manager(const manager &) = delete;
	manager &operator=(const manager &) = delete;

	/* wsm_manager_destroy() now, then the callables; same thread rules. */
	void destroy() noexcept
	{
		wsm_manager_destroy(m_);
		m_ = nullptr;
		cbs_.reset();
	}

	wsm_manager_t *get() const noexcept { return m_; }
	explicit operator bool() const noexcept { return m_ != nullptr; }

	/* Plugging into lws, service thread: wsm_protocol(3), wsm_setup_info(3),
	 * wsm_callback(3), wsm_register(3), wsm_admit(3). */
	const struct lws_protocols *protocol() const noexcept
	{
		return wsm_protocol(m_);
	}
	std::error_code setup_info(struct lws_context_creation_info &info) noexcept
	{
		return to_error_code(wsm_setup_info(m_, &info));
	}
	/* The value to return to lws. */
	int callback(struct lws *wsi, int reason, void *user, void *in,
		     std::size_t len) noexcept
	{
		return wsm_callback(m_, wsi, reason, user, in, len);
	}
	/* The new connection's id, above 0. */
	result<std::uint64_t> register_connection(
		struct lws *wsi, std::string_view session_id) noexcept
	{
		detail::id_str id(session_id);

		if (id.rc())
			return to_error_code(id.rc());
		std::int64_t rc = wsm_register(m_, wsi, id.get());

		if (rc < 0)
			return to_error_code(static_cast<int>(rc));
		return static_cast<std::uint64_t>(rc);
	}
	/* As wsm_admit(3): 0 admits, 1 refused (return it to lws), < 0 an
	 * error (to_error_code()) and nothing answered. */
	int admit(struct lws *wsi, std::string_view session_id) noexcept
	{
		detail::id_str id(session_id);

		return id.rc() ? id.rc() : wsm_admit(m_, wsi, id.get());
	}

	/* Any thread: wsm_broadcast_progress(3). nullopt leaves a text out. */
	std::error_code broadcast_progress(
		std::string_view session_id, double progress,
		std::optional<std::string_view> message = std::nullopt,
		std::optional<std::string_view> stage = std::nullopt) noexcept
	{
		detail::id_str id(session_id);
		detail::text_str msg(message), stg(stage);

		if (int rc = first_rc(id.rc(), msg.rc(), stg.rc()))
			return to_error_code(rc);
		return to_error_code(wsm_broadcast_progress(
			m_, id.get(), progress, msg.get(), stg.get()));
	}
	std::error_code broadcast_error(std::string_view session_id,
					std::string_view text) noexcept
	{
		detail::id_str id(session_id);
		detail::text_str err(text);

		if (int rc = first_rc(id.rc(), err.rc(), WSM_OK))
			return to_error_code(rc);
		return to_error_code(
			wsm_broadcast_error(m_, id.get(), err.get()));
	}
	/* nullopt stands for "{}". */
	std::error_code broadcast_complete(
		std::string_view session_id,
		std::optional<std::string_view> metadata_json =
			std::nullopt) noexcept
	{
		detail::id_str id(session_id);
		detail::text_str meta(metadata_json);

		if (int rc = first_rc(id.rc(), meta.rc(), WSM_OK))
			return to_error_code(rc);
		return to_error_code(
			wsm_broadcast_complete(m_, id.get(), meta.get()));
	}
	/* Any thread: wsm_session_open(3), wsm_session_close(3). */
	std::error_code session_open(std::string_view session_id) noexcept
	{
		detail::id_str id(session_id);

		if (id.rc())
			return to_error_code(id.rc());
		return to_error_code(wsm_session_open(m_, id.get()));
	}
	/* The number of connections it closes. */
	result<int> session_close(std::string_view session_id) noexcept
	{
		detail::id_str id(session_id);

		if (id.rc())
			return to_error_code(id.rc());
		return counted(wsm_session_close(m_, id.get()));
	}

	/* Any thread: wsm_metrics(3), wsm_status_json(3),
	 * wsm_metrics_prometheus(3). */
	result<wsm_metrics_t> metrics() const noexcept
	{
		wsm_metrics_t out{};

		out.size = sizeof(out);
		if (int rc = wsm_metrics(m_, &out))
			return to_error_code(rc);
		return out;
	}
	result<std::string> status_json() const noexcept
	{
		return detail::render(m_, &wsm_status_json);
	}
	result<std::string> metrics_prometheus() const noexcept
	{
		return detail::render(m_, &wsm_metrics_prometheus);
	}

	/* Service thread: wsm_sweep(3), wsm_drain(3) (both give a count),
	 * wsm_drain_wait(3). */
	result<int> sweep() noexcept { return counted(wsm_sweep(m_)); }
	result<int> drain(millis window) noexcept
	{
		return counted(wsm_drain(m_, window.count()));
	}
	std::error_code drain_wait(millis timeout) noexcept
	{
		return to_error_code(wsm_drain_wait(m_, timeout.count()));
	}

private:
	std::error_code create(const config &cfg) noexcept
	{
		int err = WSM_EINVAL;

		if (!cfg.cfg_)
			return to_error_code(WSM_EINVAL); /* moved from */
		m_ = wsm_manager_new(cfg.cfg_, &err);
		if (!m_)
			return to_error_code(err);
		/* The C manager copied the block's address: keep it alive, and
		 * have the config copy it before changing it again. */
		cbs_ = cfg.cbs_;
		cfg.shared_ = true;
		return std::error_code();
	}
	static int first_rc(int a, int b, int c) noexcept
	{
		return a ? a : b ? b : c;
	}
	static result<int> counted(int rc) noexcept
	{
		if (rc < 0)
			return to_error_code(rc);
		return rc;
	}
	wsm_manager_t *m_ = nullptr;
	/* After m_ in declaration order: released after the destructor's
	 * wsm_manager_destroy(), whose close events still call into it. */
	std::shared_ptr<const detail::callbacks> cbs_;
};

} // namespace wsm

#endif /* WSM_HPP */
