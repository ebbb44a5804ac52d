#!/usr/bin/env python3
"""Jepsen-style fault injection for libwsm's cluster mode (wsm(7) CLUSTER MODE).

Runs its own redis-server, N chaos_node processes (tests/chaos/chaos_node.c)
and M WebSocket clients (asyncio, a minimal RFC 6455 client written here),
lets a nemesis inject faults, heals them, waits (bounded) for every job to
finish, then checks what every client saw against the nodes' logs. Standard
library only. Exit status: 0 with no anomaly, 1 with any, 77 (skipped) when
redis-server (or, with --sentinel, redis-sentinel) is missing, 2 on a setup
failure.

    python3 chaos.py --node-binary build/tests/chaos/chaos_node            # ~2 min
    python3 chaos.py --node-binary ... --minutes 10 --sessions 40 --clients 16
    python3 chaos.py --node-binary ... --seed 1234   # the same fault schedule
    python3 chaos.py --node-binary ... --sentinel    # Redis under Sentinel

With --sentinel, Redis is a primary and a replica watched by three
redis-sentinel processes (class Sentinels), the nodes are given a
redis-sentinel:// address, and the nemesis draws from SENTINEL_FAULTS:
failovers (a crash of the primary, a SENTINEL FAILOVER, a stop long enough
for Sentinel to act), a Sentinel down, and the Redis faults that make sense
against whichever node is the primary at the time. The check is the same.

The seed draws the jobs, the clients' choices and the nemesis's schedule
(which faults, in which order, on which target, for how long, and the pauses
between them); the timing of processes is the machine's, so a seed
reproduces the schedule, not every interleaving.

Terms
-----
call       One broadcast call of a node's producer thread, a line "B" of
           that node's log. Its content names it ("g<inc> c<call> ..."), so
           every message a client gets maps to exactly one call. Calls of one
           session are all made by one node (its owner), so the log gives
           them a total *issue order*: (incarnation, call number).
confirmed  A call with rc 0 covered by a "C" line of its incarnation: the
           node's outbox read empty after the call had returned, so Redis had
           confirmed it or a later call of the session that superseded it.
           Also *owed* like a confirmed call: a call accepted (rc 0) by an
           incarnation that then got SIGTERM and shut down with wsm_drain()
           -- a graceful stop; wsm_drain(3) says what was broadcast before it
           reaches its clients. Calls of an incarnation killed with -9 after
           its last "C" line are not owed (wsm(7): the outbox is in the
           node's memory).
destructive fault
           A fault after which Redis legitimately no longer holds what it
           confirmed: Redis restarted without persistence or from an older
           snapshot, OOM with eviction (volatile-ttl), hand edits of a
           session's state that delete it, make it unreadable, or lower its
           seq, and (--sentinel) every failover: replication is
           asynchronous, so the promoted replica may lack the primary's last
           confirmed writes, and the old primary confirms writes until it is
           demoted, which its resync then discards. wsm(7): such a state
           starts over in a new epoch. A call is *owed at the end* only if
           it was issued after the end of the last destructive fault that
           touched its session.
stream     What one client saw of one session: from a fresh join (no
           lastSeq) through every resume (?lastSeq=&epoch= taken from the
           last message, lastSeq=0 after a reset, as clients/browser does)
           until the client moves to another session. A *segment* is a part
           of a stream between two resets.
fault window
           From the start of a fault until it healed (the restarted process
           answers, SIGCONT sent, the setting restored) plus --recovery
           seconds for the links to come back. A window is *relevant* to a
           connection on node Y for a session owned by node Z if the fault
           hit Redis, Y or Z. (A Sentinel down hits none of them: the data
           path does not go through Sentinel, so its window excuses nothing.)
stayed through
           A connection of a client *stayed through* an owed call c whose
           confirmation was logged at time tc if, with w = max(tc, the time
           the connection opened (101 received)): it stayed open until at
           least w + --deliver seconds, no relevant fault window overlaps
           [w, w + deliver], and no destructive fault touched the session
           between tc and w + deliver. (Opened after tc, it is a late joiner
           or a resume: the state it reads, or its own earlier messages,
           cover c.) In addition, every client whose connection is open at
           the end of the run (after healing and settling) stayed through
           every call owed at the end, and so does a probe: one fresh
           connection per session on every node, made after settling.

Anomalies (per session; the run passes with zero of each)
---------------------------------------------------------
lost       A connection stayed through an owed call c, but by the time it
           closed its stream had not been given c nor any call of the
           session issued after c (progress is latest-wins, wsm(7): a later
           call covers an earlier one; and a reset that a later destructive
           fault causes does not undo a delivery). For a connection open at
           the end (and a probe): its current segment, what the client
           shows after its last reset, must hold the newest call owed at the
           end, or a later one. And, whatever faults came later: a terminal
           accepted before a SIGTERM that no client ever got, from a node
           whose exit line says its outbox still held errors or completes.
gap        In one segment, seq n then n+k (k > 1) in the same epoch where a
           skipped seq is known (from any client) to carry an error or a
           complete. wsm(7): "A gap in seq ... stands for superseded
           progress", and "Error and complete messages are never dropped or
           coalesced"; so a gap over progress only is legal, a gap over a
           terminal is not. Also: a message of another epoch with no reset
           before it (wsm(7): a reset comes first when the epoch changed).
reorder    In one segment and epoch, a seq below the previous one.
duplicate  In one segment, the same (epoch, seq) or the same call twice; or
           one call at two seqs of the same epoch (any clients).
conflict   Two different calls (or a call and a reset's seq claim aside) at
           one (session, epoch, seq) across all clients.
order      In one segment, a call issued before the call delivered just
           before it (the producer's issue order is not kept).
rollback   A reset in the client's own epoch whose seq is below the seq the
           client already held: the server forgot what it had shown
           (wsm(7) sends such a reset only for a lastSeq "this session never
           sent"; the client holds proof that it was sent).
phantom    A message whose content maps to no call of the owner's log (the
           one call a kill -9 may catch between return and its log line is
           accepted).
unfinished A job whose terminal was never owed (confirmed, or accepted before
           a drain) after healing, within the bounded wait.
"""

import argparse
import asyncio
import base64
import collections
import ctypes
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time

NS = 1_000_000_000
PREFIX = "/api/images_mvp/progress/"
KEY_PREFIX = "wsm:"


def now():
    return time.monotonic_ns()


class Ctx:
    """Run-wide state shared by the parts below."""

    def __init__(self, args):
        self.args = args
        # WSM_OPT_CLUSTER_REPLICAS of the nodes: a replica to confirm
        # with, where there is one.
        replicas = getattr(args, "replicas", None)
        self.replicas = replicas if replicas is not None else \
            (1 if getattr(args, "sentinel", False) else 0)
        self.t_start = now()
        self.phase = "setup"  # setup, chaos, heal, settle, end
        self.faults = []  # Fault records, in order
        self.children = set()  # asyncio subprocesses alive
        self.stop = False

    def rel(self, t):
        return (t - self.t_start) / NS

    def say(self, *words):
        print("[%7.2f] %s" % (self.rel(now()), " ".join(str(w) for w in words)),
              flush=True)


# ---- processes ---------------------------------------------------------------

_libc = None


