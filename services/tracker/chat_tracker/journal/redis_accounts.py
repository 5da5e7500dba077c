"""The accounts store in Redis (``--redis-url``): every replica, and ``chat-tracker accounts``, see one set.

The keys are listed in ``redis_keys.py``. Everything of one account is hash-tagged with
its name key, so each change to an account is one Lua script over its own keys, atomic
even on a Redis Cluster. The two keys that span accounts (the ``accounts`` set that
lists them, and ``device-token:<hash>`` that finds a device by its token) are written in
separate commands, in an order that leaves nothing wrong after a crash between two of
them: the set is added to before an account is made and removed from after it is gone
(a listed key without an account is skipped), and a token key is trusted only when the
device it names is still there with that token's hash.

A blocking client (``redis_client.sync_client``): the service layer calls these methods
through ``asyncio.to_thread``; a redis-py client is safe to share between those threads.
"""

from __future__ import annotations

import json
from typing import Any

from chat_protocol import name_key
from chat_tracker.core.accounts import DEFAULT_ROOM, Account, Device, Membership, ReadPosition, token_hash
from chat_tracker.errors import AccountExists, UnknownAccount
from chat_tracker.journal.redis_client import COMMAND, sync_client
from chat_tracker.journal.redis_keys import DEFAULT_PREFIX, Keys

# KEYS: account; ARGV: name, created, passphrase hash. '' once made, else the name already registered.
CREATE = """
local holder = redis.call('HGET', KEYS[1], 'name')
if holder then return holder end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'created', ARGV[2], 'passphrase_hash', ARGV[3])
return ''
"""
# KEYS: account; ARGV: field, value. 0 when there is no account.
SET_FIELD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
# KEYS: account, devices, seen, read, rooms. {0} without an account, else {1, the devices' JSON...}; all five go.
REMOVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local devices = redis.call('HVALS', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
table.insert(devices, 1, 1)
return devices
"""
# KEYS: account, devices, seen; ARGV: id, JSON, last seen. 0 without an account.
ADD_DEVICE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
"""
# KEYS: devices, seen; ARGV: id ('' for every device). The JSON of each device removed.
REMOVE_DEVICES = """
local gone = {}
if ARGV[1] == '' then
  gone = redis.call('HVALS', KEYS[1])
  redis.call('DEL', KEYS[1], KEYS[2])
else
  local device = redis.call('HGET', KEYS[1], ARGV[1])
  if device then
    gone = {device}
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
  end
end
return gone
"""
# KEYS: devices, seen; ARGV: id, now. Last seen only moves forward, and only for a device that is there.
TOUCH = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) > seen then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 1
"""
# KEYS: account, read; ARGV: room, seq. The position after (it never goes back); -1 without an account.
ADVANCE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local position = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local seq = tonumber(ARGV[2])
if seq > position then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  position = seq
end
return position
"""


def _device_json(device: Device) -> str:
    return json.dumps({"label": device.label, "created": device.created, "token_hash": device.token_hash})


def _device(key: str, device_id: str, stored: str, last_seen: str | None) -> Device:
    fields = json.loads(stored)
    created = float(fields["created"])
    return Device(
        id=device_id,
        account_key=key,
        label=str(fields["label"]),
        created=created,
        last_seen=created if last_seen is None else float(last_seen),
        token_hash=str(fields["token_hash"]),
    )


