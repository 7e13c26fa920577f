"""Runs the BlueZoo BlueZ simulator with the ATT MTU it reports set to a chosen value.

Started by zerotouch-ble's `bluez::bluezoo` harness on a private D-Bus (DBUS_SYSTEM_BUS_ADDRESS
is set by the caller). Differs from `bluezoo`'s own entry point in three ways:

- `--mtu N`: BlueZoo always reports ATT MTU 512 (a connected characteristic takes the GATT
  application's `MTU` property, which bluer's applications do not have, and falls back to 512).
  The MTU is set where BlueZoo makes that choice, `GattCharacteristicClientLink.__init__`, so
  the central's `MTU` property and the `mtu` option of every request the peripheral receives
  say N. BlueZoo does not enforce it: the tests check segment sizes themselves.
- prints `ready` on stdout once the adapters are on the bus, so the harness waits for that
  line instead of sleeping;
- exits, and ends the bus daemon given by `--bus-pid`, when its standard input closes: the
  harness holds the other end, so a test process that dies without running its destructors
  (SIGKILL, abort) leaves neither process behind.
"""

import argparse
import asyncio
import os
import signal
import sys

from bluezoo import bluezoo
from bluezoo.gatt.characteristic import GattCharacteristicClientLink
from bluezoo.utils import BluetoothAddress


def patch_mtu(mtu: int) -> None:
    original = GattCharacteristicClientLink.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if not hasattr(self, "mtu"):
            # The BlueZoo version installed no longer keeps the MTU here: say so instead of
            # silently reporting its default.
            raise RuntimeError("GattCharacteristicClientLink has no mtu attribute to patch")
        self.mtu = mtu

    GattCharacteristicClientLink.__init__ = init


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mtu", type=int, required=True, help="ATT MTU to report (23..517)")
    parser.add_argument("--scan-interval", type=int, default=1)
    parser.add_argument("--bus-pid", type=int, help="bus daemon to end when stdin closes")
    parser.add_argument("-a", "--adapter", dest="adapters", action="append",
                        type=BluetoothAddress, required=True)
    args = parser.parse_args()
    if not 23 <= args.mtu <= 517:
        parser.error("--mtu must be within 23..517")
    patch_mtu(args.mtu)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(bluezoo.startup(
        bus="system", adapters=args.adapters, auto_enable=True, scan_interval=args.scan_interval))
    print("ready", flush=True)

    def stdin_closed() -> None:
        if not sys.stdin.buffer.read1(4096):
            if args.bus_pid:
                try:
                    os.kill(args.bus_pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            loop.stop()

    loop.add_reader(sys.stdin.fileno(), stdin_closed)
    loop.run_forever()


if __name__ == "__main__":
    main()
