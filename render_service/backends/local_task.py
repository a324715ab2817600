"""Run one local render task and leave its exit code in a file: ``python -m render_service.backends.local_task
EXIT_FILE -- ARGV...``.

The local backend starts every render chunk through this wrapper, so a worker that restarts can still tell a
finished task (its exit file exists: the code is in it) from a running one (the wrapper's process is alive) from a
lost one (neither). SIGTERM and SIGINT are passed on to the render, which stops after the image in hand and exits
143 or 130; that code is written too. Standard library only: it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType


def write_exit_code(path: str, code: int) -> None:
    """Write ``code`` into ``path`` atomically (a temporary name, then a rename): a reader never sees half of it."""
    staging = f"{path}.tmp-{os.getpid()}"
    with open(staging, "w", encoding="ascii") as handle:
        handle.write(f"{code}\n")
    os.replace(staging, path)


def run(exit_file: str, argv: list[str]) -> int:
    """Run ``argv``, passing SIGTERM/SIGINT on to it; write and return its exit code (128 + N when killed by N)."""
    try:
        child = subprocess.Popen(argv)
    except OSError as exc:
        sys.stderr.write(f"cannot start the render {argv[0]!r}: {exc}\n")
        write_exit_code(exit_file, 127)
        return 127

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    code = 128 - code if code < 0 else code
    write_exit_code(exit_file, code)
    return code


def main(args: list[str]) -> int:
    """Entry point: ``EXIT_FILE -- ARGV...``."""
    if len(args) < 3 or args[1] != "--":
        sys.stderr.write("usage: python -m render_service.backends.local_task EXIT_FILE -- ARGV...\n")
        return 2
    return run(args[0], args[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
