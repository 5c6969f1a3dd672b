"""Redis engine: the same store shared by several machines, each step one atomic Lua script.

Keys live under a prefix (default "icbot:"): `ready` (claimable jobs by due time), `leased`
(claimed jobs by lease end, or backoff end), `scheduled` (jobs not yet due, by due time; moved to
`ready` by the claims once due), `job:<id>` (a job's fields), `seen:<id>` (dedupe marker),
`abandoned`, `fact:<key>`, `hits:<key>`, `workers` (worker processes by end of life),
`released:<owner>` (an owner whose process died, refused from then on), `wake` (one entry per
accept, or per job due sooner than every other, popped by an idle worker process blocked on it,
so it wakes at once) and `version` (the format, see `STORE_VERSION`). Version 2 added records:
`record:<collection>:<id>` (a hash of the value, its end of life and one `t:<tag>` field per
tag), `tagged:<collection>:<tag>` (its ids by time) and `tagged-expiry:<collection>:<tag>`
(those of them with an end of life, by it), new keys beside the old ones. Version 3 added
`scheduled` and each job's `due_at` field, and scores `ready` by it (by the `seq` of its
acceptance before): migrating rescores the waiting jobs and forgets `seq`. Expiry is decided by
the store's clock, passed into every script, so tests can move time; Redis' own expiry, set a
grace period later, only reclaims memory. A tag's two sets live as long as their longest-lived
record, and each write under a tag drops the entries of records expired since. Needs a single
Redis (not Cluster: scripts touch keys they discover) with the `noeviction` policy. Durability
is what the server's persistence gives: see `persistence()`, which the bot checks before it
starts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import Script
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from bot.jobs.storage.contract import (
    DEFAULT_RETENTION_SECONDS,
    RELEASED_OWNER_SECONDS,
    STORE_VERSION,
    AbandonedJob,
    BacklogFull,
    Clock,
    Job,
    Persistence,
    check_collection,
    check_limit,
    check_owner,
    check_positive,
    check_version,
    unique_tags,
)
from bot.jobs.storage.health import Health, StoreUnavailable

DEFAULT_PREFIX = "icbot:"

# Wake-ups kept for worker processes that are busy or not running; one is enough to drain all.
_MAX_WAKEUPS = 100

# The longest one BLPOP blocks: less than the client's socket timeout, which would end it as an
# error.
_LONGEST_WAIT = 4.0

# Redis' own expiry trails the logical one by this much, so a key never vanishes early.
_GRACE_SECONDS = 60.0

# A function the scripts that make a job claimable share, called while that job is in none of
# the sets: whether a job visible from `at` is due by `now` or sooner than every other unfinished
# job, so that a worker sleeping until the earliest needs waking, and if so one wake-up on `wake`.
_RING = """
local function ring(ready, leased, scheduled, wake, at, now, max_wakeups)
    if at > now then
        if redis.call('ZCARD', ready) > 0 then return end
        for _, set in ipairs({leased, scheduled}) do
            local head = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
            if head[2] and tonumber(head[2]) <= at then return end
        end
    end
    redis.call('LPUSH', wake, 1)
    redis.call('LTRIM', wake, 0, max_wakeups - 1)
end
"""

# KEYS: seen, job, ready, abandoned, leased, wake, scheduled. ARGV: id, kind, payload, now,
# cutoff, ttl_ms (dedupe from the due time), max_backlog ('' = none), max wake-ups, due_at.
_STORE_JOB = _RING + """
local now, due = tonumber(ARGV[4]), tonumber(ARGV[9])
local seen = redis.call('GET', KEYS[1])
if seen and tonumber(seen) > tonumber(ARGV[5]) then return 0 end
if redis.call('HGET', KEYS[2], 'state') == 'queued' then return 0 end
if ARGV[7] ~= '' and redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[5])
        + redis.call('ZCOUNT', KEYS[7], '-inf', ARGV[4]) >= tonumber(ARGV[7]) then
    return -1
