/*
 * The Lua scripts Redis runs for libwsm, each one atomic step. KEYS[1] is
 * the session's state hash, "<prefix>{<id>}:state": e (epoch), s (last
 * seq), p and ps (the last progress and its seq), t, ts and tk (the last
 * error or complete, its seq and kind), u (the last publish id applied).
 * KEYS[2], "<prefix>{<id>}:hist", is the optional history: a stream of the
 * epoch's last messages as published, entry id "<seq>-0", which goes with
 * the state (a new epoch starts it over). The epoch is drawn by the node
 * (Lua's random numbers repeat in Redis 7), and a state that is gone
 * (expired, or lost by Redis) gets a new one, so a seq is never reused for
 * different content.
 */
#include "cluster.h"

/*
 * The state as each script reads it: its epoch (as the node writes it) and
 * seq, or false when there is none or what is there does not read (another
 * type under the key, fields that are not numbers: another program's data,
 * or a hand edit). Such a state counts as lost: the script starts it over
 * in a new epoch, so one bad key costs its own session a reset, not the
 * node its link.
 *
 * With life (the Redis life the node sees, "<run_id>:<master_replid>",
 * shortened), a state written in another life counts as lost too: a Redis
 * restarted from a snapshot or an AOF that lacks the last writes, or a
 * replica promoted in a failover, holds states that may be behind what
 * clients were shown, with their seqs about to be used again. Every state
 * written in this life was created in it (l is set then), so one field
 * read tells.
 */
#define STATE_FN                                                             \
	"local function state(k, life)\n"                                    \
	"  local f = redis.pcall('HMGET', k, 'e', 's', 'l')\n"               \
	"  if type(f) ~= 'table' or type(f[1]) ~= 'string' then\n"           \
	"    return false, 0\n"                                              \
	"  end\n"                                                            \
	"  local en, s = tonumber(f[1]), tonumber(f[2])\n"                   \
	"  if not en or en < 1 or en > 2147483647 or en % 1 ~= 0 or\n"       \
	"     not s or s < 0 or s >= 9007199254740992 or s % 1 ~= 0 or\n"    \
	"     (life and f[3] ~= life) then\n"                                \
	"    return false, 0\n"                                              \
	"  end\n"                                                            \
	"  return string.format('%d', en), s\n"                              \
	"end\n"

/*
 * A state that counts as lost starts over in epoch e, of life l. What it
 * held that still reads (the last progress, the last error or complete,
 * with a kind that is one) is kept, in its order, at seqs from 1: a
 * possibly stale state is still all Redis knows of the session, and a
 * complete in it must reach clients; the new epoch makes them reset
 * first. The last publish id goes with them: the publish it names is one
 * of the two, so its retry must not apply it again. The history goes
 * with the old epoch. Returns the new seq.
 */
#define RESTART_FN                                                           \
	"local function restart(k, h, e, l)\n"                                \
	"  local f = redis.pcall('HMGET', k, 'p', 'ps', 't', 'ts', 'tk', 'u')\n"\
	"  local kept = {}\n"                                                 \
	"  if type(f) == 'table' and not f.err then\n"                        \
	"    local ps, ts = tonumber(f[2]), tonumber(f[4])\n"                 \
	"    if type(f[1]) == 'string' and ps then\n"                         \
	"      kept[#kept + 1] = {ps, 'p', f[1]}\n"                           \
	"    end\n"                                                           \
	"    if type(f[3]) == 'string' and ts and\n"                          \
	"       (f[5] == 'e' or f[5] == 'c') then\n"                          \
	"      kept[#kept + 1] = {ts, f[5], f[3]}\n"                          \
	"    end\n"                                                           \
	"    table.sort(kept, function(a, b) return a[1] < b[1] end)\n"       \
	"  end\n"                                                             \
	"  redis.call('DEL', k, h)\n"                                         \
	"  redis.call('HSET', k, 'e', e, 's', #kept, 'l', l)\n"               \
	"  if #kept > 0 and type(f[6]) == 'string' then\n"                    \
	"    redis.call('HSET', k, 'u', f[6])\n"                              \
	"  end\n"                                                             \
	"  for i, m in ipairs(kept) do\n"                                     \
	"    if m[2] == 'p' then\n"                                           \
	"      redis.call('HSET', k, 'p', m[3], 'ps', i)\n"                   \
	"    else\n"                                                          \
	"      redis.call('HSET', k, 't', m[3], 'ts', i, 'tk', m[2])\n"       \
	"    end\n"                                                           \
	"  end\n"                                                             \
	"  return #kept\n"                                                    \
	"end\n"

