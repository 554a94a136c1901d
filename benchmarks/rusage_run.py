#!/usr/bin/env python3
"""Runs a command and writes "wall user sys peak_rss_kb" to a file.

usage: rusage_run.py OUT CMD [ARGS...]

/usr/bin/time prints seconds with two decimals, as coarse as a whole
16 MiB run; this keeps the microseconds. The command runs under
`/usr/bin/time -f %M` (whose peak resident memory is the command's; one
taken here would include this interpreter's, which an exec carries into
the child's account). Wall seconds come from a monotonic clock around
it, user and system seconds from the kernel's account of it (wait4:
the command plus /usr/bin/time itself, a fraction of a millisecond).
The command's standard output is discarded; its exit status is
returned.
"""
import os
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, cmd = sys.argv[1], sys.argv[2:]
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        t0 = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name] + cmd,
                             stdout=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        peak = rss.read().split()[-1]
    with open(out, "w") as f:
        f.write(f"{wall:.6f} {ru.ru_utime:.6f} {ru.ru_stime:.6f} {peak}\n")
    sys.exit(p.returncode)


if __name__ == "__main__":
    main()
