"""A member's own devices: ``/devices`` lists them, ``/signout ID`` signs one out (its token dies, it is closed).

Each JSON sign-in with the passphrase makes a device with a token of its own (``AccountDesk``);
the store keeps only the token's hash. Signing a device out removes it from the store - its
token signs nobody in any more - and closes its connections on this tracker with 4015.
"""

from __future__ import annotations

from chat_protocol import DeviceInfo, Devices, SignedOut, encode, format_ts
from chat_tracker.core.accounts import Device
from chat_tracker.core.dialects import PLAIN, Dialect
from chat_tracker.core.errands import ListDevices, SignOutDevice
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import Room
from chat_tracker.service.accounts import AccountDesk


async def answer_devices(
    desk: AccountDesk, room: Room, dialect: Dialect, outbox: Outbox, errand: ListDevices | SignOutDevice
) -> None:
    """Carry ``errand`` out and queue its answer on ``outbox``."""
    if isinstance(errand, SignOutDevice):
        if not await desk.sign_out_device(errand.name, errand.device):
            outbox.push(dialect.error("unknown_device", f"no device {errand.device!r} is signed in to your account"))
            return
        outbox.push(
            f"* Device {errand.device} is signed out." if dialect is PLAIN else encode(SignedOut(errand.device))
        )
        room.sign_out(errand.name, errand.device)  # after the answer: it may be this very connection
        return
    devices = await desk.devices(errand.name)
    if dialect is PLAIN:
        outbox.push_texts(_plain_list(devices, errand.current))
    else:
        outbox.push(encode(Devices([_info(device, errand.current) for device in devices])))


def _info(device: Device, current: str | None) -> DeviceInfo:
    return DeviceInfo(
        id=device.id,
        label=device.label,
        created=format_ts(device.created),
        last_seen=format_ts(device.last_seen),
        current=device.id == current,
    )


def _plain_list(devices: list[Device], current: str | None) -> list[str]:
    if not devices:
        return ["* No device is signed in to your account (the terminal client and the page sign in as devices)."]
    lines = [f"* Devices signed in to your account ({len(devices)}); /signout ID signs one out:"]
    for device in devices:
        this = " (this one)" if device.id == current else ""
        lines.append(f"*   {device.id}  {device.label}  last seen {format_ts(device.last_seen)}{this}")
    return lines
