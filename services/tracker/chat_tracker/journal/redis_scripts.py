"""The Lua scripts that change the room in Redis: each one step, atomic, so no two writers interleave.

Never ``INCR`` then ``XADD``: two replicas would take seqs 7 and 8 and could
complete 8 first. ``APPEND`` takes the next seq and adds the entry ``<seq>-0`` in
one script, so the stream holds the events in seq order with no gap, and a writer
whose idea of the room is stale (another epoch: Redis restarted empty) is refused.

A name is claimed in the same step as its join, and released in the same step as
the leave, so of many replicas claiming one name at once exactly one join is
logged, and a leave is logged once even when several replicas reap a dead one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from chat_protocol import name_key
from chat_tracker.core.events import BAN, JOIN, LEAVE, MESSAGE, MUTE, UNBAN, Event
from chat_tracker.core.room.requests import RECENT_IDS
from chat_tracker.journal.redis_keys import Keys, body_of

# How long a member's message ids outlive its last message: far longer than a resume's grace or a write
# held back on a replica cut off from Redis (reaped, hence fenced, within seconds); then Redis forgets them.
IDS_TTL_MS = 3_600_000

# KEYS: room, events, names, roster, moderation, replicas, applied
# ARGV: epoch, replica, batch number, the message-ids key prefix (ids:<epoch>:), then 4 per operation:
# op, key, value, body
#   E: an event (body)                     -> its seq
#   I: a message with an id (value) from member key: logged unless its ids hash (prefix .. key) holds that id
#      -> its seq, or {seq, time} of the one logged first (the last RECENT_IDS ids per member are kept)
#   J: a join: claim names[key] = value      -> its seq, or 0 if the name is held
#   T: a join that takes the name over (a room besides the default: the default room made the name the joiner's)
#      -> its seq; another member holding it there leaves first (``lost``: that connection is over)
#   L: a leave: release names[key] if value  -> its seq, or 0 if not its holder (taken over, reaped); its ids go
#   M: a moderation event (kept in the list)  -> its seq
#   O: names[key] = value if held by the same member (a resume), its resume count (body's g) into
#      the roster, control entry -> 1 or 0
#   A: a control entry (body)                 -> 1
# Errors: "EPOCH <epoch>" (the room is another one), "FENCED" (this replica was reaped).
# "DUP" instead of results: this batch number was applied already (its answer was lost on the way).
APPEND = (
    f"local ids_kept, ids_ttl = {RECENT_IDS}, {IDS_TTL_MS}\n"
    """
local room, events, names, roster, moderation, replicas = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local epoch = redis.call('HGET', room, 'epoch')
if epoch ~= ARGV[1] then
  return redis.error_reply('EPOCH ' .. tostring(epoch))
end
if redis.call('HEXISTS', replicas, ARGV[2]) == 0 then
  return redis.error_reply('FENCED')
end
local applied = tonumber(redis.call('HGET', KEYS[7], ARGV[2]) or '0')
if applied >= tonumber(ARGV[3]) then
  return 'DUP'
end
redis.call('HSET', KEYS[7], ARGV[2], ARGV[3])
local now = redis.call('TIME')
local t = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
local seq = tonumber(redis.call('HGET', room, 'seq'))
local results = {}
local function add(body)
  seq = seq + 1
  redis.call('XADD', events, seq .. '-0', 't', t, 'e', body)
  return seq
end
-- A member's ids: 'i:<id>' -> '<seq> <time>', and a ring of ids_kept slots 's:<n>' -> the id in it ('#' counts).
local function logged_once(ids, msg_id, body)
  local first = redis.call('HGET', ids, 'i:' .. msg_id)
  if first then
    local first_seq, first_t = string.match(first, '^(%d+) (.+)$')
    return {tonumber(first_seq), first_t}
  end
  local result = add(body)
  local slot = 's:' .. (redis.call('HINCRBY', ids, '#', 1) % ids_kept)
  local evicted = redis.call('HGET', ids, slot)
  if evicted then redis.call('HDEL', ids, 'i:' .. evicted) end
  redis.call('HSET', ids, slot, msg_id, 'i:' .. msg_id, result .. ' ' .. t)
  redis.call('PEXPIRE', ids, ids_ttl)
  return result