const char *const wsm__scripts[WSM_SCRIPT_COUNT] = {
	/*
	 * PUBLISH. ARGV: kind, body, epoch if new, TTL ms, channel,
	 * publish id, history length (0: none), the Redis life, and the epoch
	 * and seq this node knows were assigned (0 0 if none). A state behind
	 * them in their epoch lost writes (a hand edit, a rewind the life does
	 * not show): it starts over in a new epoch, as a lost one does. A
	 * retry of a publish already applied (its reply was lost with the
	 * link) changes nothing. The
	 * history entry is best effort (pcall): a stream someone else wrote
	 * into makes a hole, which readers see and pass over for the state.
	 * Trimming is approximate (~), whole stream nodes at a time: exact
	 * trimming cost Redis 9 us more per broadcast, this about 3.5, and
	 * JOIN reads at most the length asked, so readers see no difference.
	 * Returns { seq, epoch, new }.
	 */
	[WSM_SCRIPT_PUBLISH] =
		STATE_FN RESTART_FN
		"local k = KEYS[1]\n"
		"local e, s = state(k, ARGV[8])\n"
		"if e and e == ARGV[9] and s < tonumber(ARGV[10]) then\n"
		"  e = false\n"
		"end\n"
		"if not e then\n"
		"  e = ARGV[3]\n"
		"  s = restart(k, KEYS[2], e, ARGV[8])\n"
		"end\n"
		"if redis.call('HGET', k, 'u') == ARGV[6] then\n"
		"  return {s, tonumber(e), 0}\n"
		"end\n"
		"s = redis.call('HINCRBY', k, 's', 1)\n"
		"if ARGV[1] == 'p' then\n"
		"  redis.call('HSET', k, 'p', ARGV[2], 'ps', s, 'u', ARGV[6])\n"
		"else\n"
		"  redis.call('HSET', k, 't', ARGV[2], 'ts', s, 'tk', ARGV[1],\n"
		"             'u', ARGV[6])\n"
		"end\n"
		"redis.call('PEXPIRE', k, ARGV[4])\n"
		"local m = s .. ' ' .. e .. ' ' .. ARGV[1] .. ARGV[2]\n"
		"if ARGV[7] ~= '0' then\n"
		"  redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], s .. '-0',\n"
		"              'm', m)\n"
		"  redis.call('PEXPIRE', KEYS[2], ARGV[4])\n"
		"end\n"
		"redis.call('PUBLISH', ARGV[5], m)\n"
		"return {s, tonumber(e), 1}\n",
	/*
	 * JOIN. ARGV: epoch if new, TTL ms, the epoch and seq this node has
	 * served (0 0 if none), then the history wanted: how many entries at
	 * most (0: none), the stream id to read from ("<seq + 1>-0"), in
	 * which epoch, how many bytes at most, the Redis life (a state of
	 * another life is lost, see STATE_FN), and whether to create a state
	 * that is missing ("1" when the node knows an epoch its clients must
	 * leave; otherwise a mere connect writes nothing and the reply's
	 * epoch and seq are "0"); a state that is there but lost starts over
	 * (RESTART_FN) either way. A history that does not
	 * read (a key of another type) is none. A state behind what a node
	 * served, in the same epoch, lost writes (a failover to a lagging
	 * replica): its seqs would be reused, so it starts over in a new
	 * epoch. Returns the state's
	 * fields, e s p ps t ts tk (nil where unset), and the history's
	 * messages after that seq, oldest first ({} if none or another
	 * epoch).
	 */
	[WSM_SCRIPT_JOIN] =
		STATE_FN RESTART_FN
		"local k = KEYS[1]\n"
		"local e, s = state(k, ARGV[9])\n"
		"if e and e == ARGV[3] and s < tonumber(ARGV[4]) then\n"
		"  e = false\n"
		"end\n"
		"if not e then\n"
		"  if ARGV[10] ~= '1' and redis.pcall('HEXISTS', k, 'e') ~= 1 then\n"
		"    return {'0', '0', false, false, false, false, false, {}}\n"
		"  end\n"
		"  restart(k, KEYS[2], ARGV[1], ARGV[9])\n"
		"end\n"
		"redis.call('PEXPIRE', k, ARGV[2])\n"
		"local r = redis.call('HMGET', k, 'e', 's', 'p', 'ps', 't', 'ts', "
		"'tk')\n"
		"local h = {}\n"
		"if ARGV[5] ~= '0' and e == ARGV[7] then\n"
		"  local left = tonumber(ARGV[8])\n"
		"  redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"
		"  local xs = redis.pcall('XRANGE', KEYS[2], ARGV[6], '+', 'COUNT',\n"
		"                         ARGV[5])\n"
		"  if xs.err then xs = {} end\n"
		"  for _, x in ipairs(xs) do\n"
		"    local m = x[2][2]\n"
		"    if not m then break end\n"
		"    left = left - #m\n"
		"    if left < 0 then break end\n"
		"    h[#h + 1] = m\n"
		"  end\n"
		"end\n"
		"r[8] = h\n"
		"return r\n",
	/*
	 * ANNOUNCE (wsm_session_open()). ARGV: epoch if new, the Redis life,
	 * TTL ms. The session is known to every node from now on: a state
	 * that is missing or lost is created, and the TTL starts over.
	 */
	[WSM_SCRIPT_ANNOUNCE] =
		STATE_FN RESTART_FN
		"local k = KEYS[1]\n"
		"if not state(k, ARGV[2]) then\n"
		"  restart(k, KEYS[2], ARGV[1], ARGV[2])\n"
		"end\n"
		"redis.call('PEXPIRE', k, ARGV[3])\n"
		"return 1\n",
	/* CLOSE. ARGV: channel. Every node closes the session's connections. */
	[WSM_SCRIPT_CLOSE] =
		STATE_FN
		"local e, s = state(KEYS[1], false)\n"
		"if not e then e, s = 0, 0 end\n"
		"return redis.call('PUBLISH', ARGV[1], s .. ' ' .. e .. ' x')\n",
};
