"""The seed's conversation between alpha, beta and gamma, as a script played on events.

Each step is one member's action, taken once that member has *seen* the step's trigger
(everyone online, a given message, someone's leaving). The members synchronise on what the
tracker sends them, never on time. Shared by the members (member.py), the checker (checker.py)
and the pytest module that drives the run.

Standard library only: it runs inside the app image too.
"""

from __future__ import annotations

from dataclasses import dataclass

MEMBERS = ("alpha", "beta", "gamma")


@dataclass(frozen=True)
class Trigger:
    """What a member must have seen before acting: ``kind`` is online, message or left."""

    kind: str
    name: str = ""
    text: str = ""

    def describe(self) -> str:
        if self.kind == "online":
            return "everyone online: " + ", ".join(MEMBERS)
        if self.kind == "message":
            return f"{self.name}: {self.text}"
        return f"{self.name} left"


@dataclass(frozen=True)
class Step:
    """``who`` says ``text`` (or leaves, when text is None) once ``after`` has been seen."""

    who: str
    after: Trigger
    text: str | None


EVERYONE_ONLINE = Trigger("online")


def said(name: str, text: str) -> Trigger:
    return Trigger("message", name, text)


def left(name: str) -> Trigger:
    return Trigger("left", name)


LEAVE = None

SCRIPT = (
    Step("alpha", EVERYONE_ONLINE, "Hi I am alpha"),
    Step("beta", said("alpha", "Hi I am alpha"), "And I am beta"),
    Step("gamma", said("beta", "And I am beta"), "I am gamma"),
    Step("beta", said("gamma", "I am gamma"), "One day I will be sigma"),
    Step("alpha", said("beta", "One day I will be sigma"), "That day I will become the Omega"),
    Step("gamma", said("alpha", "That day I will become the Omega"), "Are you both done now with the greek alphabet"),
    Step("beta", said("gamma", "Are you both done now with the greek alphabet"), "Ok I am leaving now"),
    Step("alpha", said("beta", "Ok I am leaving now"), "Ok bye"),
    Step("gamma", said("alpha", "Ok bye"), "Bye"),
    Step("beta", said("gamma", "Bye"), LEAVE),
    Step("alpha", left("beta"), "I am leaving too bye"),
    Step("gamma", said("alpha", "I am leaving too bye"), "bye"),
    # The tracker answers leave only once all the member sent is delivered: no need to wait here.
    Step("gamma", said("alpha", "I am leaving too bye"), LEAVE),
    Step("alpha", left("gamma"), LEAVE),
)


def steps_of(name: str) -> list[Step]:
    """The steps one member plays, in order."""
    return [step for step in SCRIPT if step.who == name]


def expected_messages() -> list[tuple[str, str]]:
    """(name, text) of every message, in the order chat.log must hold them."""
    return [(step.who, step.text) for step in SCRIPT if step.text is not None]


def expected_leaving_order() -> list[str]:
    return [step.who for step in SCRIPT if step.text is None]
