"""What the forking and prefork servers share besides forking: stopping their children.

Forking a child, capping and reaping children are the lesson of forking_server.py, and
written there in plain sight. Stopping them on Ctrl-C is not the lesson of any server:
it is done here, once, and both servers call it.
"""

import os
import signal
import time

from part2_wsgi.command_line import GRACE_PERIOD, grace_period


def stop_children(running, last_signal=signal.SIGTERM, seconds=GRACE_PERIOD):
    """Let the children in ``running`` (PIDs) finish their requests for a grace period,
    reaping those that exit, then stop the rest with ``last_signal``.

    Only PIDs we have not reaped are signalled: until its parent reaps it, a child's PID
    cannot be given to another process, so the signal cannot hit a stranger."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # we reap them ourselves now
    for _ in grace_period(lambda: running, seconds):
        for pid in list(running):
            if os.waitpid(pid, os.WNOHANG)[0]:  # (0 while it still runs)
                running.discard(pid)
        time.sleep(0.02)
    for pid in list(running):
        os.kill(pid, last_signal)
        os.waitpid(pid, 0)
        running.discard(pid)
