"""Exec a program as systemd starts a socket-activated service: ``listen_fds_exec.py FD PROGRAM ARGS...``.

The inherited socket FD becomes fd 3 and ``LISTEN_PID`` is set to this process's pid, which only the child
knows and which exec keeps; the caller sets ``LISTEN_FDS`` and ``LISTEN_FDNAMES``.
"""

import os
import sys


def main() -> None:
    fd = int(sys.argv[1])
    if fd != 3:
        os.dup2(fd, 3)  # the copy is inheritable
        os.close(fd)
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(sys.argv[2], sys.argv[2:])


if __name__ == "__main__":
    main()
