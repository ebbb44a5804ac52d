// The C++ tests' lws server: a wsm::manager plugged into a real lws context
// on a loopback port through the wrapper (setup_info()), serviced by its
// own std::thread, with a way to run code on that thread. Every wait is
// bounded; a failure prints where and ends the program with status 1.
#ifndef LIBWSM_TESTS_CXX_SERVER_HPP
#define LIBWSM_TESTS_CXX_SERVER_HPP

#include <wsm.hpp>

#include <libwebsockets.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "wsclient.h"

namespace test {

inline int failures = 0;
inline std::atomic<int> checks{ 0 };

#define CHECK(cond)                                                          \
	do {                                                                  \
		test::checks++;                                               \
		if (!(cond)) {                                                \
			std::fprintf(stderr, "%s:%d: CHECK failed: %s\n",     \
				     __FILE__, __LINE__, #cond);              \
			test::failures++;                                     \
		}                                                             \
	} while (0)

// Checks that cannot be carried past: the rest of the test needs them.
#define REQUIRE(cond)                                                        \
	do {                                                                  \
		if (!(cond)) {                                                \
			std::fprintf(stderr, "%s:%d: REQUIRE failed: %s\n",   \
				     __FILE__, __LINE__, #cond);              \
			std::exit(1);                                         \
		}                                                             \
	} while (0)

// Waits on cv until pred holds, at most timeout; false on timeout.
template <class Pred>
bool wait_for(std::mutex &mu, std::condition_variable &cv, int timeout_ms,
	      Pred pred)
{
	std::unique_lock<std::mutex> lock(mu);

	return cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), pred);
}

class server {
public:
	explicit server(wsm::manager m) : mgr_(std::move(m))
	{
		lws_set_log_level(LLL_ERR, nullptr);
		thread_ = std::thread([this] { run(); });
		std::unique_lock<std::mutex> lock(mu_);
		bool ready = cv_.wait_for(lock, std::chrono::seconds(10),
					  [this] { return port_ != 0; });
		lock.unlock();
		REQUIRE(ready && port_ > 0);
		// lws initialises the protocols (binding the manager) on its
		// first turn of the loop.
		call([] {});
	}
	~server()
	{
		call([this] { stop_ = true; });
		thread_.join();
	}
	server(const server &) = delete;
	server &operator=(const server &) = delete;

	int port() const { return port_; }
	wsm::manager &mgr() { return mgr_; }

	// Runs fn on the service thread, between turns of the loop.
	void call(std::function<void()> fn)
	{
		std::unique_lock<std::mutex> lock(mu_);
		auto ticket = ++queued_;

		calls_.push_back(std::move(fn));
		// Woken under the lock: the thread cannot stop (destroying the
		// context) before this returns.
		lws_cancel_service(ctx_);
		bool done = cv_.wait_for(lock, std::chrono::seconds(10),
					 [&] { return ran_ >= ticket; });
		// fn may refer to the caller's frame: it must not outlive it.
		REQUIRE(done);
	}

	// An upgrade to PREFIX<session>; nullptr unless 101.
	wsc_t *join(std::string_view session, int *status = nullptr,
		    const char *prefix = "/api/images_mvp/progress/")
	{
		std::string path = std::string(prefix) + std::string(session);
		int st = 0;
		wsc_t *c = wsc_connect(port_, path.c_str(), nullptr, 5000, &st);

		if (status)
			*status = st;
		return c;
	}

private:
	void run()
	{
		lws_context_creation_info info;

		std::memset(&info, 0, sizeof(info));
		std::memset(protocols_, 0, sizeof(protocols_));
		protocols_[0].name = "http";
		protocols_[0].callback = lws_callback_http_dummy;
		info.protocols = protocols_;
		info.port = 0;
		info.iface = "127.0.0.1";
		info.timeout_secs = 2;
		int port = -1;

		if (!mgr_.setup_info(info) &&
		    (ctx_ = lws_create_context(&info)) != nullptr)
			port = lws_get_vhost_listen_port(
				lws_get_vhost_by_name(ctx_, "default"));
		{
			std::lock_guard<std::mutex> lock(mu_);
			port_ = port > 0 ? port : -1;
		}
		cv_.notify_all();
		if (port <= 0)
			return;
		while (!stop_) {
			if (lws_service(ctx_, 0) < 0)
				break;
			run_calls();
		}
		// On the service thread, outside callbacks; then the context.
		mgr_.destroy();
		lws_context_destroy(ctx_);
	}

	void run_calls()
	{
		std::unique_lock<std::mutex> lock(mu_);

		while (!calls_.empty()) {
			auto fn = std::move(calls_.front());

			calls_.pop_front();
			lock.unlock();
			fn();
			lock.lock();
			ran_++;
			cv_.notify_all();
		}
	}

	wsm::manager mgr_;
	lws_protocols protocols_[2];
	lws_context *ctx_ = nullptr;
	std::thread thread_;
	bool stop_ = false; // service thread only

	std::mutex mu_; // guards everything below
	std::condition_variable cv_;
	int port_ = 0;
	std::deque<std::function<void()>> calls_;
	unsigned long queued_ = 0, ran_ = 0;
};

} // namespace test

#endif
