#!/usr/bin/env python3
"""A transformer plugin that misbehaves on purpose, one way per mode: what a host must survive.

    faulty_plugin.py MODE

exit-early       exits with status 3 before its handshake
junk             prints a line that is not a handshake, then waits
silent           never prints anything (the host's start timeout)
flood            prints 64 MiB without a newline instead of a handshake
crash-on-call    serves, then dies of SIGSEGV inside the first Transform
ignore-shutdown  serves, but never exits: SIGTERM ignored, a thread that never ends
chatty           serves, and every Transform prints 20,000 lines on stdout
wrong-core       prints a handshake for go-plugin core protocol 2
netrpc           prints a handshake for go-plugin's older net/rpc protocol
raise            serves, and every Transform raises ValueError
"""

import ctypes
import signal
import sys
import threading
import time

from labkit.rpc import serve


def echo(headers: dict[str, str]) -> dict[str, str]:
    return dict(headers)


def crash(headers: dict[str, str]) -> dict[str, str]:
    print("faulty plugin: about to read address 0")
    ctypes.string_at(0)  # a real segmentation fault, in the plugin's process only
    return headers


def chatty(headers: dict[str, str]) -> dict[str, str]:
    for i in range(20_000):
        print(f"chatty line {i}")
    return dict(headers)


def fail(headers: dict[str, str]) -> dict[str, str]:
    raise ValueError(f"faulty plugin refuses {sorted(headers)}")


def main(mode: str) -> None:
    if mode == "exit-early":
        print("faulty plugin: giving up before the handshake", file=sys.stderr)
        sys.exit(3)
    elif mode == "junk":
        print("Hello from a plugin that forgot the protocol", flush=True)
        time.sleep(60)
    elif mode == "silent":
        time.sleep(60)
    elif mode == "flood":
        chunk = b"x" * (1 << 20)
        for _ in range(64):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        time.sleep(60)
    elif mode == "wrong-core":
        print("2|1|unix|plugin.sock|grpc|", flush=True)
        time.sleep(60)
    elif mode == "netrpc":
        print("1|1|tcp|127.0.0.1:1234|netrpc|", flush=True)
        time.sleep(60)
    elif mode == "crash-on-call":
        serve(crash)
    elif mode == "ignore-shutdown":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        threading.Thread(target=time.sleep, args=(3600,), name="never-ends").start()
        serve(echo)
    elif mode == "chatty":
        serve(chatty)
    elif mode == "raise":
        serve(fail)
    else:
        sys.exit(f"faulty_plugin.py: unknown mode {mode!r}; see the list at the top of the file")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