end
ring(KEYS[3], KEYS[5], KEYS[7], KEYS[6], due, now, tonumber(ARGV[8]))
redis.call('SET', KEYS[1], ARGV[9], 'PX', ARGV[6])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'kind', ARGV[2], 'payload', ARGV[3], 'state', 'queued',
           'owner', '', 'attempts', 0, 'accepted_at', ARGV[4], 'due_at', ARGV[9])
redis.call('ZADD', due <= now and KEYS[3] or KEYS[7], ARGV[9], ARGV[1])
return 1
"""

# KEYS: ready, leased, released:<owner>, scheduled. ARGV: now, lease end, owner, job key prefix.
_CLAIM = """
if redis.call('EXISTS', KEYS[3]) == 1 then return false end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, id in ipairs(expired) do
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[1], redis.call('HGET', ARGV[4] .. id, 'due_at'), id)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, 100)
for i = 1, #due, 2 do
    redis.call('ZREM', KEYS[4], due[i])
    redis.call('ZADD', KEYS[1], due[i + 1], due[i])
end
local id = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if not id then return false end
local key = ARGV[4] .. id
redis.call('ZREM', KEYS[1], id)
redis.call('ZADD', KEYS[2], ARGV[2], id)
redis.call('HSET', key, 'owner', ARGV[3])
local attempts = redis.call('HINCRBY', key, 'attempts', 1)
local fields = redis.call('HMGET', key, 'kind', 'payload', 'accepted_at', 'due_at')
return {id, fields[1], fields[2], attempts, fields[3], fields[4]}
"""

# Shared head of the scripts that act on a job its owner holds: KEYS job, ready, leased;
# ARGV id, owner. Stops with 0 unless the job is queued and `owner` claimed it last.
_HELD = """
local held = redis.call('HMGET', KEYS[1], 'state', 'owner')
if held[1] ~= 'queued' or held[2] ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
"""

_COMPLETE = (
    _HELD
    + """
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""
)

# Extra KEYS: abandoned. Extra ARGV: error, now, cutoff, ttl_ms.
_ABANDON = (
    _HELD
    + """
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'abandoned', 'error', ARGV[3], 'finished_at', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[4], redis.call('HGET', KEYS[1], 'due_at'), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[5])
return 1
"""
)

# Extra ARGV: lease_end.
_EXTEND = (
    _HELD
    + """
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""
)

# Extra KEYS: scheduled, wake. Extra ARGV: visible_at, now, max wake-ups.
_RETRY_LATER = (
    _RING
    + _HELD
    + """
redis.call('ZREM', KEYS[3], ARGV[1])
ring(KEYS[2], KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[1], 'owner', '')
return 1
"""
)

# KEYS: job, ready, leased, scheduled. ARGV: id. The `seen` marker stays, as a done job's.
_CANCEL = """
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then return 0 end
for i = 2, 4 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: job, ready, leased, scheduled, wake, seen. ARGV: id, due_at, now, max wake-ups, the
# dedupe marker's ttl_ms (the retention from the new due time).
_RESCHEDULE = _RING + """
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then return 0 end
for i = 2, 4 do redis.call('ZREM', KEYS[i], ARGV[1]) end
local due, now = tonumber(ARGV[2]), tonumber(ARGV[3])
ring(KEYS[2], KEYS[3], KEYS[4], KEYS[5], due, now, tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'due_at', ARGV[2], 'owner', '', 'attempts', 0)
redis.call('ZADD', due <= now and KEYS[2] or KEYS[4], ARGV[2], ARGV[1])
redis.call('SET', KEYS[6], ARGV[2], 'PX', ARGV[5])
return 1
"""

# KEYS: workers, released:<owner>. ARGV: owner, alive_until, now.
_HEARTBEAT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
return 1
"""

# KEYS: ready, leased, workers, released:<owner>, wake. ARGV: owner, job key prefix,
# refusal ms, max wake-ups. A leased job is the owner's while its `owner` field names it.
_RELEASE = """
redis.call('SET', KEYS[4], '1', 'PX', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
local released = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local key = ARGV[2] .. id
    if redis.call('HGET', key, 'owner') == ARGV[1] then
        redis.call('ZREM', KEYS[2], id)
        redis.call('ZADD', KEYS[1], redis.call('HGET', key, 'due_at'), id)
        redis.call('HSET', key, 'owner', '')
        released = released + 1
    end
end
if released > 0 then
    redis.call('LPUSH', KEYS[5], 1)
    redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[4]) - 1)