# KEYS: account, rooms, read; ARGV: room, seq, now. 1 if the membership began, 0 if kept, -1 without an account.
BEGIN_MEMBERSHIP = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3] .. ' ' .. ARGV[3]) == 0 then return 0 end
local position = redis.call('HGET', KEYS[3], ARGV[1])
if not position or tonumber(ARGV[2]) > tonumber(position) then redis.call('HSET', KEYS[3], ARGV[1], ARGV[2]) end
return 1
"""
# KEYS: rooms, read; ARGV: room. 1 if she was a member.
END_MEMBERSHIP = """
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
"""
# KEYS: rooms; ARGV: room, now. Last seen only moves forward, and only for a member.
MARK_SEEN = """
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then return 0 end
local since, seen = string.match(stored, '(%S+) (%S+)')
if tonumber(ARGV[2]) > tonumber(seen) then redis.call('HSET', KEYS[1], ARGV[1], since .. ' ' .. ARGV[2]) end
return 1
"""

# KEYS: devices, seen; ARGV: id, new token hash, now. The old token hash, or false if the device is gone.
ROTATE = """
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then return false end
local device = cjson.decode(stored)
local old = device.token_hash
device.token_hash = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(device))
local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[3]) > seen then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
return old
"""


class RedisAccounts:
    """``AccountStore`` in the Redis at ``url``, under ``prefix`` (the room's, ``--redis-prefix``)."""

    def __init__(self, url: str, password: str | None = None, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = sync_client(url, password, COMMAND)
        self._keys = Keys(prefix)
        self._scripts = {
            name: self._client.register_script(source)
            for name, source in (
                ("create", CREATE),
                ("set_field", SET_FIELD),
                ("remove", REMOVE),
                ("add_device", ADD_DEVICE),
                ("remove_devices", REMOVE_DEVICES),
                ("touch", TOUCH),
                ("advance", ADVANCE),
                ("begin_membership", BEGIN_MEMBERSHIP),
                ("end_membership", END_MEMBERSHIP),
                ("mark_seen", MARK_SEEN),
                ("rotate", ROTATE),
            )
        }

    def _run(self, script: str, keys: list[str], *args: str | int | float) -> Any:
        return self._scripts[script](keys=keys, args=list(args))

    def _account_keys(self, key: str) -> list[str]:
        k = self._keys
        return [k.account(key), k.account_devices(key), k.account_seen(key), k.account_read(key), k.account_rooms(key)]

    def create(self, account: Account) -> None:
        self._client.sadd(self._keys.accounts, account.key)  # first: a listed key without an account is skipped
        args = (account.name, repr(account.created), account.passphrase_hash)
        holder = self._run("create", [self._keys.account(account.key)], *args)
        if holder:
            raise AccountExists(account.name, str(holder))

    def get(self, name: str) -> Account | None:
        key = name_key(name)
        return self._account(key, self._client.hgetall(self._keys.account(key)))

    @staticmethod
    def _account(key: str, fields: dict[Any, Any]) -> Account | None:
        if not fields:
            return None
        return Account(
            name=fields["name"], key=key, created=float(fields["created"]), passphrase_hash=fields["passphrase_hash"]
        )

    def accounts(self) -> list[Account]:
        keys = sorted(str(key) for key in self._client.smembers(self._keys.accounts))  # str: decode_responses
        pipe = self._client.pipeline(transaction=False)  # the accounts sit in slots of their own
        for key in keys:
            pipe.hgetall(self._keys.account(key))
        found = (self._account(key, fields) for key, fields in zip(keys, pipe.execute(), strict=True))
        return [account for account in found if account is not None]

    def remove(self, name: str) -> None:
        key = name_key(name)
        answer = self._run("remove", self._account_keys(key))
        if not int(answer[0]):
            raise UnknownAccount(name)
        self._forget_tokens(answer[1:])
        self._client.srem(self._keys.accounts, key)

    def _forget_tokens(self, devices: list[str]) -> None:
        for stored in devices:
            self._client.delete(self._keys.device_token(json.loads(stored)["token_hash"]))

    def set_passphrase_hash(self, name: str, passphrase_hash: str) -> None:
        if not self._run("set_field", [self._keys.account(name_key(name))], "passphrase_hash", passphrase_hash):
            raise UnknownAccount(name)

    def add_device(self, device: Device) -> None:
        key = device.account_key
        keys = self._account_keys(key)[:3]
        if not self._run("add_device", keys, device.id, _device_json(device), repr(device.last_seen)):
            raise UnknownAccount(key)
        # After the device: a token key is only trusted when its device is there.
        self._client.set(self._keys.device_token(device.token_hash), f"{key} {device.id}")

    def devices(self, name: str) -> list[Device]:
        key = name_key(name)
        pipe = self._client.pipeline(transaction=True)  # one slot: a MULTI is allowed even on a cluster
        pipe.hgetall(self._keys.account_devices(key))
        pipe.hgetall(self._keys.account_seen(key))
        stored, seen = pipe.execute()
        found = [_device(key, device_id, fields, seen.get(device_id)) for device_id, fields in stored.items()]
        return sorted(found, key=lambda device: (device.created, device.id))

    def remove_device(self, name: str, device_id: str) -> bool:
        return self._remove_devices(name_key(name), device_id) > 0

    def remove_devices(self, name: str) -> int:
        return self._remove_devices(name_key(name), "")

    def _remove_devices(self, key: str, device_id: str) -> int:
        gone = self._run("remove_devices", [self._keys.account_devices(key), self._keys.account_seen(key)], device_id)
        self._forget_tokens(gone)
        return len(gone)

    def device_by_token(self, token: str) -> Device | None:
        hashed = token_hash(token)
        owner = self._client.get(self._keys.device_token(hashed))
        if owner is None:
            return None
        key, _, device_id = str(owner).partition(" ")
        device = next((d for d in self.devices(key) if d.id == device_id), None)
        return device if device is not None and device.token_hash == hashed else None

    def touch_device(self, name: str, device_id: str, now: float) -> None:
        key = name_key(name)
        self._run("touch", [self._keys.account_devices(key), self._keys.account_seen(key)], device_id, repr(now))

    def rotate_device(self, name: str, device_id: str, new_token_hash: str, now: float) -> bool:
        key, k = name_key(name), self._keys
        # The new token key first: a token key is trusted only when its device holds that hash, so a crash
        # between the two leaves a harmless key behind, never a device no token can find.
        self._client.set(k.device_token(new_token_hash), f"{key} {device_id}")
        old = self._run("rotate", [k.account_devices(key), k.account_seen(key)], device_id, new_token_hash, repr(now))
        if not old:
            self._client.delete(k.device_token(new_token_hash))
            return False
        self._client.delete(k.device_token(str(old)))
        return True

    def read_position(self, name: str, room: str = DEFAULT_ROOM) -> int:
        position = self._client.hget(self._keys.account_read(name_key(name)), room)
        return 0 if position is None else int(position)

    def read_positions(self, name: str) -> list[ReadPosition]:
        key = name_key(name)
        positions = self._client.hgetall(self._keys.account_read(key))
        return [ReadPosition(account_key=key, room=str(room), seq=int(positions[room])) for room in sorted(positions)]

    def advance_read_position(self, name: str, seq: int, room: str = DEFAULT_ROOM) -> int:
        key = name_key(name)
        position = int(self._run("advance", [self._keys.account(key), self._keys.account_read(key)], room, seq))
        if position < 0:
            raise UnknownAccount(name)
        return position

    def begin_membership(self, name: str, seq: int, now: float, room: str = DEFAULT_ROOM) -> bool:
        key, k = name_key(name), self._keys
        self._client.sadd(k.room_members(room), key)  # first: a listed key with no membership is skipped
        began = int(
            self._run(
                "begin_membership", [k.account(key), k.account_rooms(key), k.account_read(key)], room, seq, repr(now)
            )
        )
        if began < 0:
            raise UnknownAccount(name)
        return began > 0

    def membership(self, name: str, room: str = DEFAULT_ROOM) -> Membership | None:
        key = name_key(name)
        pipe = self._client.pipeline(transaction=True)  # one slot
        pipe.hget(self._keys.account_rooms(key), room)
        pipe.hget(self._keys.account(key), "name")
        stored, spelled = pipe.execute()
        if stored is None or spelled is None:
            return None
        since, _, seen = str(stored).partition(" ")
        return Membership(str(spelled), room, float(since), float(seen))

    def end_membership(self, name: str, room: str = DEFAULT_ROOM) -> bool:
        key, k = name_key(name), self._keys
        ended = int(self._run("end_membership", [k.account_rooms(key), k.account_read(key)], room))
        self._client.srem(k.room_members(room), key)  # after: never unlisted while still a member
        return ended > 0

    def memberships(self, room: str = DEFAULT_ROOM) -> list[Membership]:
        keys = sorted(str(key) for key in self._client.smembers(self._keys.room_members(room)))
        pipe = self._client.pipeline(transaction=False)  # the accounts sit in slots of their own
        for key in keys:
            pipe.hget(self._keys.account_rooms(key), room)
            pipe.hget(self._keys.account(key), "name")
        answers = pipe.execute()
        found: list[Membership] = []
        for stored, name in zip(answers[::2], answers[1::2], strict=True):
            if stored is not None and name is not None:  # a stale listing, or an account removed since
                since, _, seen = str(stored).partition(" ")
                found.append(Membership(str(name), room, float(since), float(seen)))
        return found

    def mark_seen(self, name: str, now: float, room: str = DEFAULT_ROOM) -> None:
        self._run("mark_seen", [self._keys.account_rooms(name_key(name))], room, repr(now))

    def close(self) -> None:
        self._client.close()
