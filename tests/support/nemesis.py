"""The nemesis (in Jepsen's sense): random fault schedules, drawn from a seed, so that a failing seed replays.

A schedule is a list of faults, each injected at one step and healed at a later one (a replica
restarted, SIGCONT, the partition removed, space freed, Redis started again), all healed before
the last step. ``draw(seed, kinds)`` makes it with ``random.Random(seed)`` alone: the same seed and
kinds give the same schedule on any machine, at the same steps. What the load does between the
steps (which message is in flight when a process dies) is the machine's timing, not the seed's.

Each fault holds resources (a replica slot, the archiver, Redis); two faults never hold the same
one at once, a fault that holds every resource (Redis wiped) has the cluster to itself, and at least
one replica slot stays untouched, so the members always have somewhere to resume. A resource rests
one step after its fault is healed before the next fault may take it.

Seeds: ``seeds()`` gives the short fixed set CI runs (about 20 s a schedule), ``RELIABILITY_FULL=1`` 100, and
``NEMESIS_SEED=N`` exactly seed N (the replay of a failure; ``replay_command`` names it).
The injectors and the load live in ``support.nemesis_cluster`` and ``support.nemesis_load``.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass

from support.campaign import FULL

STEP_SECONDS = 0.5  # the load runs this long between two steps of a schedule
STEPS = 24  # steps in a schedule: 12 s of load with faults
FAULT_RATE = 0.45  # the chance that a step tries to start a fault
CI_SEEDS = (3, 4, 6)  # between them, every kind of fault on replicas
SINGLE_CI_SEEDS = (4, 6)  # every kind of fault on one tracker
KEEP_IN_REDIS = (40, 400, 10_000)  # the load says about 100 events a second
FULL_SCHEDULES = 100
SLOTS = 3  # replica slots; the last runs in a network namespace, to be partitioned from Redis
NETNS_SLOT = SLOTS - 1

# kind -> (what it holds: "slot" = one replica slot, "netns" = the namespace's slot; its duration in steps)
KILL_REPLICA, FREEZE_REPLICA, PARTITION_REPLICA = "kill_replica", "freeze_replica", "partition_replica"
KILL_ARCHIVER, FREEZE_ARCHIVER, DISK_FULL = "kill_archiver", "freeze_archiver", "disk_full"
RESTART_REDIS, WIPE_REDIS = "restart_redis_from_aof", "wipe_redis"
KILL_TRACKER, FREEZE_TRACKER = "kill_tracker", "freeze_tracker"  # a single tracker (no Redis)
DURATIONS = {
    KILL_REPLICA: (1, 4),
    FREEZE_REPLICA: (1, 6),
    PARTITION_REPLICA: (4, 14),  # a replica notices a cut link after about 5 s: some cuts outlast that
    KILL_ARCHIVER: (1, 6),
    FREEZE_ARCHIVER: (1, 6),
    DISK_FULL: (2, 8),
    RESTART_REDIS: (0, 4),  # 0: SIGKILLed and started again at once
    WIPE_REDIS: (0, 0),  # one step: the room is lost and Redis starts empty
    KILL_TRACKER: (1, 4),
    FREEZE_TRACKER: (1, 4),
}
REPLICA_KINDS = (KILL_REPLICA, FREEZE_REPLICA, PARTITION_REPLICA)
CLUSTER_KINDS = (*REPLICA_KINDS, KILL_ARCHIVER, FREEZE_ARCHIVER, DISK_FULL, RESTART_REDIS, WIPE_REDIS)
SINGLE_KINDS = (KILL_TRACKER, FREEZE_TRACKER, DISK_FULL)
WRITER, REDIS = "writer", "redis"  # the writer: the process that writes chat.log (the archiver, or the tracker)
WRITER_KINDS = (KILL_ARCHIVER, FREEZE_ARCHIVER, DISK_FULL, KILL_TRACKER, FREEZE_TRACKER)


@dataclass(frozen=True)
class Fault:
    """One fault: injected at step ``at``, healed at step ``heal_at`` (the same step for an instant one)."""

    kind: str
    at: int
    heal_at: int
    slot: int | None = None  # the replica slot, for the replica kinds

    def resources(self) -> tuple[str, ...]:
        if self.kind in REPLICA_KINDS:
            return (f"slot{self.slot}",)
        if self.kind in WRITER_KINDS:
            return (WRITER,)
        if self.kind == RESTART_REDIS:
            return (REDIS,)
        return (WRITER, REDIS, *(f"slot{slot}" for slot in range(SLOTS)))

    def __str__(self) -> str:
        target = f" slot {self.slot}" if self.slot is not None else ""
        return f"{self.kind}{target} at step {self.at}, healed at step {self.heal_at}"


@dataclass(frozen=True)
class Schedule:
    seed: int
    steps: int
    keep_in_redis: int  # the archiver's --keep-in-redis: small ones let a freeze outrun the stream
    faults: tuple[Fault, ...]

    def injected_at(self, step: int) -> list[Fault]:
        return [fault for fault in self.faults if fault.at == step]

    def healed_at(self, step: int) -> list[Fault]:
        return [fault for fault in self.faults if fault.heal_at == step]

    def kinds(self) -> dict[str, int]:
        return dict(Counter(fault.kind for fault in self.faults))

    def describe(self) -> str:
        head = f"seed {self.seed}: {len(self.faults)} faults over {self.steps} steps of {STEP_SECONDS:g} s, "
        head += f"--keep-in-redis {self.keep_in_redis}"
        return "\n".join([head, *(f"  {fault}" for fault in self.faults)])


def draw(seed: int, kinds: tuple[str, ...] = CLUSTER_KINDS, steps: int = STEPS) -> Schedule:
    """The schedule of ``seed``: at each step, perhaps one fault of a random kind on free resources."""
    rng = random.Random(seed)
    keep_in_redis = rng.choice(KEEP_IN_REDIS)
    faults: list[Fault] = []
    free_from: dict[str, int] = {}  # resource -> the first step it may be taken again
    for step in range(1, steps - 1):
        if rng.random() >= FAULT_RATE:
            continue
        kind = rng.choice(kinds)
        slot = NETNS_SLOT if kind == PARTITION_REPLICA else rng.randrange(SLOTS) if kind in REPLICA_KINDS else None
        low, high = DURATIONS[kind]
        fault = Fault(kind, step, min(step + rng.randint(low, high), steps - 1), slot)
        if any(free_from.get(resource, 0) > step for resource in fault.resources()):
            continue
        slots_taken = sum(1 for s in range(SLOTS) if free_from.get(f"slot{s}", 0) > step)
        if slot is not None and slots_taken >= SLOTS - 1:
            continue  # one replica stays untouched: the members always have somewhere to go
        faults.append(fault)
        free_from.update((resource, fault.heal_at + 1) for resource in fault.resources())
    return Schedule(seed, steps, keep_in_redis, tuple(faults))


def seeds(ci: tuple[int, ...] = CI_SEEDS) -> list[int]:
    """``NEMESIS_SEED`` alone if set (a replay); else 100 seeds with RELIABILITY_FULL=1; else CI's few (``ci``)."""
    chosen = os.environ.get("NEMESIS_SEED", "").strip()
    if chosen:
        return [int(chosen)]
    if FULL:
        return list(range(1, FULL_SCHEDULES + 1))
    return list(ci)


def replay_command(seed: int, test_file: str) -> str:
    """The command that plays ``seed``'s schedule again."""
    return f"NEMESIS_SEED={seed} scripts/test {test_file}"