end
return released
"""

# KEYS: version, ready, leased, seq. ARGV: this release's version, job key prefix. Returns the
# version found (0: none, the format before versions); migrates an older store, never a newer
# one. Version 1 is the format before versions and version 2's records are keys of their own;
# version 3 gives each waiting job its due time (its acceptance) and scores `ready` by it.
_MIGRATE = """
local found = tonumber(redis.call('GET', KEYS[1]) or '0')
if found < 3 then
    for _, set in ipairs({KEYS[2], KEYS[3]}) do
        for _, id in ipairs(redis.call('ZRANGE', set, 0, -1)) do
            local key = ARGV[2] .. id
            local at = redis.call('HGET', key, 'accepted_at')
            redis.call('HSET', key, 'due_at', at)
            redis.call('HDEL', key, 'seq')
            if set == KEYS[2] then redis.call('ZADD', set, at, id) end
        end
    end
    redis.call('DEL', KEYS[4])
end
if found < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return found
"""

# KEYS: ready, leased, scheduled. ARGV: job key prefix, now. The oldest due time among the ready
# queue's head, the leased jobs (in flight or backing off: few) and the scheduled ones now due
# but not yet moved to `ready`; its time as stored.
_OLDEST_WAITING = """
local found = {}
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
if head then table.insert(found, head) end
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    table.insert(found, redis.call('HGET', ARGV[1] .. id, 'due_at'))
end
local due = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')[2]
if due and tonumber(due) <= tonumber(ARGV[2]) then table.insert(found, due) end
local oldest, text = nil, false
for _, at in ipairs(found) do
    if oldest == nil or tonumber(at) < oldest then oldest, text = tonumber(at), at end
end
return text
"""

# ARGV: only_if_absent ('1' or '0'), value, now, expires_at ('' = never), ttl_ms ('' = none).
_PUT = """
if ARGV[1] == '1' then
    local cur = redis.call('HMGET', KEYS[1], 'value', 'expires_at')
    if cur[1] and (cur[2] == '' or tonumber(cur[2]) > tonumber(ARGV[3])) then return {cur[1]} end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'expires_at', ARGV[4])
if ARGV[5] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return {}
"""

# Shared head of the scripts that write a record: drops the record (KEYS[1]) from its tags' sets.
# ARGV: record id, `tagged:<collection>:` and `tagged-expiry:<collection>:` prefixes.
_UNTAG = """
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 2) == 't:' then
        local tag = string.sub(field, 3)
        redis.call('ZREM', ARGV[2] .. tag, ARGV[1])
        redis.call('ZREM', ARGV[3] .. tag, ARGV[1])
    end
end
redis.call('DEL', KEYS[1])
"""

_DELETE_RECORD = _UNTAG

# Extra ARGV: value, at, expires_at ('' = never), now, ttl_ms ('' = none), then the tags. Each
# tag's sets first lose (a hundred at most) entries of records expired by now, then live as long
# as their longest-lived record: forever once one has no end of life.
_PUT_RECORD = (
    _UNTAG
    + """
local expires_at, ttl = ARGV[6], ARGV[8]
local fields = {'value', ARGV[4], 'expires_at', expires_at}
for i = 9, #ARGV do
    table.insert(fields, 't:' .. ARGV[i])
    table.insert(fields, '1')