end
for i = 5, #ARGV, 4 do
  local op, key, value, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local result = 0
  if op == 'E' then
    result = add(body)
  elseif op == 'I' then
    result = logged_once(ARGV[4] .. key, value, body)
  elseif op == 'J' then
    if redis.call('HEXISTS', names, key) == 0 then
      redis.call('HSET', names, key, value)
      result = add(body)
      local id = string.match(value, '^(%d+):')
      local name = cjson.decode(body)['n']
      redis.call('HSET', roster, id, cjson.encode({name = name, since = result, joined = tonumber(t)}))
    end
  elseif op == 'T' then
    local held = redis.call('HGET', names, key)
    if held and held ~= value then
      local old = string.match(held, '^(%d+):')
      local entry = redis.call('HGET', roster, old)
      local was = entry and cjson.decode(entry)['name'] or cjson.decode(body)['n']
      redis.call('HDEL', roster, old)
      redis.call('DEL', ARGV[4] .. old)
      add(cjson.encode({k = 'leave', n = was, x = 'lost', o = tonumber(old)}))
    end
    redis.call('HSET', names, key, value)
    result = add(body)
    local id = string.match(value, '^(%d+):')
    redis.call('HSET', roster, id, cjson.encode({name = cjson.decode(body)['n'], since = result, joined = tonumber(t)}))
  elseif op == 'L' then
    if redis.call('HGET', names, key) == value then
      redis.call('HDEL', names, key)
      local id = string.match(value, '^(%d+):')
      redis.call('HDEL', roster, id)
      redis.call('DEL', ARGV[4] .. id)
      result = add(body)
    end
  elseif op == 'M' then
    result = add(body)
    redis.call('RPUSH', moderation, cjson.encode({seq = result, t = t, e = body}))
  elseif op == 'O' then
    local held = redis.call('HGET', names, key)
    local id = string.match(value, '^(%d+):')
    if held and string.match(held, '^(%d+):') == id then
      redis.call('HSET', names, key, value)
      local entry = redis.call('HGET', roster, id)
      if entry then
        local member = cjson.decode(entry)
        member['resumes'] = cjson.decode(body)['g']
        redis.call('HSET', roster, id, cjson.encode(member))
      end
      redis.call('XADD', events, seq .. '-*', 't', t, 'e', body)
      result = 1
    end
  elseif op == 'A' then
    redis.call('XADD', events, seq .. '-*', 't', t, 'e', body)
    result = 1
  end
  results[#results + 1] = result
end
redis.call('HSET', room, 'seq', seq)
return results
"""
)

# Lua, with ``floor`` set and KEYS[2] the stream, KEYS[3] ``archived``: raises ``floor`` above the stream's last
# entry and the archiver's last seq (chat.log's), so a room opened anew never reuses a seq its log holds.
ABOVE_ITS_LOG = """
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #newest > 0 then
  local last = tonumber(string.match(newest[1][1], '^(%d+)-'))
  if last > floor then floor = last end
end
local archived = tonumber(redis.call('GET', KEYS[3]) or '0')
if archived > floor then floor = archived end
"""

# KEYS: room, events, archived; ARGV: a new epoch, the seq to start above, a new token key (hex), now.
# The room as it is, or a new one when Redis has none (a new epoch): {epoch, the seq it started after, key,
# created 0/1}. A new room's seqs start above the caller's floor, the stream's last entry and what the archiver
# recorded (chat.log's last seq), so chat.log never holds one seq twice. A replica late to the new room reads it
# from that start, so whoever joined it before is in its room too (a room opened without ``start``: from its seq).
OPEN = (
    """
local room = KEYS[1]
local epoch = redis.call('HGET', room, 'epoch')
if epoch then
  local start = redis.call('HGET', room, 'start') or redis.call('HGET', room, 'seq')
  return {epoch, start, redis.call('HGET', room, 'key'), 0}
end
local floor = tonumber(ARGV[2])
"""
    + ABOVE_ITS_LOG
    + """redis.call('HSET', room, 'epoch', ARGV[1], 'seq', floor, 'start', floor, 'key', ARGV[3], 'created', ARGV[4])
return {ARGV[1], tostring(floor), ARGV[3], 1}
"""
)

# KEYS: room, roster, names, moderation, events; ARGV: none.
# Everything a replica needs to join the room at one seq: {epoch, seq, roster, names, moderation, the stream's
# last entry ID}. Reading starts after that ID: the control entries of that seq (take-overs, "away") are in the
# roster already, and read again after a resume here they would hand the member back to its old replica.
SNAPSHOT = """
local newest = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
return {
  redis.call('HGET', KEYS[1], 'epoch') or '',
  redis.call('HGET', KEYS[1], 'seq') or '0',
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
  redis.call('LRANGE', KEYS[4], 0, -1),
  #newest > 0 and newest[1][1] or '',
}
"""

# KEYS: room, moderation, events; ARGV: epoch, the moderation list's length the seed was made against, the
# control entry's body, then the seed's list items. The archiver gives a room Redis started empty the mutes
# and bans in force it folded from chat.log: once per epoch (the room's ``seeded``), ahead of the room's own
# (so an unban of the new room comes after, and wins), and as a control entry for the replicas running.
# 1 seeded, 0 seeded already, -1 another epoch, -2 the list changed meanwhile (the archiver reads it again).
SEED = """
local room, moderation, events = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HGET', room, 'epoch') ~= ARGV[1] then return -1 end
if redis.call('HEXISTS', room, 'seeded') == 1 then return 0 end
if redis.call('LLEN', moderation) ~= tonumber(ARGV[2]) then return -2 end
redis.call('HSET', room, 'seeded', '1')
if #ARGV < 4 then return 1 end
for i = #ARGV, 4, -1 do
  redis.call('LPUSH', moderation, ARGV[i])
end
local now = redis.call('TIME')
local t = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
local seq = redis.call('HGET', room, 'seq')
local sub = 1  -- never <seq>-0: that ID is the room event <seq>'s
local newest = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)
if #newest > 0 then
  local last_seq, last_sub = string.match(newest[1][1], '^(%d+)-(%d+)$')
  if last_seq == seq then sub = tonumber(last_sub) + 1 end
