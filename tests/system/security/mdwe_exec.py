"""Run a command with the kernel's MDWE on, as systemd's ``MemoryDenyWriteExecute=yes`` does: no memory may be
made writable and executable, in this process or any it starts. Exits 2 if the kernel cannot do it.

Usage: ``python mdwe_exec.py COMMAND [ARGUMENT...]``
"""

from __future__ import annotations

import ctypes
import os
import sys

#: prctl(2): PR_SET_MDWE and its one flag, PR_MDWE_REFUSE_EXEC_GAIN (Linux 6.3 and later).
PR_SET_MDWE = 65
PR_GET_MDWE = 66
PR_MDWE_REFUSE_EXEC_GAIN = 1


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(f"mdwe_exec: this kernel refuses PR_SET_MDWE: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) != PR_MDWE_REFUSE_EXEC_GAIN:
        sys.exit("mdwe_exec: PR_SET_MDWE did not take")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