end
redis.call('HSET', KEYS[1], unpack(fields))
if ttl ~= '' then redis.call('PEXPIRE', KEYS[1], ttl) end
for i = 9, #ARGV do
    local tagged, expiring = ARGV[2] .. ARGV[i], ARGV[3] .. ARGV[i]
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', expiring, '-inf', ARGV[7], 'LIMIT', 0, 100)) do
        redis.call('ZREM', tagged, id)
        redis.call('ZREM', expiring, id)
    end
    local before = redis.call('PTTL', tagged)
    redis.call('ZADD', tagged, ARGV[5], ARGV[1])
    if ttl == '' then
        redis.call('ZREM', expiring, ARGV[1])
        redis.call('PERSIST', tagged)
    else
        redis.call('ZADD', expiring, expires_at, ARGV[1])
        if before ~= -1 then redis.call('PEXPIRE', tagged, math.max(before, tonumber(ttl))) end
    end
    local left = redis.call('PTTL', tagged)
    if left > 0 then redis.call('PEXPIRE', expiring, left) else redis.call('PERSIST', expiring) end
end
"""
)

# KEYS: tagged. ARGV: record key prefix, tag, newest score ('(until' or '+inf'), oldest (since
# or '-inf'), now, limit. Reads only: entries of expired, deleted or retagged records are
# skipped (their record is gone, expired, or no longer has the tag); writes drop them.
_RECORDS = """
local found, offset, limit = {}, 0, tonumber(ARGV[6])
while #found < 2 * limit do
    local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[4], 'LIMIT', offset, limit)
    if #ids == 0 then break end
    offset = offset + #ids
    for _, id in ipairs(ids) do
        local f = redis.call('HMGET', ARGV[1] .. id, 'value', 'expires_at', 't:' .. ARGV[2])
        if f[1] and f[3] and (f[2] == '' or tonumber(f[2]) > tonumber(ARGV[5])) then
            table.insert(found, id)
            table.insert(found, f[1])
            if #found == 2 * limit then break end
        end
    end
end
return found
"""

# ARGV: cutoff, now, unique member, ttl_ms.
_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCARD', KEYS[1])
"""


def _ms(seconds: float) -> int:
    """Redis' own expiry for something logically valid `seconds`, padded by the grace period."""
    return int((seconds + _GRACE_SECONDS) * 1000)


def _ts(value: float) -> str:
    """Render a timestamp exactly, since Lua would print numbers with only 14 digits."""
    return repr(float(value))


