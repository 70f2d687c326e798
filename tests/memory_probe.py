"""Peak-memory probe for the child processes of the memory tests (decisions.md: peak RSS of a child process).

Each memory test runs its workload in a fresh interpreter from a script that starts with `PROBE`, so the peak
it reads belongs to that workload alone and not to whatever this test session loaded before.
"""

PROBE = r'''
def status(key):
    """A /proc/self/status field (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024


def reset_peak():
    """Reset VmHWM to the current RSS, so the next peak read covers only what runs after this."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
'''