def _die_with_parent():
    """In the child: SIGKILL when the orchestrator dies (even by kill -9)."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


async def spawn(ctx, argv, log_path):
    out = open(log_path, "ab")
    try:
        p = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
            preexec_fn=_die_with_parent)
    finally:
        out.close()
    ctx.children.add(p)
    return p


async def reap(ctx, p, timeout=10.0):
    """Waits (bounded) for p to exit; SIGKILL after the timeout."""
    try:
        await asyncio.wait_for(p.wait(), timeout)
    except asyncio.TimeoutError:
        try:
            p.send_signal(signal.SIGCONT)
            p.kill()
        except ProcessLookupError:
            pass
        await asyncio.wait_for(p.wait(), 5)
    ctx.children.discard(p)
    return p.returncode


def kill_all_now(ctx):
    for p in list(ctx.children):
        if p.returncode is None:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(p.pid, sig)
                except ProcessLookupError:
                    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- a minimal RESP client -----------------------------------------------------

class RespError(Exception):
    pass


async def _resp_read(r):
    line = await r.readline()
    if not line:
        raise ConnectionError("redis closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        return RespError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = await r.readexactly(n + 2)
        return data[:-2].decode(errors="replace")
    if t == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [await _resp_read(r) for _ in range(n)]
    raise ConnectionError("bad RESP reply %r" % line)


async def redis_cmd(port, *args, timeout=3.0):
    """One command on a fresh connection; the reply (RespError for -ERR)."""
    async def run():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        try:
            out = [b"*%d\r\n" % len(args)]
            for a in args:
                b = str(a).encode()
                out.append(b"$%d\r\n%s\r\n" % (len(b), b))
            w.write(b"".join(out))
            await w.drain()
            return await _resp_read(r)
        finally:
            w.close()
    return await asyncio.wait_for(run(), timeout)


# ---- Redis ---------------------------------------------------------------------

class Redis:
    def __init__(self, ctx, binary, workdir):
        self.ctx = ctx
        self.binary = binary
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir)
        self.port = free_port()
        self.proc = None
        self.snapshot = None  # (path, time taken)
        self.stopped = False

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def describe(self):
        return "redis on %d" % self.port

    async def primary_port(self):
        return self.port

    def argv(self, appendonly):
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--dbfilename", "dump.rdb",
                "--appendonly", "yes" if appendonly else "no",
                "--appendfsync", "always", "--enable-debug-command", "yes",
                "--maxmemory-policy", "volatile-ttl", "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log")]

    async def start(self, appendonly=True):
        self.proc = await spawn(self.ctx, self.argv(appendonly),
                                os.path.join(self.dir, "stdout.log"))
        self.stopped = False
        deadline = now() + 15 * NS
        while now() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError("redis-server exited %d" % self.proc.returncode)
            try:
                if await redis_cmd(self.port, "PING", timeout=1) == "PONG":
                    return
            except (OSError, asyncio.TimeoutError, ConnectionError):
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    async def kill9(self):
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await reap(self.ctx, self.proc)

    def signal(self, sig):
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(sig)

    def _rm_data(self):
        shutil.rmtree(os.path.join(self.dir, "appendonlydir"), ignore_errors=True)
        for f in ("dump.rdb",):
            try:
                os.unlink(os.path.join(self.dir, f))
            except FileNotFoundError:
                pass

    async def restart(self, mode):
        """mode: 'none' (no data), 'aof' (as it was), 'snapshot' (older RDB)."""
        if mode == "none":
            self._rm_data()
            await self.start(True)
        elif mode == "aof":
            await self.start(True)
        else:
            self._rm_data()
            shutil.copy(self.snapshot[0], os.path.join(self.dir, "dump.rdb"))
            await self.start(False)
            await redis_cmd(self.port, "CONFIG", "SET", "appendonly", "yes")

    async def take_snapshot(self):
        """BGSAVE, then a copy of the RDB file it wrote (for a later restart
        from an older snapshot)."""
        def field(info, name):
            m = re.search(r"^%s:(\S+)" % name, info, re.M)
            return m.group(1) if m else None
        info = await redis_cmd(self.port, "INFO", "persistence")
        before = int(field(info, "rdb_saves") or 0)
        r = await redis_cmd(self.port, "BGSAVE")
        if isinstance(r, RespError):
            return False
        deadline = now() + 10 * NS
        while now() < deadline:
            await asyncio.sleep(0.05)
            info = await redis_cmd(self.port, "INFO", "persistence")
            if int(field(info, "rdb_saves") or 0) > before and \
                    field(info, "rdb_bgsave_in_progress") == "0":
                if field(info, "rdb_last_bgsave_status") != "ok":
                    return False
                path = os.path.join(self.dir, "snapshot.rdb")
                shutil.copy(os.path.join(self.dir, "dump.rdb"), path)
                self.snapshot = (path, now())
                return True
        return False


# ---- Redis under Sentinel (--sentinel) ----------------------------------------

async def redis_try(port, *args, timeout=1.0):
    """redis_cmd, or None when the process does not answer."""
    try:
        return await redis_cmd(port, *args, timeout=timeout)
    except (OSError, asyncio.TimeoutError, ConnectionError, ValueError):
        return None


def pairs(flat):
    """A flat [k, v, k, v, ...] reply as a dict ({} for anything else)."""
    if not isinstance(flat, list):
        return {}
    return dict(zip(flat[::2], flat[1::2]))


class Sentinels:
    """A primary and a replica (redis-server) and three redis-sentinel
    processes watching them with quorum 2, as tests/support/redis_sentinel.c
    deploys them (the reasons for its timings are there): down-after 1000 ms
    (not lower: a sentinel's link to a new primary starts over, and a shorter
    down-after finds it "down" and fails over again, to an empty node), and
    at runtime SENTINEL DEBUG info-period 1000, publish-period 500 and
    ping-period 500, so that a returning old primary is demoted within
    seconds. Data node i has its own directory (an AOF each, as the plain
    mode's Redis has) and config file, which Sentinel rewrites, and keeps
    its port across restarts. Which of the two is the primary changes: who
    talks to "the Redis" asks the Sentinels each time (primary_port())."""

    NAME = "wsmchaos"

    def __init__(self, ctx, server, sentinel, workdir):
        self.ctx = ctx
        self.server = server
        self.sentinel = sentinel
        self.dir = os.path.join(workdir, "redis")
        ports = set()
        while len(ports) < 5:
            ports.add(free_port())
        ports = sorted(ports)
        self.data_ports, self.sentinel_ports = ports[:2], ports[2:]
        self.data = [None, None]  # redis-server processes
        self.sentinels = [None, None, None]  # redis-sentinel processes
        for i in range(2):
            os.makedirs(os.path.join(self.dir, "data-%d" % i))

    @property
    def url(self):
        return "redis-sentinel://%s/%s" % (",".join(
            "127.0.0.1:%d" % p for p in self.sentinel_ports), self.NAME)

    def describe(self):
        return "redis data nodes on %s, sentinels on %s" % (
            self.data_ports, self.sentinel_ports)

    def conf(self, what, i):
        return os.path.join(self.dir, "%s-%d.conf" % (what, i))

    def write_data_conf(self, i):
        """Persistence as the plain mode's Redis: an AOF, fsync always. No
        diskless-sync delay (7.0 waits 5 s for more replicas before a full
        sync, slowing every rejoin); each node its own RDB file name (a
        replica loads its full sync through it)."""
        d = os.path.join(self.dir, "data-%d" % i)
        lines = ["port %d" % self.data_ports[i], "bind 127.0.0.1",
                 "protected-mode no", "daemonize no", "dir %s" % d,
                 "logfile %s" % os.path.join(d, "redis.log"),
                 "dbfilename dump-%d.rdb" % i, 'save ""', "appendonly yes",
                 "appendfsync always", "repl-diskless-sync-delay 0",
                 "enable-debug-command yes", "maxmemory-policy volatile-ttl"]
        if i == 1:
            lines.append("replicaof 127.0.0.1 %d" % self.data_ports[0])
        with open(self.conf("data", i), "w") as f:
            f.write("\n".join(lines) + "\n")

    def write_sentinel_conf(self, k):
        m = self.NAME
        lines = ["port %d" % self.sentinel_ports[k], "bind 127.0.0.1",
                 "protected-mode no", "daemonize no", "dir %s" % self.dir,
                 "logfile %s" % os.path.join(self.dir, "sentinel-%d.log" % k),
                 "sentinel monitor %s 127.0.0.1 %d 2" % (m, self.data_ports[0]),
                 "sentinel down-after-milliseconds %s 1000" % m,
                 "sentinel failover-timeout %s 2000" % m,
                 "sentinel parallel-syncs %s 1" % m]
        with open(self.conf("sentinel", k), "w") as f:
            f.write("\n".join(lines) + "\n")

    async def _wait_pong(self, proc, port, what):
        deadline = now() + 15 * NS
        while now() < deadline:
            if proc.returncode is not None:
                raise RuntimeError("%s exited %d" % (what, proc.returncode))
            if await redis_try(port, "PING") == "PONG":
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("%s did not answer PING" % what)

    async def start_data(self, i):
        """From its config file, as Sentinel last rewrote it: a crashed
        primary comes back a primary, alone, until Sentinel demotes it."""
        self.data[i] = await spawn(self.ctx, [self.server, self.conf("data", i)],
                                   os.path.join(self.dir, "data-%d.out" % i))
        await self._wait_pong(self.data[i], self.data_ports[i], "data-%d" % i)

    async def start_sentinel(self, k):
        """SENTINEL DEBUG is runtime only: set again on every start."""
        port = self.sentinel_ports[k]
        self.sentinels[k] = await spawn(
            self.ctx, [self.sentinel, self.conf("sentinel", k)],
            os.path.join(self.dir, "sentinel-%d.out" % k))
        await self._wait_pong(self.sentinels[k], port, "sentinel-%d" % k)
        r = await redis_try(port, "SENTINEL", "DEBUG", "info-period", "1000",
                            "publish-period", "500", "ping-period", "500")
        if r != "OK":
            raise RuntimeError("sentinel-%d: SENTINEL DEBUG: %r" % (k, r))

    async def start(self):
        """The replica in sync first, so that each sentinel's first INFO of
        the primary lists it; then the sentinels, until each knows the
        replica and the two others."""
        for i in range(2):
            self.write_data_conf(i)
            await self.start_data(i)
        if not await self.until(lambda: self.is_replica_of(1, 0), 20):
            raise RuntimeError("the replica did not sync")
        for k in range(3):
            self.write_sentinel_conf(k)
            await self.start_sentinel(k)
        if not await self.until(self.sentinels_know_all, 20):
            raise RuntimeError("the sentinels did not find each other")

    @staticmethod
    def _alive(p):
        return p is not None and p.returncode is None

    def data_up(self, i):
        return self._alive(self.data[i])

    def live_sentinels(self):
        return [k for k in range(3) if self._alive(self.sentinels[k])]

    def signal(self, i, sig):
        if self.data_up(i):
            self.data[i].send_signal(sig)

    async def kill_data(self, i):
        if self.data_up(i):
            self.data[i].send_signal(signal.SIGCONT)
            self.data[i].send_signal(signal.SIGKILL)
            await reap(self.ctx, self.data[i])

    async def kill_sentinel(self, k):
        if self._alive(self.sentinels[k]):
            self.sentinels[k].send_signal(signal.SIGKILL)
            await reap(self.ctx, self.sentinels[k])

    async def kill9(self):
        """Sentinels first: none may react to the data nodes going."""
        for k in range(3):
            await self.kill_sentinel(k)
        for i in range(2):
            await self.kill_data(i)

    async def until(self, pred, seconds):
        """Polls the coroutine function pred; whether it held in time."""
        deadline = now() + int(seconds * NS)
        while True:
            if await pred():
                return True
            if now() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def named_by(self, k):
        """The data node sentinel k names as the primary, or None."""
        r = await redis_try(self.sentinel_ports[k], "SENTINEL",
                            "get-master-addr-by-name", self.NAME)
        if not isinstance(r, list) or len(r) != 2:
            return None
        try:
            port = int(r[1])
        except (TypeError, ValueError):
            return None
        return self.data_ports.index(port) if port in self.data_ports else None

    async def primary(self):
        """The data node a majority of the live sentinels name, or None."""
        live = self.live_sentinels()
        votes = [0, 0]
        for k in live:
            i = await self.named_by(k)
            if i is not None:
                votes[i] += 1
        for i in range(2):
            if votes[i] * 2 > len(live):
                return i
        return None

    async def primary_port(self):
        """Looked up each time (bounded: a failover may be under way)."""
        deadline = now() + 10 * NS
        while True:
            i = await self.primary()
            if i is not None:
                return self.data_ports[i]
            if now() >= deadline:
                raise RuntimeError("no primary named by a majority of the "
                                   "sentinels")
            await asyncio.sleep(0.1)

    async def role(self, i):
        if not self.data_up(i):
            return None
        r = await redis_try(self.data_ports[i], "ROLE")
        return r if isinstance(r, list) and r else None

    async def is_primary(self, i):
        """A majority of the sentinels name it, and ROLE says master."""
        if await self.primary() != i:
            return False
        r = await self.role(i)
        return bool(r) and r[0] == "master"

    async def is_replica_of(self, i, of):
        """ROLE says it replicates from data node `of`, link up."""
        r = await self.role(i)
        return bool(r) and len(r) >= 4 and r[0] == "slave" and \
            str(r[2]) == str(self.data_ports[of]) and r[3] == "connected"

    async def replica_seen(self, i):
        """Every live sentinel saw data node i as a healthy replica in its
        last INFO: else Sentinel finds no replica fit to promote."""
        for k in self.live_sentinels():
            r = await redis_try(self.sentinel_ports[k], "SENTINEL", "replicas",
                                self.NAME)
            if not isinstance(r, list) or not any(
                    d.get("port") == str(self.data_ports[i]) and
                    d.get("flags") == "slave" and
                    d.get("role-reported") == "slave" and
                    d.get("master-link-status") == "ok"
                    for d in map(pairs, r)):
                return False
        return True

    async def sentinels_know_all(self):
        """Every live sentinel knows a replica and the two other sentinels."""
        for k in self.live_sentinels():
            d = pairs(await redis_try(self.sentinel_ports[k], "SENTINEL",
                                      "master", self.NAME))
            try:
                if int(d.get("num-slaves", 0)) < 1 or \
                        int(d.get("num-other-sentinels", 0)) < 2:
                    return False
            except ValueError:
                return False
        return True

    async def healthy(self):
        """A primary, its replica in sync and seen, sentinels that know all."""
        p = await self.primary()
        return p is not None and await self.is_primary(p) and \
            await self.is_replica_of(1 - p, p) and \
            await self.replica_seen(1 - p) and await self.sentinels_know_all()


# ---- nodes ---------------------------------------------------------------------

class Node:
    def __init__(self, ctx, i, binary, workdir, redis, history, t0_ms):
        self.ctx = ctx
        self.i = i
        self.id = "node-%d" % i
        self.binary = binary
        self.port = free_port()
        self.log = os.path.join(workdir, "%s.log" % self.id)
        self.out = os.path.join(workdir, "%s.stderr" % self.id)
        self.redis = redis
        self.history = history
        self.t0_ms = t0_ms
        self.jobs = []  # Job
        self.proc = None
        self.stopped = False
        self.starts = 0

    def argv(self):
        a = [self.binary, "--port", str(self.port),
             "--redis", self.redis.url,
             "--node-id", self.id, "--log", self.log,
             "--t0-ms", str(self.t0_ms), "--history", str(self.history),
             "--replicas", str(self.ctx.replicas),
             "--timeout-ms", "500", "--retry-max-ms", "1000",
             "--lifetime-ms", "15000", "--drain-window-ms", "500",
             "--ping-ms", "1000", "--stale-ms", "4000"]
        for j in self.jobs:
            a += ["--job", "%s:%d:%d:%d:%s" % (j.id, j.start_ms, j.steps,
                                               j.interval_ms, j.terminal)]
        return a

    def up(self):
        return self.proc is not None and self.proc.returncode is None

    async def start(self):
        for attempt in range(5):
            self.proc = await spawn(self.ctx, self.argv(), self.out)
            self.stopped = False
            self.starts += 1
            deadline = now() + 10 * NS
            while now() < deadline and self.proc.returncode is None:
                try:
                    r, w = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", self.port), 1)
                    w.close()
                    return
                except (OSError, asyncio.TimeoutError):
                    await asyncio.sleep(0.05)
            await reap(self.ctx, self.proc, 1)
            await asyncio.sleep(0.5)  # the port, perhaps: try again
        raise RuntimeError("%s did not start" % self.id)

    def signal(self, sig):
        if self.up():
            self.proc.send_signal(sig)

    async def kill9(self):
        if self.up():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGKILL)
            await reap(self.ctx, self.proc)

    async def terminate(self, timeout=10.0):
        if self.up():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            return await reap(self.ctx, self.proc, timeout)
        return None


class Job:
    def __init__(self, sid, owner, start_ms, steps, interval_ms, terminal):
        self.id = sid
        self.owner = owner
        self.start_ms = start_ms
        self.steps = steps
        self.interval_ms = interval_ms
        self.terminal = terminal


# ---- a minimal RFC 6455 client ----------------------------------------------------

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Refused(Exception):
    pass


def ws_frame(opcode, payload, rng):
    mask = bytes(rng.getrandbits(8) for _ in range(4))
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def ws_read_frame(r):
    h = await r.readexactly(2)
    fin, opcode = h[0] & 0x80, h[0] & 0x0F
    masked, n = h[1] & 0x80, h[1] & 0x7F
    if n == 126:
        n = int.from_bytes(await r.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await r.readexactly(8), "big")
    mask = await r.readexactly(4) if masked else None
    data = await r.readexactly(n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bool(fin), opcode, data


async def ws_connect(port, target, rng, timeout=3.0):
    key = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(16)))
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                  timeout)
    try:
        w.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n" % (target.encode(), port, key))
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
    except BaseException:
        w.close()
        raise
    lines = head.decode(errors="replace").split("\r\n")
    status = lines[0].split(" ")
    if len(status) < 2 or status[1] != "101":
        w.close()
        raise Refused(lines[0])
    want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    if not any(l.lower().startswith("sec-websocket-accept:") and
               l.split(":", 1)[1].strip() == want for l in lines[1:]):
        w.close()
        raise Refused("bad Sec-WebSocket-Accept")
    return r, w


# ---- clients -------------------------------------------------------------------------

class Conn:
    """One WebSocket connection of a stream."""

    def __init__(self, stream, cid, node, query, t_open):
        self.stream = stream
        self.id = cid
        self.node = node
        self.query = query
        self.t_open = t_open
        self.t_close = None  # None: open at the end
        self.how = None  # 'client', 'server <code> <reason>', 'error ...'
        self.msgs = []  # (t, dict)


class Stream:
    def __init__(self, client, sid, n):
        self.client = client
        self.session = sid
        self.name = "%s/%d" % (client, n)
        self.conns = []
        self.last_seq = None
        self.epoch = None


class Client:
    def __init__(self, ctx, name, rng, sessions, nodes):
        self.ctx = ctx
        self.name = name
        self.rng = rng
        self.sessions = sessions
        self.nodes = nodes
        self.streams = []
        self.stream = None
        self.conn = None  # open now
        self.final = asyncio.Event()  # stay connected from now on

    def new_stream(self, sid=None):
        self.stream = Stream(self.name, sid or self.rng.choice(self.sessions),
                             len(self.streams))
        self.streams.append(self.stream)

    def take(self, m):
        """The browser client's bookkeeping (clients/browser/wsm-client.js)."""
        st = self.stream
        if m.get("type") == "reset":
            st.epoch, st.last_seq = m["epoch"], 0
            return
        if not isinstance(m.get("seq"), int) or not isinstance(m.get("epoch"), int):
            return
        if m["epoch"] == st.epoch and st.last_seq is not None and \
                m["seq"] <= st.last_seq:
            return  # already taken (the record keeps it for the check)
        st.epoch, st.last_seq = m["epoch"], m["seq"]

    async def run(self):
        ctx = self.ctx
        delay = 0.0
        while not ctx.stop:
            if delay:
                if self.final.is_set():
                    await asyncio.sleep(min(delay, 0.3))
                else:
                    try:  # cut short when the run enters its final phase
                        await asyncio.wait_for(self.final.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
            delay = 0.0
            if self.stream is None:
                self.new_stream()
            node = self.rng.choice(self.nodes)
            st = self.stream
            query = ""
            if st.last_seq is not None and st.epoch is not None:
                query = "?lastSeq=%d&epoch=%d" % (st.last_seq, st.epoch)
            try:
                r, w = await ws_connect(node.port, PREFIX + st.session + query,
                                        self.rng)
            except (OSError, asyncio.TimeoutError, Refused,
                    asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                delay = self.rng.uniform(0.05, 0.5)
                continue
            conn = Conn(st, len(st.conns), node.i, query, now())
            st.conns.append(conn)
            self.conn = conn
            plan = self.rng.uniform(1.0, 12.0)
            try:
                how = await self.serve(conn, r, w, plan)
            finally:
                self.conn = None
                w.close()
            conn.how = how
            if how == "end" or ctx.stop:
                break  # open at the end: t_close stays None
            if conn.t_close is None:
                conn.t_close = now()
            m = re.search(r"retry_ms=(\d+)", how)
            if how != "client":
                # As clients/browser: back after the hint, or a short backoff.
                delay = min(int(m.group(1)) / 1000, 1.5) if m else \
                    self.rng.uniform(0.05, 0.5)
                continue
            pick = self.rng.random()
            if pick < 0.6:
                delay = self.rng.uniform(0, 0.3)  # resume elsewhere
            elif pick < 0.85:
                self.stream = None  # another session, fresh
            else:
                delay = self.rng.uniform(0.5, 3.0)  # away for a while

    async def serve(self, conn, r, w, plan):
        """Reads until the plan ends (client closes), or the server closes."""
        frames = asyncio.Queue()

        async def reader():
            buf = []
            try:
                while True:
                    fin, op, data = await ws_read_frame(r)
                    if op == 9:
                        w.write(ws_frame(10, data, self.rng))
                        continue
                    if op == 10:
                        continue
                    if op in (1, 2, 0):
                        buf.append(data)
                        if fin:
                            await frames.put((now(), op if op else 1,
                                              b"".join(buf)))
                            buf = []
                        continue
                    if op == 8:
                        await frames.put((now(), 8, data))
                        return
            except (asyncio.IncompleteReadError, ConnectionError, OSError) as e:
                await frames.put((now(), -1, repr(e).encode()))

        task = asyncio.ensure_future(reader())
        deadline = now() + int(plan * NS)
        try:
            while True:
                if self.final.is_set() or self.ctx.stop:
                    timeout = 0.25
                else:
                    timeout = max(0.0, (deadline - now()) / NS)
                try:
                    t, op, data = await asyncio.wait_for(frames.get(), timeout)
                except asyncio.TimeoutError:
                    if self.ctx.stop:
                        return "end"
                    if self.final.is_set() or now() < deadline:
                        continue
                    # The plan is over: close as a browser would. Nothing
                    # read after this counts (onmessage stops in CLOSING).
                    conn.t_close = now()
                    try:
                        w.write(ws_frame(8, (1000).to_bytes(2, "big"), self.rng))
                    except Exception:
                        pass
                    return "client"
                if op == 1:
                    try:
                        m = json.loads(data)
                    except ValueError:
                        m = {"type": "garbage", "raw": data.decode(errors="replace")}
                    conn.msgs.append((t, m))
                    self.take(m)
                elif op == 8:
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                    reason = data[2:].decode(errors="replace")
                    conn.t_close = t
                    try:
                        w.write(ws_frame(8, data[:2], self.rng))
                    except Exception:
                        pass
                    return "server %d %s" % (code, reason)
                elif op == -1:
                    conn.t_close = t
                    return "error " + data.decode()
                else:
                    conn.msgs.append((t, {"type": "binary"}))
        finally:
            task.cancel()
            try:
                await task
            except BaseException:
                pass


async def probe(ctx, node, sid, want_key, calls, timeout=3.0):
    """A fresh connection: the replay a late joiner gets."""
    rng = random.Random()
    st = Stream("probe@%s" % node.id, sid, 0)
    try:
        r, w = await ws_connect(node.port, PREFIX + sid, rng)
    except Exception as e:
        st.error = repr(e)
        return st
    conn = Conn(st, 0, node.i, "", now())
    st.conns.append(conn)
    deadline = now() + int(timeout * NS)
    try:
        while now() < deadline:
            try:
                fin, op, data = await asyncio.wait_for(
                    ws_read_frame(r), max(0.01, (deadline - now()) / NS))
            except asyncio.TimeoutError:
                break
            if op == 9:
                w.write(ws_frame(10, data, rng))
            elif op == 1:
                m = json.loads(data)
                conn.msgs.append((now(), m))
                k = call_key(m)
                if want_key is None or (k and k >= want_key and
                                        m.get("type") != "progress"):
                    break
            elif op == 8:
                break
    except Exception as e:
        conn.how = "error " + repr(e)
    finally:
        conn.t_close = None  # open when the run ended: it counts as "at the end"
        conn.how = conn.how or "probe"
        w.close()
    return st


# ---- the node logs -------------------------------------------------------------------

class Call:
    __slots__ = ("node", "g", "c", "kind", "session", "idx", "rc", "ts", "te",
                 "tc", "owed", "how")

    def __init__(self, node, g, c, kind, session, idx, rc, ts, te):
        self.node, self.g, self.c, self.kind = node, g, c, kind
        self.session, self.idx, self.rc, self.ts, self.te = session, idx, rc, ts, te
        self.tc = None  # when it was known confirmed (or the SIGTERM, if owed)
        self.owed = False
        self.how = None  # 'confirmed' or 'drain'

    @property
    def key(self):
        return (self.g, self.c)


def read_logs(nodes):
    """Calls by (session, g, c), with confirmation; incarnations."""
    calls = {}
    incs = {}  # (node, g) -> dict(start, marks[(t, n)], term, exit, maxcall)
    for node in nodes:
        try:
            lines = open(node.log).read().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            if not f:
                continue
            try:
                if f[0] == "S":
                    incs[(node.i, int(f[1]))] = {"start": int(f[2]), "marks": [],
                                                 "term": None, "exit": None,
                                                 "maxcall": 0, "drain": None}
                elif f[0] == "B" and len(f) == 9:
                    g, c = int(f[1]), int(f[2])
                    call = Call(node.i, g, c, f[3], f[4], int(f[5]), int(f[6]),
                                int(f[7]), int(f[8]))
                    calls[(f[4], g, c)] = call
                    inc = incs.get((node.i, g))
                    if inc:
                        inc["maxcall"] = max(inc["maxcall"], c)
                elif f[0] == "C":
                    inc = incs.get((node.i, int(f[1])))
                    if inc:
                        inc["marks"].append((int(f[3]), int(f[2])))
                elif f[0] == "T":
                    incs[(node.i, int(f[1]))]["term"] = int(f[2])
                elif f[0] == "E" and len(f) == 5 and f[3] == "dropped":
                    incs[(node.i, int(f[1]))].setdefault(
                        "dropped", set()).add(f[4])
                elif f[0] == "D":
                    incs[(node.i, int(f[1]))]["drain"] = f[3:]
                elif f[0] == "X":
                    incs[(node.i, int(f[1]))]["exit"] = int(f[2])
                    incs[(node.i, int(f[1]))]["exit_outbox"] = int(f[3])
            except (ValueError, KeyError, IndexError):
                continue  # a line cut by kill -9
    for call in calls.values():
        inc = incs.get((call.node, call.g))
        if not inc or call.rc != 0:
            continue
        for t, n in inc["marks"]:
            if n >= call.c:
                if call.tc is None or t < call.tc:
                    call.tc = t
        if call.tc is not None:
            call.owed, call.how = True, "confirmed"
        elif inc["term"] is not None and call.te <= inc["term"]:
            call.owed, call.how, call.tc = True, "drain", inc["term"]
    return calls, incs


CONTENT = re.compile(r"^g(\d+) c(\d+)\b")


def call_key(m):
    """(g, c) a message names, or None."""
    t = m.get("type")
    try:
        if t == "progress":
            mm = CONTENT.match(m.get("message", ""))
        elif t == "error":
            mm = CONTENT.match(m.get("error", ""))
        elif t == "complete":
            md = m.get("metadata") or {}
            return (int(md["g"]), int(md["c"]))
        else:
            return None
        return (int(mm.group(1)), int(mm.group(2))) if mm else None
    except (KeyError, TypeError, ValueError):
        return None


# ---- the nemesis ------------------------------------------------------------------------

class Fault:
    def __init__(self, kind, detail, scope, destructive=None):
        self.kind = kind
        self.detail = detail
        self.scope = scope  # set of 'redis' and node indexes
        self.destructive = destructive  # None, 'all' or a session id
        self.t_start = now()
        self.t_end = None

    def __str__(self):
        return "%s(%s)" % (self.kind, self.detail)


FAULTS = [  # kind, weight
    ("node-kill", 3), ("node-term", 2), ("node-stop", 2),
    ("redis-kill-none", 1), ("redis-kill-aof", 2), ("redis-kill-snapshot", 1),
    ("redis-stop", 2), ("client-kill-pubsub", 2), ("client-kill-normal", 2),
    ("debug-sleep", 2), ("oom", 2), ("script-flush", 2), ("state-edit", 3),
    ("term-while-redis-stalled", 1),
]

# --sentinel: the node faults; failovers (sentinel-failover: the primary
# killed; sentinel-switch: SENTINEL FAILOVER; redis-stop-long: the primary
# stopped past down-after); a Sentinel down; and the Redis faults, each
# against the node that is the primary at the time (redis-stop is short
# enough for no failover). No snapshot faults, nor term-while-redis-stalled
# (a stall that long is a failover here).
SENTINEL_OWN = {"sentinel-failover", "sentinel-switch", "redis-stop-long",
                "sentinel-down", "redis-stop"}
SENTINEL_FAULTS = [  # kind, weight
    ("node-kill", 3), ("node-term", 2), ("node-stop", 2),
    ("sentinel-failover", 3), ("sentinel-switch", 3), ("redis-stop-long", 1),
    ("sentinel-down", 2), ("redis-stop", 2), ("client-kill-pubsub", 2),
    ("client-kill-normal", 2), ("debug-sleep", 2), ("oom", 1),
    ("script-flush", 2), ("state-edit", 3),
]


class Nemesis:
    def __init__(self, ctx, rng, redis, nodes, jobs):
        self.ctx = ctx
        self.rng = rng
        self.redis = redis
        self.nodes = nodes
        self.jobs = jobs
        self.sentinel = isinstance(redis, Sentinels)
        self.current = None  # the fault inject() began, if any
        self.failing_over = 0  # a fault that fails over is under way
        self.known = None  # the primary the failover watcher last saw

    def begin(self, kind, detail, scope, destructive=None):
        f = Fault(kind, detail, scope, destructive)
        self.ctx.faults.append(f)
        self.ctx.say("fault", f)
        self.current = f
        return f

    def end(self, f):
        f.t_end = now()
        self.ctx.say("healed", f.kind, "after %.2f s" % ((f.t_end - f.t_start) / NS))

    async def run(self, until):
        rng = self.rng
        kinds = [k for k, w in (SENTINEL_FAULTS if self.sentinel else FAULTS)
                 for _ in range(w)]
        if self.ctx.args.faults:
            kinds = [k for k in kinds if k in self.ctx.args.faults.split(",")]
        while now() < until and not self.ctx.stop:
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            if now() >= until:
                break
            snapshot = rng.random() < 0.2
            if not self.sentinel and (snapshot or not self.redis.snapshot):
                try:
                    ok = await self.redis.take_snapshot()
                    self.ctx.say("snapshot taken" if ok else "snapshot failed")
                except Exception as e:
                    self.ctx.say("snapshot failed", repr(e))
            kind = rng.choice(kinds)
            # Draw everything the fault needs now, so that a seed gives the
            # same schedule whatever happens in between.
            p = {"node": rng.randrange(len(self.nodes)),
                 "pause": rng.uniform(0.3, 3.0), "r": rng.random(),
                 "session": rng.choice(self.jobs).id,
                 "variant": rng.choice(["unreadable", "delete", "wrongtype",
                                        "new-epoch", "skip-seq", "lower-seq"]),
                 "policy": rng.choice(["noeviction", "volatile-ttl"]),
                 "epoch": rng.randint(1, 2**31 - 1)}
            if self.sentinel:  # drawn only here: plain schedules stay as they were
                p.update({"sentinel": rng.randrange(3),
                          "down": rng.uniform(1.0, 6.0),
                          "short": rng.uniform(0.2, 0.6),
                          "long": rng.uniform(2.5, 5.0)})
            self.current = None
            try:
                if self.sentinel and kind in SENTINEL_OWN:
                    await self.inject_sentinel(kind, p)
                else:
                    await self.inject(kind, p)
            except Exception as e:
                self.ctx.say("fault", kind, "failed:", repr(e))
                if self.current and self.current.t_end is None:
                    self.current.t_end = now()

    async def inject(self, kind, p):
        node = self.nodes[p["node"]]
        pause = p["pause"]
        if kind == "node-kill":
            f = self.begin(kind, node.id, {node.i})
            await node.kill9()
            await asyncio.sleep(pause)
            await node.start()
            self.end(f)
        elif kind == "node-term":
            f = self.begin(kind, node.id, {node.i})
            rc = await node.terminate()
            self.ctx.say("  %s exited %s" % (node.id, rc))
            await asyncio.sleep(pause / 3)
            await node.start()
            self.end(f)
        elif kind == "node-stop":
            f = self.begin(kind, "%s %.1fs" % (node.id, pause + 0.5), {node.i})
            node.signal(signal.SIGSTOP)
            await asyncio.sleep(pause + 0.5)
            node.signal(signal.SIGCONT)
            self.end(f)
        elif kind.startswith("redis-kill"):
            mode = kind.rsplit("-", 1)[1]
            if mode == "snapshot" and not self.redis.snapshot:
                mode = "none"
            detail = mode
            if mode == "snapshot":
                detail += " taken %.1fs ago" % ((now() - self.redis.snapshot[1]) / NS)
            f = self.begin("redis-kill-" + mode, detail, {"redis"},
                           None if mode == "aof" else "all")
            await self.redis.kill9()
            await asyncio.sleep(pause / 2)
            await self.redis.restart(mode)
            self.end(f)
        elif kind == "redis-stop":
            f = self.begin(kind, "%.1fs" % (pause + 0.5), {"redis"})
            self.redis.signal(signal.SIGSTOP)
            await asyncio.sleep(pause + 0.5)
            self.redis.signal(signal.SIGCONT)
            self.end(f)
        elif kind in ("client-kill-pubsub", "client-kill-normal"):
            rport = await self.redis.primary_port()
            f = self.begin(kind, self.where(rport).lstrip(), {"redis"})
            r = await redis_cmd(rport, "CLIENT", "KILL", "TYPE", kind.rsplit("-", 1)[1])
            self.ctx.say("  killed", r)
            self.end(f)
        elif kind == "debug-sleep":
            rport = await self.redis.primary_port()
            f = self.begin(kind, "0.5" + self.where(rport), {"redis"})
            await redis_cmd(rport, "DEBUG", "SLEEP", "0.5", timeout=5)
            self.end(f)
        elif kind == "oom":
            pol = p["policy"]
            rport = await self.redis.primary_port()
            f = self.begin(kind, "%s %.1fs%s" % (pol, pause, self.where(rport)),
                           {"redis"},
                           "all" if pol != "noeviction" else None)
            await redis_cmd(rport, "CONFIG", "SET", "maxmemory-policy", pol)
            await redis_cmd(rport, "CONFIG", "SET", "maxmemory", "1")
            await asyncio.sleep(pause)
            await redis_cmd(rport, "CONFIG", "SET", "maxmemory", "0")
            await redis_cmd(rport, "CONFIG", "SET", "maxmemory-policy", "volatile-ttl")
            self.end(f)
        elif kind == "script-flush":
            rport = await self.redis.primary_port()
            f = self.begin(kind, self.where(rport).lstrip(), {"redis"})
            await redis_cmd(rport, "SCRIPT", "FLUSH")
            self.end(f)
        elif kind == "state-edit":
            await self.state_edit(p)
        elif kind == "term-while-redis-stalled":
            # A rolling restart while Redis does not answer, right after a
            # job's terminal was accepted: wsm_drain() with the terminal
            # still in the outbox. The first node to accept a terminal
            # within 3 s of the stall is the one stopped (else the drawn one).
            sizes = [os.path.getsize(n.log) if os.path.exists(n.log) else 0
                     for n in self.nodes]
            f = self.begin(kind, "", {"redis"} | {n.i for n in self.nodes})
            self.redis.signal(signal.SIGSTOP)
            target, why = node, "no terminal within 3 s"
            deadline = now() + 3 * NS
            while now() < deadline and why:
                await asyncio.sleep(0.02)
                for n, size in zip(self.nodes, sizes):
                    with open(n.log) as fh:
                        fh.seek(size)
                        for line in fh.read().splitlines():
                            w = line.split()
                            if len(w) == 9 and w[0] == "B" and w[3] in "ce" \
                                    and w[6] == "0":
                                target, why = n, None
                                f.detail = "%s after its terminal %s g%s c%s" % (
                                    n.id, w[4], w[1], w[2])
                                break
                    if not why:
                        break
            if why:
                f.detail = "%s, %s" % (node.id, why)
            self.ctx.say("  SIGTERM", f.detail)
            rc = await target.terminate()
            self.ctx.say("  %s exited %s" % (target.id, rc))
            self.redis.signal(signal.SIGCONT)
            await asyncio.sleep(pause / 3)
            await target.start()
            self.end(f)

    async def state_edit(self, p):
        sid, variant = p["session"], p["variant"]
        key = "%s{%s}:state" % (KEY_PREFIX, sid)
        owner = [j for j in self.jobs if j.id == sid][0].owner
        rport = await self.redis.primary_port()
        destructive = sid if variant in ("unreadable", "delete", "wrongtype",
                                         "lower-seq") else None
        f = self.begin("state-edit", "%s %s%s" % (sid, variant, self.where(rport)),
                       {"redis", owner}, destructive)
        before = await redis_cmd(rport, "HGETALL", key)
        if variant == "unreadable":
            r = await redis_cmd(rport, "HSET", key, "e", "not-a-number")
        elif variant == "delete":
            r = await redis_cmd(rport, "DEL", key)
        elif variant == "wrongtype":
            await redis_cmd(rport, "DEL", key)
            r = await redis_cmd(rport, "SET", key, "garbage", "PX", "600000")
        elif variant == "new-epoch":
            r = await redis_cmd(rport, "HSET", key, "e", str(p["epoch"]))
        elif variant == "skip-seq":
            r = await redis_cmd(rport, "HINCRBY", key, "s", "5")
        else:
            s = dict(zip(before[::2], before[1::2])).get("s") \
                if isinstance(before, list) else None
            r = await redis_cmd(rport, "HINCRBY", key, "s", "-3") \
                if s and int(s) > 3 else "skipped (seq %s)" % s
        if isinstance(before, list):
            d = dict(zip(before[::2], before[1::2]))
            before = "e=%s s=%s ps=%s ts=%s" % (d.get("e"), d.get("s"),
                                                d.get("ps"), d.get("ts"))
        self.ctx.say("  state was", before, "->", r)
        self.end(f)

    def where(self, port):
        """--sentinel: which data node a Redis fault went to."""
        if not self.sentinel:
            return ""
        return " on data-%d" % self.redis.data_ports.index(port)

    async def inject_sentinel(self, kind, p):
        """The faults of SENTINEL_OWN: every one but sentinel-down looks up
        the primary first."""
        s = self.redis
        if kind == "sentinel-down":
            # Never two at once: faults come one after another, and this
            # one ends with the sentinel back and knowing all.
            k = p["sentinel"]
            f = self.begin(kind, "sentinel-%d %.1fs" % (k, p["down"]), {"sentinel"})
            await s.kill_sentinel(k)
            await asyncio.sleep(p["down"])
            await s.start_sentinel(k)
            if not await s.until(s.sentinels_know_all, 20):
                self.ctx.say("  sentinel-%d did not find all within 20 s" % k)
            self.end(f)
            return
        was = await s.primary()
        if was is None:
            raise RuntimeError("no primary named by a majority of the sentinels")
        if kind == "redis-stop":
            # Well below down-after (1000 ms): no failover. The watcher
            # would record one if it came anyway.
            f = self.begin(kind, "data-%d %.1fs" % (was, p["short"]), {"redis"})
            s.signal(was, signal.SIGSTOP)
            await asyncio.sleep(p["short"])
            s.signal(was, signal.SIGCONT)
            self.end(f)
            return
        # A replica every sentinel finds fit first: else Sentinel promotes
        # none, and the fault is a mere outage of the primary.
        if not await s.until(lambda: s.replica_seen(1 - was), 20):
            raise RuntimeError("data-%d not seen fit to promote within 20 s"
                               % (1 - was))
        self.failing_over += 1
        try:
            await self.fail_over(kind, p, was)
        finally:
            self.known = await s.primary()
            self.failing_over -= 1

    async def fail_over(self, kind, p, was):
        """sentinel-failover, sentinel-switch, redis-stop-long: each ends
        once the other node is the primary and the old one its replica (or
        a bound passed), so that its window covers the time the old primary
        may still confirm writes. Destructive unless the nodes wait for a
        replica (--replicas, WSM_OPT_CLUSTER_REPLICAS): replication is
        asynchronous, SENTINEL FAILOVER does not wait for the replica to
        catch up, and the old primary confirms writes until a node learns of
        the switch; its resync as a replica discards them. With a replica
        to confirm, nothing confirmed is lost."""
        s = self.redis
        to = 1 - was
        what = "data-%d -> data-%d" % (was, to)
        lossy = None if self.ctx.replicas else "all"
        if kind == "sentinel-failover":
            f = self.begin(kind, "kill -9, " + what, {"redis"}, lossy)
            await s.kill_data(was)
        elif kind == "sentinel-switch":
            f = self.begin(kind, what, {"redis"}, lossy)
            r = await self.ask_failover()
            if r != "OK":
                self.ctx.say("  SENTINEL FAILOVER:", r)
        else:
            f = self.begin(kind, "%.1fs, %s" % (p["long"], what), {"redis"}, lossy)
            s.signal(was, signal.SIGSTOP)
        t = now()
        ok = await s.until(lambda: s.is_primary(to), 20)
        self.ctx.say("  data-%d primary after %.1f s" % (to, (now() - t) / NS)
                     if ok else "  no failover within 20 s")
        if kind == "sentinel-failover":
            await s.start_data(was)
        elif kind == "redis-stop-long":
            await asyncio.sleep(max(0.0, p["long"] - (now() - t) / NS))
            s.signal(was, signal.SIGCONT)
        if ok:
            t = now()
            ok = await s.until(lambda: s.is_replica_of(was, to), 20)
            self.ctx.say("  data-%d a replica after %.1f s" % (was, (now() - t) / NS)
                         if ok else "  data-%d not a replica within 20 s" % was)
        self.end(f)

    async def ask_failover(self):
        """SENTINEL FAILOVER, asked again while refused for want of a fit
        replica or for a failover in progress (at most 20 s)."""
        s = self.redis
        deadline = now() + 20 * NS
        while True:
            live = s.live_sentinels()
            r = await redis_try(s.sentinel_ports[live[0]], "SENTINEL",
                                "FAILOVER", s.NAME) if live else None
            if r == "OK" or (isinstance(r, RespError) and not
                             str(r).startswith(("NOGOODSLAVE", "INPROG"))):
                return r
            if now() >= deadline:
                return r
            await asyncio.sleep(0.1)

    async def watch_failovers(self):
        """--sentinel, for the whole run: a failover no fault asked for
        (none should come) is a failover all the same, so it is recorded as
        a destructive fault (failover-unplanned), from when the old primary
        was last named until it is a replica, and said loudly."""
        s = self.redis
        seen = now()
        while not self.ctx.stop:
            await asyncio.sleep(0.25)
            if self.failing_over:
                continue
            i = await s.primary()
            if i is None or self.failing_over:
                continue
            if self.known is None or i == self.known:
                self.known, seen = i, now()
                continue
            old, self.known = self.known, i
            f = Fault("failover-unplanned", "data-%d -> data-%d" % (old, i),
                      {"redis"}, "all")
            f.t_start = seen
            self.ctx.faults.append(f)
            self.ctx.faults.sort(key=lambda x: x.t_start)
            self.ctx.say("fault", f, "(seen by the failover watcher: no fault "
                         "asked for it)")

            async def demoted():
                return not s.data_up(old) or await s.is_replica_of(old, i)
            await s.until(demoted, 20)
            self.end(f)

    async def heal_sentinel(self):
        s = self.redis
        for i in range(2):
            s.signal(i, signal.SIGCONT)
            if not s.data_up(i):
                await s.start_data(i)
        for k in range(3):
            if k not in s.live_sentinels():
                await s.start_sentinel(k)
        for i in range(2):
            for _ in range(3):
                a = await redis_try(s.data_ports[i], "CONFIG", "SET", "maxmemory", "0")
                b = await redis_try(s.data_ports[i], "CONFIG", "SET",
                                    "maxmemory-policy", "volatile-ttl")
                if a == b == "OK":
                    break
                await asyncio.sleep(0.5)
        if not await s.until(s.healthy, 30):
            self.ctx.say("Redis under Sentinel NOT healthy after 30 s")

    async def heal(self):
        if self.sentinel:
            await self.heal_sentinel()
        else:
            await self.heal_redis()
        for n in self.nodes:
            n.signal(signal.SIGCONT)
            if not n.up():
                await n.start()

    async def heal_redis(self):
        self.redis.signal(signal.SIGCONT)
        if not (self.redis.proc and self.redis.proc.returncode is None):
            await self.redis.restart("aof")
        for _ in range(3):
            try:
                await redis_cmd(self.redis.port, "CONFIG", "SET", "maxmemory", "0")
                await redis_cmd(self.redis.port, "CONFIG", "SET",
                                "maxmemory-policy", "volatile-ttl")
                break
            except Exception:
                await asyncio.sleep(0.5)


# ---- the check -------------------------------------------------------------------------

CATEGORIES = ["lost", "gap", "reorder", "duplicate", "conflict", "order",
              "rollback", "phantom", "unfinished"]


class Checker:
    def __init__(self, ctx, jobs, calls, incs, streams, t_end):
        self.ctx = ctx
        self.jobs = {j.id: j for j in jobs}
        self.calls = calls
        self.incs = incs
        self.streams = streams
        self.t_end = t_end
        self.found = collections.defaultdict(lambda: collections.defaultdict(list))
        self.excused = collections.defaultdict(int)
        self.by_session = collections.defaultdict(list)
        for c in calls.values():
            self.by_session[c.session].append(c)
        for l in self.by_session.values():
            l.sort(key=lambda c: c.key)

    def add(self, sid, cat, t, text):
        self.found[sid][cat].append((t, text))

    def preceding_fault(self, t):
        best = None
        for f in self.ctx.faults:
            if f.t_start <= t:
                best = f
        if not best:
            return "no fault before it"
        return "%s at %.2f s, %.2f s before" % (best, self.ctx.rel(best.t_start),
                                               (t - best.t_start) / NS)

    def lookup(self, sid, key):
        c = self.calls.get((sid, key[0], key[1]))
        if c:
            return c
        owner = self.jobs[sid].owner if sid in self.jobs else None
        inc = self.incs.get((owner, key[0]))
        if inc and key[1] == inc["maxcall"] + 1:
            return "unlogged"  # made, then killed before its log line
        return None

    def quiet(self, t0, t1, scope):
        rec = int(self.ctx.args.recovery * NS)
        for f in self.ctx.faults:
            end = (f.t_end or self.t_end) + rec
            if f.scope & scope and f.t_start <= t1 and end >= t0:
                return False
        return True

    def last_destruction(self, sid):
        t = 0
        for f in self.ctx.faults:
            if f.destructive in ("all", sid):
                t = max(t, f.t_end or self.t_end)
        return t

    def fmt(self, conn, t, m):
        return "%s conn %d (node-%d%s) at %.2f s: %s" % (
            conn.stream.name, conn.id, conn.node, conn.query, self.ctx.rel(t),
            json.dumps({k: m.get(k) for k in ("seq", "epoch", "type", "message",
                                              "error", "metadata") if k in m}))

    def run(self):
        seen_at = collections.defaultdict(dict)  # (sid, epoch, seq) -> key -> ev
        call_seqs = collections.defaultdict(dict)  # (sid, key, epoch) -> seq -> ev
        terminal_seqs = set()  # (sid, epoch, seq) known to carry a terminal
        for st in self.streams:
            for conn in st.conns:
                for t, m in conn.msgs:
                    if m.get("type") in ("error", "complete") and \
                            isinstance(m.get("seq"), int):
                        terminal_seqs.add((st.session, m.get("epoch"), m["seq"]))
        for st in self.streams:
            self.check_stream(st, seen_at, call_seqs, terminal_seqs)
        for (sid, epoch, seq), keys in seen_at.items():
            if len(keys) > 1:
                ev = sorted(keys.values(), key=lambda e: e[0])
                # Blamed on the fault before the newest of the calls was made.
                made = [c.ts for c in (self.lookup(sid, k) for k in keys)
                        if isinstance(c, Call)]
                self.add(sid, "conflict", ev[0][0],
                         "epoch %d seq %d carries %d calls: %s; the newer made "
                         "after %s" % (
                             epoch, seq, len(keys),
                             " | ".join(e[1] for e in ev[:3]),
                             self.preceding_fault(max(made) if made else ev[1][0])))
        for (sid, key, epoch), seqs in call_seqs.items():
            if len(seqs) > 1:
                ev = sorted(seqs.values(), key=lambda e: e[0])
                self.add(sid, "duplicate", ev[1][0],
                         "call g%d c%d at %d seqs of epoch %d: %s; after %s" % (
                             key[0], key[1], len(seqs), epoch,
                             " | ".join(e[1] for e in ev[:3]),
                             self.preceding_fault(ev[1][0])))
        self.check_lost()
        self.check_dropped_at_exit(seen_at)
        self.check_finished()

    def check_dropped_at_exit(self, seen_at):
        """A terminal accepted before a drain, never seen by anyone, from an
        incarnation whose last line says its outbox still held errors or
        completes when it exited: lost, whatever faults came later -- unless
        the node told it dropped it (WSM_EVENT_CLUSTER_DROPPED for that
        session) and Redis was not there to take it (a fault of Redis's
        between the SIGTERM and the exit): wsm(7) promises the outbox within
        the drain's window while Redis answers, and the telling otherwise."""
        seen = {(sid, k) for (sid, e, s), keys in seen_at.items() for k in keys}
        for sid, cs in self.by_session.items():
            for c in cs:
                inc = self.incs.get((c.node, c.g)) or {}
                if c.kind == "p" or c.how != "drain" or \
                        not inc.get("exit_outbox") or (sid, c.key) in seen:
                    continue
                if sid in inc.get("dropped", ()) and inc.get("exit") and \
                        not self.quiet(c.tc, inc["exit"], {"redis"}):
                    continue
                self.add(sid, "lost", c.tc,
                         "terminal %s g%d c%d accepted %.2f s, then SIGTERM at "
                         "%.2f s: node-%d drained and exited with %d error(s)/"
                         "complete(s) still in its outbox; no client ever got "
                         "it" % (c.kind, c.g, c.c, self.ctx.rel(c.te),
                                 self.ctx.rel(c.tc), c.node, inc["exit_outbox"]))

    def check_stream(self, st, seen_at, call_seqs, terminal_seqs):
        sid = st.session
        epoch = seq = None  # the segment's last message
        have_msg = False  # a non-reset message in this segment
        seg_seqs, seg_calls = set(), set()
        last_key = None
        held = None  # (key, t) of the newest call held in the segment
        ever = None  # (key, t) of the newest call the stream ever got
        for conn in st.conns:
            conn.held_at_close = None
            for t, m in conn.msgs:
                typ = m.get("type")
                ev = self.fmt(conn, t, m)
                if typ == "reset":
                    if epoch is not None and m.get("epoch") == epoch and \
                            isinstance(m.get("seq"), int) and m["seq"] < seq:
                        self.add(sid, "rollback", t,
                                 "%s after seq %d of the same epoch; after %s" % (
                                     ev, seq, self.preceding_fault(t)))
                    epoch, seq, have_msg = m.get("epoch"), 0, False
                    seg_seqs, seg_calls, last_key, held = set(), set(), None, None
                    continue
                if typ not in ("progress", "error", "complete"):
                    continue  # JSON pings and the like
                key = call_key(m)
                e, s = m.get("epoch"), m.get("seq")
                call = self.lookup(sid, key) if key else None
                if call is None:
                    self.add(sid, "phantom", t, "%s names no call of the log" % ev)
                    key = None
                if key:
                    seen_at[(sid, e, s)].setdefault(key, (t, ev))
                    call_seqs[(sid, key, e)].setdefault(s, (t, ev))
                if epoch is not None and e != epoch:
                    self.add(sid, "gap", t,
                             "%s: epoch %s -> %s with no reset; after %s" % (
                                 ev, epoch, e, self.preceding_fault(t)))
                    seg_seqs, seg_calls, last_key, held = set(), set(), None, None
                elif epoch is not None and e == epoch and have_msg:
                    if (e, s) in seg_seqs:
                        self.add(sid, "duplicate", t, "%s: seq again; after %s" % (
                            ev, self.preceding_fault(t)))
                    elif s < seq:
                        self.add(sid, "reorder", t, "%s after seq %d; after %s" % (
                            ev, seq, self.preceding_fault(t)))
                    elif s > seq + 1:
                        skipped = [x for x in range(seq + 1, s)
                                   if (sid, e, x) in terminal_seqs]
                        if skipped:
                            self.add(sid, "gap", t,
                                     "%s after seq %d skips terminal seq(s) %s; "
                                     "after %s" % (ev, seq, skipped,
                                                   self.preceding_fault(t)))
                if key:
                    if key in seg_calls and (e, s) not in seg_seqs:
                        self.add(sid, "duplicate", t,
                                 "%s: call g%d c%d again; after %s" % (
                                     ev, key[0], key[1], self.preceding_fault(t)))
                    elif last_key is not None and key < last_key:
                        self.add(sid, "order", t,
                                 "%s delivered after call g%d c%d; after %s" % (
                                     ev, last_key[0], last_key[1],
                                     self.preceding_fault(t)))
                    seg_calls.add(key)
                    last_key = key if last_key is None else max(last_key, key)
                    if held is None or key > held[0]:
                        held = (key, t)
                    if ever is None or key > ever[0]:
                        ever = (key, t)
                seg_seqs.add((e, s))
                epoch = e
                seq = s if seq is None or not have_msg else max(seq, s)
                have_msg = True
            conn.held_at_close = held
            conn.ever_at_close = ever

    def destroyed_between(self, sid, t0, t1):
        for f in self.ctx.faults:
            if f.destructive in ("all", sid) and f.t_start <= t1 and \
                    (f.t_end or self.t_end) >= t0:
                return True
        return False

    def check_lost(self):
        deliver = int(self.ctx.args.deliver * NS)
        for st in self.streams:
            sid = st.session
            if sid not in self.jobs:
                continue
            owner = self.jobs[sid].owner
            owed = [c for c in self.by_session[sid]
                    if c.owed and c.tc <= self.t_end - deliver]
            last_destroyed = self.last_destruction(sid)
            for conn in st.conns:
                at_end = conn.t_close is None
                # At the end, what the client shows: its segment since the
                # last reset. Before, what it was given at any time: a later
                # reset (after a destructive fault) does not undo a delivery.
                held = conn.held_at_close if at_end else conn.ever_at_close
                # The newest owed call this connection stayed through.
                need = None
                for c in reversed(owed):
                    if at_end:
                        if c.ts > last_destroyed:
                            need = c
                            break
                        continue
                    # Live when it was confirmed, or joined later (then the
                    # state it reads holds it): given deliver seconds free
                    # of relevant faults, and no loss of Redis's data since.
                    w0 = max(c.tc, conn.t_open)
                    if w0 + deliver <= conn.t_close and \
                            self.quiet(w0, w0 + deliver, {"redis", owner, conn.node}) \
                            and not self.destroyed_between(sid, c.tc, w0 + deliver):
                        need = c
                        break
                if need is None:
                    continue
                if held is not None and held[0] >= need.key:
                    continue
                what = "%s %s g%d c%d (idx %d, %s at %.2f s)" % (
                    "terminal" if need.kind != "p" else "progress", need.kind,
                    need.g, need.c, need.idx, need.how, self.ctx.rel(need.tc))
                have = "nothing" if held is None else "g%d c%d at %.2f s" % (
                    held[0][0], held[0][1], self.ctx.rel(held[1]))
                where = "open at the end" if at_end else \
                    "closed at %.2f s (%s)" % (self.ctx.rel(conn.t_close), conn.how)
                self.add(sid, "lost", need.tc,
                         "%s conn %d (node-%d%s, opened %.2f s, %s) never got %s "
                         "or later; newest held: %s; last fault before: %s" % (
                             st.name, conn.id, conn.node, conn.query,
                             self.ctx.rel(conn.t_open), where, what, have,
                             self.preceding_fault(need.tc)))

    def check_finished(self):
        for sid, job in self.jobs.items():
            done = [c for c in self.by_session[sid]
                    if c.kind != "p" and c.rc == 0 and c.owed]
            if not done:
                self.add(sid, "unfinished", self.t_end,
                         "no owed terminal in node-%d's log" % job.owner)

    def report(self):
        total = collections.Counter()
        print()
        print("%-10s %6s %6s %7s " % ("session", "calls", "owed", "streams") +
              " ".join("%9s" % c for c in CATEGORIES))
        nstreams = collections.Counter(st.session for st in self.streams)
        for sid in sorted(self.jobs):
            cs = self.by_session[sid]
            row = [len(self.found[sid][c]) for c in CATEGORIES]
            for c, n in zip(CATEGORIES, row):
                total[c] += n
            print("%-10s %6d %6d %7d " % (sid, len(cs), sum(c.owed for c in cs),
                                          nstreams[sid]) +
                  " ".join("%9d" % n for n in row))
        print("%-10s %6s %6s %7s " % ("total", "", "", "") +
              " ".join("%9d" % total[c] for c in CATEGORIES))
        anomalies = sum(total.values())
        if anomalies:
            print("\nEvidence (the first %d of each kind per session):" %
                  self.ctx.args.examples)
            for sid in sorted(self.found):
                for cat in CATEGORIES:
                    items = sorted(self.found[sid][cat])
                    for t, text in items[:self.ctx.args.examples]:
                        print("  %s %s @%.2f s: %s" % (sid, cat, self.ctx.rel(t), text))
                    if len(items) > self.ctx.args.examples:
                        print("  %s %s: ... %d more" % (
                            sid, cat, len(items) - self.ctx.args.examples))
        return anomalies, total


# ---- the run -----------------------------------------------------------------------------

def make_jobs(rng, n, nodes, chaos_s):
    jobs = []
    for i in range(n):
        start = rng.uniform(0, 0.5) * chaos_s
        dur = rng.uniform(0.25, 0.5) * chaos_s
        dur = min(dur, 0.92 * chaos_s - start)
        interval = rng.randint(80, 250)
        steps = max(3, int(dur * 1000 / interval))
        jobs.append(Job("job-%02d" % i, i % nodes, int(start * 1000), steps,
                        interval, "e" if rng.random() < 0.25 else "c"))
    return jobs


def owed_at_end(ctx, calls):
    """Per session, the key of the newest call owed to a client at the end:
    owed, and issued after the last destructive fault on its session."""
    gone = collections.defaultdict(int)
    for f in ctx.faults:
        if f.destructive:
            gone[f.destructive] = max(gone[f.destructive], f.t_end or now())
    newest = {}
    for c in calls.values():
        if c.owed and c.ts > max(gone["all"], gone[c.session]) and \
                (c.session not in newest or c.key > newest[c.session]):
            newest[c.session] = c.key
    return newest


async def settle_wait(ctx, nodes, jobs, clients, bound_s):
    """Until every job's terminal is confirmed and every connected client
    holds its session's newest owed call, or the bound."""
    deadline = now() + int(bound_s * NS)
    calls = {}
    while now() < deadline:
        calls, incs = read_logs(nodes)
        done = {c.session for c in calls.values()
                if c.kind != "p" and c.rc == 0 and c.owed}
        if all(j.id in done for j in jobs):
            break
        await asyncio.sleep(0.5)
    ctx.say("jobs finished" if now() < deadline else "jobs NOT all finished")
    # Clients: they are checked, not waited for past the bound.
    newest = owed_at_end(ctx, calls)
    while now() < deadline:
        behind = 0
        for cl in clients:
            st, conn = cl.stream, cl.conn
            if st is None or conn is None:
                behind += 1
                continue
            want = newest.get(st.session)
            have = [call_key(m) for con in st.conns for _, m in con.msgs]
            have = [k for k in have if k]
            if want and (not have or max(have) < want):
                behind += 1
        if not behind:
            break
        await asyncio.sleep(0.25)
    ctx.say("clients settled" if now() < deadline else "clients NOT all settled")


async def main_async(ctx, workdir):
    args = ctx.args
    seed = args.seed
    master = random.Random(seed)
    total_s = args.minutes * 60
    chaos_s = max(15.0, total_s * 0.65 - 5)
    settle_s = max(20.0, min(60.0, total_s * 0.2))
    history = args.history if args.history is not None else \
        master.choice([0, 0, 8, 64])
    jobs = make_jobs(random.Random(master.random()), args.sessions, args.nodes,
                     chaos_s)
    nemesis_rng = random.Random(master.random())
    client_seeds = [master.random() for _ in range(args.clients)]
    ctx.say("chaos %.0f s, settle <= %.0f s, %d nodes, %d clients, %d sessions, "
            "history %d, workdir %s" % (chaos_s, settle_s, args.nodes, args.clients,
                                         args.sessions, history, workdir))

    if args.sentinel:
        redis = Sentinels(ctx, args.redis_server, args.redis_sentinel, workdir)
        await redis.start()
    else:
        redis = Redis(ctx, args.redis_server, workdir)
        await redis.start(True)
    t0_ms = (now() + 2 * NS) // 1_000_000
    nodes = [Node(ctx, i, args.node_binary, workdir, redis, history, t0_ms)
             for i in range(args.nodes)]
    for j in jobs:
        nodes[j.owner].jobs.append(j)
    for n in nodes:
        await n.start()
    ctx.say("%s, nodes on %s" % (redis.describe(), [n.port for n in nodes]))

    sessions = [j.id for j in jobs]
    clients = [Client(ctx, "c%02d" % i, random.Random(client_seeds[i]), sessions,
                      nodes) for i in range(args.clients)]
    tasks = [asyncio.ensure_future(c.run()) for c in clients]
    ctx.phase = "chaos"
    t_chaos_end = now() + int(chaos_s * NS)
    nem = Nemesis(ctx, nemesis_rng, redis, nodes, jobs)
    watcher = None
    if args.sentinel:
        nem.known = await redis.primary()
        watcher = asyncio.ensure_future(nem.watch_failovers())
    if not args.no_faults:
        await nem.run(t_chaos_end)
    while now() < t_chaos_end:
        await asyncio.sleep(0.2)
    ctx.phase = "heal"
    await nem.heal()
    ctx.say("healed everything; settling")
    ctx.phase = "settle"
    for c in clients:
        c.final.set()
    await settle_wait(ctx, nodes, jobs, clients, settle_s)
    calls, incs = read_logs(nodes)
    newest = owed_at_end(ctx, calls)
    probes = await asyncio.gather(*[probe(ctx, n, j.id, newest.get(j.id), calls)
                                    for j in jobs for n in nodes])
    t_end = now()
    ctx.phase = "end"
    ctx.stop = True
    if watcher:
        tasks.append(watcher)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ctx.say("stopping nodes")
    rcs = await asyncio.gather(*[n.terminate(8) for n in nodes])
    ctx.say("nodes exited", rcs)
    await redis.kill9()
    streams = [st for c in clients for st in c.streams] + list(probes)
    for p in probes:
        if getattr(p, "error", None):
            ctx.say("probe %s on %s failed: %s" % (p.session, p.name, p.error))
    record = {
        "seed": seed, "t_start": ctx.t_start, "t_end": t_end,
        "args": {"deliver": args.deliver, "recovery": args.recovery,
                 "sentinel": bool(args.sentinel)},
        "logs": [[n.i, n.log] for n in nodes],
        "jobs": [[j.id, j.owner, j.start_ms, j.steps, j.interval_ms, j.terminal]
                 for j in jobs],
        "faults": [{"kind": x.kind, "detail": x.detail, "t_start": x.t_start,
                    "t_end": x.t_end, "scope": sorted(x.scope, key=str),
                    "destructive": x.destructive} for x in ctx.faults],
        "streams": [{"name": st.name, "session": st.session, "conns": [
            {"node": c.node, "query": c.query, "open": c.t_open,
             "close": c.t_close, "how": c.how, "msgs": c.msgs}
            for c in st.conns]} for st in streams]}
    with open(os.path.join(workdir, "record.json"), "w") as f:
        json.dump(record, f)
    return analyse(ctx, record)


def load_record(path, args):
    """A run's record.json (and the node logs it names), for --recheck."""
    with open(path) as f:
        record = json.load(f)
    ctx = Ctx(args)
    ctx.record_dir = os.path.dirname(os.path.abspath(path))
    ctx.t_start = record["t_start"]
    for x in record["faults"]:
        f = Fault(x["kind"], x["detail"], set(x["scope"]), x["destructive"])
        f.t_start, f.t_end = x["t_start"], x["t_end"]
        ctx.faults.append(f)
    return ctx, record


def analyse(ctx, record):
    """The check of one run's record; the number of anomalies."""
    class LogNode:
        def __init__(self, i, log):
            self.i, self.log = i, log
    jobs = [Job(*j) for j in record["jobs"]]
    base = getattr(ctx, "record_dir", ".")
    calls, incs = read_logs([LogNode(i, os.path.join(base, log))
                             for i, log in record["logs"]])
    streams = []
    for s in record["streams"]:
        st = Stream(s["name"].split("/")[0], s["session"], 0)
        st.name = s["name"]
        for i, c in enumerate(s["conns"]):
            conn = Conn(st, i, c["node"], c["query"], c["open"])
            conn.t_close, conn.how = c["close"], c["how"]
            conn.msgs = [(t, m) for t, m in c["msgs"]]
            st.conns.append(conn)
        streams.append(st)
    ck = Checker(ctx, jobs, calls, incs, streams, record["t_end"])
    ck.run()
    nconn = sum(len(st.conns) for st in streams)
    nmsg = sum(len(c.msgs) for st in streams for c in st.conns)
    print("\nseed %d: %d faults, %d calls (%d owed), %d streams, %d connections, "
          "%d messages received" % (record["seed"], len(ctx.faults), len(calls),
                                    sum(c.owed for c in calls.values()),
                                    len(streams), nconn, nmsg))
    kinds = collections.Counter(f.kind for f in ctx.faults)
    print("faults:", ", ".join("%s %d" % kv for kv in sorted(kinds.items())))
    anomalies, _ = ck.report()
    return anomalies


def self_test():
    """The checker against made-up records, one planted anomaly of each kind
    (and clean streams that must stay clean): so that a pass means
    something."""
    args = argparse.Namespace(deliver=3.0, recovery=3.0, examples=3)
    ctx = Ctx(args)
    t0 = ctx.t_start
    sec = lambda x: t0 + int(x * NS)
    jobs = [Job("job-00", 0, 0, 5, 100, "c"), Job("job-01", 0, 0, 5, 100, "c")]
    calls = {}
    for c in range(1, 7):
        k = "p" if c < 6 else "c"
        call = Call(0, 0, c, k, "job-00", c - 1, 0, sec(c), sec(c))
        call.tc, call.owed, call.how = sec(c) + 1000, True, "confirmed"
        calls[("job-00", 0, c)] = call
    incs = {(0, 0): {"maxcall": 6, "marks": [], "term": None}}

    def msg(seq, c, typ="progress", epoch=7, sid="job-00"):
        m = {"seq": seq, "epoch": epoch, "type": typ, "sessionId": sid}
        if typ == "progress":
            m["message"] = "g0 c%d i%d" % (c, c - 1)
        elif typ == "complete":
            m["metadata"] = {"g": 0, "c": c}
        return m

    def stream(name, msgs, t_open=0.5, t_close=None, sid="job-00"):
        st = Stream(name, sid, 0)
        conn = Conn(st, 0, 0, "", sec(t_open))
        conn.t_close = sec(t_close) if t_close is not None else None
        conn.how = "client"
        conn.msgs = [(sec(t_open + 0.01 * i), m) for i, m in enumerate(msgs)]
        st.conns.append(conn)
        return st

    full = [msg(i, i) for i in range(1, 6)] + [msg(6, 6, "complete")]
    streams = {
        "clean": stream("clean", full),
        "clean-coalesced": stream("clean-coalesced", [msg(2, 2), msg(5, 5),
                                                      msg(6, 6, "complete")]),
        "lost": stream("lost", full[:3], 0.5, 20),
        "gap": stream("gap", [msg(5, 5), msg(7, 6, "complete")]),
        "reorder": stream("reorder", [msg(3, 3), msg(2, 2)] + full[5:]),
        "duplicate": stream("duplicate", [msg(3, 3), msg(3, 3)] + full[5:]),
        "conflict": stream("conflict", [msg(4, 3)] + full[5:]),
        "order": stream("order", [msg(3, 4), msg(4, 3)] + full[5:]),
        "rollback": stream("rollback", [msg(5, 5),
                                        {"seq": 2, "epoch": 7, "type": "reset"}]
                           + full[5:]),
        "phantom": stream("phantom", [{"seq": 5, "epoch": 7, "type": "progress",
                                       "message": "g9 c99 i0"}] + full[5:]),
    }
    ck = Checker(ctx, jobs, calls, incs, list(streams.values()), sec(40))
    ck.run()
    got = collections.defaultdict(set)
    for sid in ck.found:
        for cat, items in ck.found[sid].items():
            for t, text in items:
                got[cat].add(text.split(" ")[0])
    ok = True
    for cat in CATEGORIES:
        want = {"conflict": "job-00", "unfinished": "no"}.get(cat)
        hit = bool(got.get(cat))
        print("self-test %-10s %s %s" % (cat, "found" if hit else "MISSED",
                                          sorted(got.get(cat, ()))))
        ok &= hit
    for name in ("clean", "clean-coalesced"):
        for cat, names in got.items():
            if any(n.startswith(name + "/") for n in names):
                print("self-test false alarm:", cat, "on", name)
                ok = False
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--sessions", type=int, default=12)
    ap.add_argument("--history", type=int, default=None,
                    help="WSM_OPT_CLUSTER_HISTORY (default: drawn from the seed)")
    ap.add_argument("--node-binary", default=None)
    ap.add_argument("--redis-server", default=None)
    ap.add_argument("--sentinel", action="store_true",
                    help="Redis as a primary, a replica and three Sentinels; "
                    "failover faults")
    ap.add_argument("--redis-sentinel", default=None)
    ap.add_argument("--replicas", type=int, default=None,
                    help="WSM_OPT_CLUSTER_REPLICAS (default: 1 with --sentinel, "
                    "else 0); with it, failovers lose nothing confirmed")
    ap.add_argument("--faults", default=None,
                    help="comma-separated fault kinds to draw from (default all)")
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--deliver", type=float, default=3.0,
                    help="seconds a connection is given to get an owed call")
    ap.add_argument("--recovery", type=float, default=3.0,
                    help="seconds after a fault heals that still count as its")
    ap.add_argument("--examples", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--no-nice", action="store_true")
    ap.add_argument("--recheck", metavar="WORKDIR",
                    help="check a kept run's record again, and exit")
    ap.add_argument("--self-test", action="store_true",
                    help="check the checker on made-up records, and exit")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.recheck:
        ctx, record = load_record(os.path.join(args.recheck, "record.json"), args)
        print("seed", record["seed"])
        return 1 if analyse(ctx, record) else 0
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    print("seed", args.seed, flush=True)
    args.redis_server = args.redis_server or shutil.which("redis-server") or \
        ("/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None)
    if not args.redis_server:
        print("SKIPPED: redis-server is not installed")
        return 77
    if args.sentinel:
        args.redis_sentinel = args.redis_sentinel or \
            shutil.which("redis-sentinel") or \
            ("/usr/bin/redis-sentinel"
             if os.access("/usr/bin/redis-sentinel", os.X_OK) else None)
        if not args.redis_sentinel:
            print("SKIPPED: redis-sentinel is not installed")
            return 77
    if not args.node_binary:
        here = os.path.dirname(os.path.abspath(__file__))
        for cand in ("../../build/tests/chaos/chaos_node",):
            if os.access(os.path.join(here, cand), os.X_OK):
                args.node_binary = os.path.join(here, cand)
    if not args.node_binary or not os.access(args.node_binary, os.X_OK):
        print("no chaos_node binary: pass --node-binary")
        return 2
    if not args.no_nice:
        try:
            os.nice(10)  # another job's timing tests share the machine
        except OSError:
            pass
    workdir = tempfile.mkdtemp(prefix="wsm-chaos-")
    ctx = Ctx(args)

    def on_term(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started with it ignored
    rc = 2
    try:
        anomalies = asyncio.run(main_async(ctx, workdir))
        rc = 1 if anomalies else 0
        print("\nPASS: no anomaly" if not anomalies else
              "\nFAIL: %d anomalies (seed %d)" % (anomalies, args.seed))
    except KeyboardInterrupt:
        print("interrupted")
        rc = 130
    except Exception:
        import traceback
        traceback.print_exc()
        rc = 2
    finally:
        kill_all_now(ctx)
        if args.keep or rc != 0:
            print("work directory kept:", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