class RedisStore:
    """Store backed by Redis; one instance is thread-safe and reconnects after a fork."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock = time.time,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        """Use `client`, which must decode responses to str."""
        check_positive("retention_seconds", retention_seconds)
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._retention = retention_seconds
        self._ready, self._leased = prefix + "ready", prefix + "leased"
        self._scheduled, self._abandoned_key = prefix + "scheduled", prefix + "abandoned"
        self._wake, self._workers = prefix + "wake", prefix + "workers"
        self._store_job = client.register_script(_STORE_JOB)
        self._cancel = client.register_script(_CANCEL)
        self._reschedule = client.register_script(_RESCHEDULE)
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._abandon = client.register_script(_ABANDON)
        self._extend = client.register_script(_EXTEND)
        self._retry_later = client.register_script(_RETRY_LATER)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._release = client.register_script(_RELEASE)
        self._put = client.register_script(_PUT)
        self._hit = client.register_script(_HIT)
        self._migrate = client.register_script(_MIGRATE)
        self._oldest_waiting = client.register_script(_OLDEST_WAITING)
        self._put_record = client.register_script(_PUT_RECORD)
        self._delete_record = client.register_script(_DELETE_RECORD)
        self._records = client.register_script(_RECORDS)
        # Every RedisError, not only lost connections: MISCONF, OOM and READONLY refuse writes.
        self._health = Health("redis", (RedisError,), probe=lambda: self.ping())

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock = time.time,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> RedisStore:
        """Connect lazily to the server a URL names; `?prefix=` sets the key prefix."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefix = dict(query).get("prefix", DEFAULT_PREFIX)
        rest = urlencode([(name, value) for name, value in query if name != "prefix"])
        client = redis.Redis.from_url(
            urlunsplit(parts._replace(query=rest)),
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 2),
        )
        return cls(client, prefix=prefix, clock=clock, retention_seconds=retention_seconds)

    def migrate(self) -> None:
        """Bring the store to `STORE_VERSION` in one script, so instances starting at once
        migrate it once; a store of a newer format is left untouched (`StoreTooNew`)."""
        keys = [self._prefix + "version", self._ready, self._leased, self._prefix + "seq"]
        check_version(int(self._run(self._migrate, keys, [STORE_VERSION, self._job_key("")])))

    def _job_key(self, event_id: str) -> str:
        """Name the hash holding one job."""
        return f"{self._prefix}job:{event_id}"

    def _run(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """Run one registered script (each writes), reporting engine failures uniformly."""
        with self._health.guard(write=True):
            return script(keys=keys, args=args)

    def accept(
        self, event_id: str, kind: str, payload: str, max_backlog: int | None = None
    ) -> bool:
        """Queue a job due now unless the id is live or its dedupe marker is within the
        retention."""
        return self._store(event_id, kind, payload, None, max_backlog)

    def schedule(self, event_id: str, kind: str, payload: str, due_at: float) -> bool:
        """Queue a job in `scheduled` (or `ready`, when due) unless the id is known."""
        return self._store(event_id, kind, payload, due_at, None)

    def _store(self, event_id: str, kind: str, payload: str, due_at: float | None,
               max_backlog: int | None) -> bool:
        """Store one job (due now when `due_at` is None) in one script, which rings when it is
        due now or sooner than every other."""
        now = self._clock()
        due = now if due_at is None else max(due_at, now)
        keys = [
            f"{self._prefix}seen:{event_id}",
            self._job_key(event_id),
            self._ready,
            self._abandoned_key,
            self._leased,
            self._wake,
            self._scheduled,
        ]
        args: list[str | int] = [
            event_id, kind, payload, _ts(now), _ts(now - self._retention),
            _ms(due - now + self._retention), "" if max_backlog is None else str(max_backlog),
            _MAX_WAKEUPS, _ts(due)]
        outcome = self._run(self._store_job, keys, args)
        if outcome == -1:
            raise BacklogFull(max_backlog)
        return outcome == 1

    def cancel(self, event_id: str) -> bool:
        """Drop an unfinished job from every set; its `seen` marker keeps deduping."""
        keys = [self._job_key(event_id), self._ready, self._leased, self._scheduled]
        return self._run(self._cancel, keys, [event_id]) == 1

    def reschedule(self, event_id: str, due_at: float) -> bool:
        """Move an unfinished job to its new due time, owned by nobody, in one script."""
        now = self._clock()
        due = max(due_at, now)
        keys = [self._job_key(event_id), self._ready, self._leased, self._scheduled,
                self._wake, f"{self._prefix}seen:{event_id}"]
        args: list[str | int] = [event_id, _ts(due), _ts(now), _MAX_WAKEUPS,
                                 _ms(due - now + self._retention)]
        return self._run(self._reschedule, keys, args) == 1

    def seconds_until_due(self) -> float | None:
        """0 with a ready job, else the earliest of the leased and scheduled ones, in one
        atomic read."""
        with self._health.guard(write=False):
            pipe = self._client.pipeline(transaction=True)
            pipe.zcard(self._ready)
            pipe.zrange(self._leased, 0, 0, withscores=True)
            pipe.zrange(self._scheduled, 0, 0, withscores=True)
            ready, *heads = pipe.execute()
        if ready:
            return 0.0
        times = [float(head[0][1]) for head in heads if head]
        return max(0.0, min(times) - self._clock()) if times else None

    def wait_for_work(self, timeout: float) -> bool:
        """Block on the wake list (BLPOP) on a pooled connection of this thread's own, for at
        most `_LONGEST_WAIT` (a longer block would outlast the socket's timeout)."""
        if timeout <= 0:
            return False  # to Redis, a timeout of 0 is forever
        with self._health.guard(write=False):
            rang = self._client.blpop([self._wake], timeout=min(timeout, _LONGEST_WAIT))
        return rang is not None

    def claim(self, owner: str, lease_seconds: float) -> Job | None:
        """Requeue expired leases, then lease the oldest ready job."""
        check_owner(owner)
        check_positive("lease_seconds", lease_seconds)
        now = self._clock()
        args = [_ts(now), _ts(now + lease_seconds), owner, self._job_key("")]
        keys = [self._ready, self._leased, self._released_key(owner), self._scheduled]
        found = self._run(self._claim, keys, args)
        if found is None:
            return None
        event_id, kind, payload, attempts, accepted_at, due_at = found
        return Job(event_id, kind, payload, int(attempts), float(accepted_at), float(due_at))

    def _held(self, event_id: str) -> list[str]:
        """KEYS shared by the scripts acting on a job its owner holds."""
        return [self._job_key(event_id), self._ready, self._leased]

    def complete(self, event_id: str, owner: str) -> None:
        """Drop the job; its `seen` marker keeps deduping until the retention ends."""
        self._run(self._complete, self._held(event_id), [event_id, owner])

    def abandon(self, event_id: str, owner: str, error: str) -> None:
        """Park the job with its error, listed in `abandoned` until the retention ends."""
        now = self._clock()
        keys = [*self._held(event_id), self._abandoned_key]
        args = [event_id, owner, error, _ts(now), _ts(now - self._retention)]
        self._run(self._abandon, keys, [*args, _ms(self._retention)])

    def extend(self, event_id: str, owner: str, lease_seconds: float) -> bool:
        """Move the lease end out while `owner` is still the last claimer."""
        check_positive("lease_seconds", lease_seconds)
        args = [event_id, owner, _ts(self._clock() + lease_seconds)]
        return self._run(self._extend, self._held(event_id), args) == 1

    def retry_later(self, event_id: str, owner: str, delay_seconds: float) -> None:
        """Lease the job to nobody until the delay ends."""
        check_positive("delay_seconds", delay_seconds)
        now = self._clock()
        args: list[str | int] = [event_id, owner, _ts(now + delay_seconds), _ts(now),
                                 _MAX_WAKEUPS]
        self._run(self._retry_later, [*self._held(event_id), self._scheduled, self._wake], args)

    def _released_key(self, owner: str) -> str:
        """Name the marker of an owner whose process died."""
        return f"{self._prefix}released:{owner}"

    def heartbeat(self, owner: str, ttl_seconds: float) -> None:
        """Score the owner in `workers` by its end of life, unless it was released."""
        check_owner(owner)
        check_positive("ttl_seconds", ttl_seconds)
        now = self._clock()
        self._run(self._heartbeat, [self._workers, self._released_key(owner)],
                  [owner, _ts(now + ttl_seconds), _ts(now)])

    def live_workers(self) -> int:
        """Count the owners in `workers` whose end of life is still ahead."""
        with self._health.guard(write=False):
            return int(self._client.zcount(self._workers, f"({_ts(self._clock())}", "+inf"))

    def release(self, owner: str) -> int:
        """Mark the owner released and requeue the leased jobs its name is on, atomically."""
        check_owner(owner)
        keys = [self._ready, self._leased, self._workers, self._released_key(owner), self._wake]
        args: list[str | int] = [owner, self._job_key(""), int(RELEASED_OWNER_SECONDS * 1000),
                                 _MAX_WAKEUPS]
        return int(self._run(self._release, keys, args))

    def backlog(self) -> int:
        """Count ready, leased and scheduled-but-due jobs in one atomic read."""
        with self._health.guard(write=False):
            pipe = self._client.pipeline(transaction=True)
            pipe.zcard(self._ready)
            pipe.zcard(self._leased)
            pipe.zcount(self._scheduled, "-inf", _ts(self._clock()))
            counts = pipe.execute()
        return sum(int(count) for count in counts)

    def oldest_waiting(self) -> float | None:
        """The earliest due time among the ready queue's head, the leased jobs and the
        scheduled ones now due."""
        with self._health.guard(write=False):
            found = self._oldest_waiting(keys=[self._ready, self._leased, self._scheduled],
                                         args=[self._job_key(""), _ts(self._clock())])
        return None if found is None else float(found)

    def scheduled(self) -> int:
        """Count the scheduled jobs whose due time is still ahead."""
        with self._health.guard(write=False):
            return int(self._client.zcount(self._scheduled, f"({_ts(self._clock())}", "+inf"))

    def abandoned(self, limit: int = 100) -> list[AbandonedJob]:
        """List abandoned jobs within the retention, most recently due first."""
        cutoff = f"({_ts(self._clock() - self._retention)}"
        fields = ("kind", "payload", "attempts", "accepted_at", "due_at", "error", "finished_at")
        with self._health.guard(write=False):
            ids: list[str] = cast(list[str], self._client.zrevrangebyscore(
                self._abandoned_key, "+inf", cutoff, start=0, num=limit
            ))
            pipe = self._client.pipeline(transaction=False)
            for event_id in ids:
                pipe.hmget(self._job_key(event_id), fields)
            rows = pipe.execute()
        return [
            AbandonedJob(
                Job(event_id, kind, payload, int(attempts), float(accepted_at), float(due_at)),
                error,
                float(finished_at),
            )
            for event_id, (kind, payload, attempts, accepted_at, due_at, error, finished_at)
            in zip(ids, rows, strict=True)
            if kind is not None
        ]

    def _fact_key(self, key: str) -> str:
        """Name the hash holding one fact."""
        return f"{self._prefix}fact:{key}"

    def _store_fact(
        self, key: str, value: str, ttl_seconds: float | None, only_if_absent: bool
    ) -> str | None:
        """Write a fact with its logical expiry; return the live value that blocked the write."""
        now = self._clock()
        if ttl_seconds is None:
            expires_at, ttl_ms = "", ""
        else:
            check_positive("ttl_seconds", ttl_seconds)
            expires_at, ttl_ms = _ts(now + ttl_seconds), str(_ms(ttl_seconds))
        args = ["1" if only_if_absent else "0", value, _ts(now), expires_at, ttl_ms]
        existing = self._run(self._put, [self._fact_key(key)], args)
        return existing[0] if existing else None

    def put_if_absent(self, key: str, value: str, ttl_seconds: float | None = None) -> str | None:
        """Set the fact unless a live one exists, whose value is then returned."""
        return self._store_fact(key, value, ttl_seconds, only_if_absent=True)

    def get(self, key: str) -> str | None:
        """Read a fact unless its logical expiry has passed."""
        with self._health.guard(write=False):
            value, expires_at = cast(list[str | None], self._client.hmget(
                self._fact_key(key), ["value", "expires_at"]))
        if value is None or (expires_at and float(expires_at) <= self._clock()):
            return None
        return value

    def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        """Overwrite the fact and its expiry."""
        self._store_fact(key, value, ttl_seconds, only_if_absent=False)

    def delete(self, key: str) -> None:
        """Forget a fact."""
        with self._health.guard(write=True):
            self._client.delete(self._fact_key(key))

    def hit(self, key: str, window_seconds: float) -> int:
        """Record a hit in the key's sorted set and count those newer than the window start."""
        check_positive("window_seconds", window_seconds)
        now = self._clock()
        args: list[str | int] = [
            _ts(now - window_seconds), _ts(now), uuid.uuid4().hex, _ms(window_seconds)]
        return int(self._run(self._hit, [f"{self._prefix}hits:{key}"], args))

    def _record_key(self, collection: str, record_id: str) -> str:
        """Name the hash holding one record (a collection has no ':', so no two names meet)."""
        check_collection(collection)
        return f"{self._prefix}record:{collection}:{record_id}"

    def _untag_args(self, collection: str, record_id: str) -> list[str]:
        """ARGV shared by the scripts that write a record: its id and its tags' set prefixes."""
        return [record_id, f"{self._prefix}tagged:{collection}:",
                f"{self._prefix}tagged-expiry:{collection}:"]

    def put_record(self, collection: str, record_id: str, value: str, *, at: float,
                   tags: Sequence[str] = (), expires_at: float | None = None) -> None:
        """Replace the record's hash and its entries under its tags, in one script."""
        key = self._record_key(collection, record_id)
        tags = unique_tags(tags)
        now = self._clock()
        if expires_at is not None and expires_at <= now:
            self.delete_record(collection, record_id)  # already gone: nothing to keep
            return
        ttl_ms = "" if expires_at is None else str(_ms(expires_at - now))
        args = [*self._untag_args(collection, record_id), value, _ts(at),
                "" if expires_at is None else _ts(expires_at), _ts(now), ttl_ms, *tags]
        self._run(self._put_record, [key], args)

    def record(self, collection: str, record_id: str) -> str | None:
        """Read a record unless its end of life has passed."""
        key = self._record_key(collection, record_id)
        with self._health.guard(write=False):
            value, expires_at = cast(list[str | None], self._client.hmget(
                key, ["value", "expires_at"]))
        if value is None or (expires_at and float(expires_at) <= self._clock()):
            return None
        return value

    def records(self, collection: str, tag: str, *, since: float | None = None,
                until: float | None = None, limit: int = 100) -> list[tuple[str, str]]:
        """Walk the tag's set newest first in one script, skipping what is no longer live."""
        check_collection(collection)
        check_limit(limit)
        args: list[str | int] = [
            f"{self._prefix}record:{collection}:", tag,
            "+inf" if until is None else f"({_ts(until)}",
            "-inf" if since is None else _ts(since), _ts(self._clock()), limit]
        with self._health.guard(write=False):
            found = self._records(keys=[f"{self._prefix}tagged:{collection}:{tag}"], args=args)
        return list(zip(found[::2], found[1::2], strict=True))

    def delete_record(self, collection: str, record_id: str) -> None:
        """Drop the record's hash and its entries under its tags, in one script."""
        key = self._record_key(collection, record_id)
        self._run(self._delete_record, [key], self._untag_args(collection, record_id))

    def ping(self) -> None:
        """Write a probe: PING alone succeeds on a server that refuses writes (MISCONF, OOM)."""
        with self._health.guard(write=True):
            self._client.set(self._prefix + "health:ping", _ts(self._clock()), px=_ms(0))

    def persistence(self) -> Persistence:
        """Read ``appendonly`` and ``save``; durable None when the server forbids CONFIG."""
        try:
            with self._health.guard(write=False):
                config = {name: self._client.config_get(name).get(name, "")
                          for name in ("appendonly", "appendfsync", "save")}
        except StoreUnavailable as error:
            if not isinstance(error.__cause__, ResponseError):
                raise
            return Persistence(None, "Redis would not show its persistence settings "
                                     f"(CONFIG GET: {error.__cause__})")
        if config.get("appendonly") == "yes":
            return Persistence(True, f"Redis AOF on (appendfsync {config['appendfsync']})")
        if config.get("save"):
            return Persistence(True, f"Redis RDB snapshots only (save {config['save']!r})",
                               "a crash loses what was accepted since the last snapshot")
        return Persistence(False, "Redis persists nothing (appendonly no, save ''): a restart "
                                  "loses every accepted event and dedupe record")

    def close(self) -> None:
        """Disconnect the client's pool."""
        self._client.close()