end
redis.call('XADD', events, seq .. '-' .. sub, 't', t, 'e', ARGV[3])
return 1
"""

# KEYS: room, events, archived, replicas (of a room besides the default, or a conversation); ARGV: the default
# room's epoch, replica, now. The room as it is in this epoch, or opened in it after its stream's last entry and
# what the archiver recorded; either way ``replica`` registered there (its appends are fenced without).
# {seq, created 0/1}
ROOM_OPEN = (
    """
local room = KEYS[1]
redis.call('HSET', KEYS[4], ARGV[2], '1')
if redis.call('HGET', room, 'epoch') == ARGV[1] then
  return {redis.call('HGET', room, 'seq'), 0}
end
local floor = tonumber(redis.call('HGET', room, 'seq') or '0')
"""
    + ABOVE_ITS_LOG
    + """redis.call('HSET', room, 'epoch', ARGV[1], 'seq', floor, 'created', ARGV[3])
return {tostring(floor), 1}
"""
)

# KEYS: replicas, next-replica; ARGV: info (JSON), ttl ms, a replica number to keep (or '').
# A replica number, registered and alive: the one asked for while it is still registered, else a new one.
REGISTER = """
local replica = ARGV[3]
if replica == '' or redis.call('HEXISTS', KEYS[1], replica) == 0 then
  replica = tostring(redis.call('INCR', KEYS[2]))
end
redis.call('HSET', KEYS[1], replica, ARGV[1])
redis.call('SET', ARGV[4] .. replica, '1', 'PX', ARGV[2])
return replica
"""

# KEYS: replicas, alive:<replica>; ARGV: replica, ttl ms. 1 while registered, 0 once reaped (fenced).
HEARTBEAT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"""

