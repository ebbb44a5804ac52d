/*
 * The Lua scripts Redis runs for libwsm, each one atomic step. KEYS[1] is
 * the session's state hash, "<prefix>{<id>}:state": e (epoch), s (last
 * seq), p and ps (the last progress and its seq), t, ts and tk (the last
 * error or complete, its seq and kind), u (the last publish id applied).
 * The epoch is drawn by the node (Lua's random numbers repeat in Redis 7),
 * and a state that is gone (expired, or lost by Redis) gets a new one, so
 * a seq is never reused for different content.
 */
#include "cluster.h"

const char *const wsm__scripts[WSM_SCRIPT_COUNT] = {
	/*
	 * PUBLISH. ARGV: kind, body, epoch if new, TTL ms, channel,
	 * publish id. A retry of a publish already applied (its reply was
	 * lost with the link) changes nothing. Returns { seq, epoch, new }.
	 */
	[WSM_SCRIPT_PUBLISH] =
		"local k = KEYS[1]\n"
		"local e = redis.call('HGET', k, 'e')\n"
		"if not e then\n"
		"  e = ARGV[3]\n"
		"  redis.call('HSET', k, 'e', e, 's', 0)\n"
		"elseif redis.call('HGET', k, 'u') == ARGV[6] then\n"
		"  return {tonumber(redis.call('HGET', k, 's')), tonumber(e), 0}\n"
		"end\n"
		"local s = redis.call('HINCRBY', k, 's', 1)\n"
		"if ARGV[1] == 'p' then\n"
		"  redis.call('HSET', k, 'p', ARGV[2], 'ps', s, 'u', ARGV[6])\n"
		"else\n"
		"  redis.call('HSET', k, 't', ARGV[2], 'ts', s, 'tk', ARGV[1],\n"
		"             'u', ARGV[6])\n"
		"end\n"
		"redis.call('PEXPIRE', k, ARGV[4])\n"
		"redis.call('PUBLISH', ARGV[5], s .. ' ' .. e .. ' ' .. ARGV[1] ..\n"
		"           ARGV[2])\n"
		"return {s, tonumber(e), 1}\n",
	/*
	 * JOIN. ARGV: epoch if new, TTL ms, and the epoch and seq this node
	 * has served (0 0 if none). A state behind what a node served, in
	 * the same epoch, lost writes (a failover to a lagging replica): its
	 * seqs would be reused, so it starts over in a new epoch. Returns
	 * the state's fields, e s p ps t ts tk (nil where unset).
	 */
	[WSM_SCRIPT_JOIN] =
		"local k = KEYS[1]\n"
		"local e = redis.call('HGET', k, 'e')\n"
		"if e and e == ARGV[3] and\n"
		"   tonumber(redis.call('HGET', k, 's')) < tonumber(ARGV[4]) then\n"
		"  redis.call('DEL', k)\n"
		"  e = false\n"
		"end\n"
		"if not e then\n"
		"  redis.call('HSET', k, 'e', ARGV[1], 's', 0)\n"
		"end\n"
		"redis.call('PEXPIRE', k, ARGV[2])\n"
		"return redis.call('HMGET', k, 'e', 's', 'p', 'ps', 't', 'ts', "
		"'tk')\n",
	/* CLOSE. ARGV: channel. Every node closes the session's connections. */
	[WSM_SCRIPT_CLOSE] =
		"local v = redis.call('HMGET', KEYS[1], 'e', 's')\n"
		"if not v[1] then v = {0, 0} end\n"
		"return redis.call('PUBLISH', ARGV[1], v[2] .. ' ' .. v[1] .. "
		"' x')\n",
};