# KEYS: room, events, names, roster, replicas, alive:<dead>; ARGV: epoch, dead replica, reason.
# The members of a dead replica leave (one leave each, ever); -1 if it is alive after all. In another room or a
# conversation the alive key is left out (another slot): the default room's REAP fenced the replica already.
REAP = """
local room, events, names, roster, replicas = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if redis.call('HGET', room, 'epoch') ~= ARGV[1] then return -2 end
if KEYS[6] and redis.call('EXISTS', KEYS[6]) == 1 then return -1 end
local now = redis.call('TIME')
local t = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
local seq = tonumber(redis.call('HGET', room, 'seq'))
local held = redis.call('HGETALL', names)
local suffix = ':' .. ARGV[2]
local count = 0
for i = 1, #held, 2 do
  local key, value = held[i], held[i + 1]
  if string.sub(value, -#suffix) == suffix then
    local id = string.match(value, '^(%d+):')
    local entry = redis.call('HGET', roster, id)
    local name = entry and cjson.decode(entry)['name'] or key
    redis.call('HDEL', names, key)
    redis.call('HDEL', roster, id)
    seq = seq + 1
    local body = cjson.encode({k = 'leave', n = name, x = ARGV[3], o = tonumber(id)})
    redis.call('XADD', events, seq .. '-0', 't', t, 'e', body)
    count = count + 1
  end
end
redis.call('HSET', room, 'seq', seq)
redis.call('HDEL', replicas, ARGV[2])
return count
"""


@dataclass(slots=True)
class Request:
    """One operation of an ``APPEND`` call (its four arguments), and the event it asks for, if any."""

    op: str  # E, J, L, M (events), O, A (control entries)
    key: str
    value: str
    body: str
    event: Event | None = None  # for events: what was asked (its seq and time come from Redis)


def event_request(event: Event, replica: int, join_op: str = "J") -> Request:
    """The operation that logs ``event``: a member's join or leave also claims or releases its name.

    ``join_op`` ``T`` (a room besides the default) takes a name over from a hold still there (see ``APPEND``).
    """
    body = body_of(event)
    if (event.kind is JOIN or event.kind is LEAVE) and event.origin is not None:
        op = join_op if event.kind is JOIN else "L"
        return Request(op, name_key(event.name), f"{event.origin}:{replica}", body, event)
    if event.kind is MUTE or event.kind is BAN or event.kind is UNBAN:
        return Request("M", "", "", body, event)
    if event.kind is MESSAGE and event.msg_id is not None and event.origin is not None:
        return Request("I", str(event.origin), event.msg_id, body, event)
    return Request("E", "", "", body, event)


def owner_request(name: str, member_id: int, replica: int, resumes: int) -> Request:
    """``replica`` now serves ``member_id`` (its ``resumes``-th resume): a control entry, and the roster's count."""
    body = f'{{"c":"owner","o":{member_id},"r":{replica},"g":{resumes}}}'
    return Request("O", name_key(name), f"{member_id}:{replica}", body)


def away_request(member_id: int, replica: int) -> Request:
    """``member_id`` lost its connection on ``replica``: a control entry."""
    return Request("A", "", "", f'{{"c":"away","o":{member_id},"r":{replica}}}')


def append_call(
    keys: Keys, epoch: str, replica: int, number: int, batch: Sequence[Request]
) -> tuple[list[str], list[str | int]]:
    """The keys and arguments of the ``APPEND`` call numbered ``number`` for ``batch``."""
    names = [keys.room, keys.events, keys.names, keys.roster, keys.moderation, keys.replicas, keys.applied]
    args: list[str | int] = [epoch, replica, number, keys.message_ids(epoch)]
    for request in batch:
        args += [request.op, request.key, request.value, request.body]
    return names, args


def first_logged(event: Event, result: Any) -> Event | None:
    """The message ``event`` resends, as it was logged first, if ``result`` says it was (an ``I`` answer's pair)."""
    if not isinstance(result, list):
        return None
    seq, logged_at = result
    return replace(event, seq=int(seq), time=float(logged_at))
