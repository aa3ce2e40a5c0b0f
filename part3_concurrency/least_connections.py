"""Prefork's board: which worker takes the next client. No lock: each worker writes only
its own slot (its count of open connections, and whether it holds back) and only reads
the others'; the master writes a slot only once its worker is dead. Each number is one
aligned 8-byte word, written whole; a worker that reads a count one change old is set
right by the look-again step below, and by a look once a second.

What it buys (docs/bench/tuning.md has the figures): a split that does not depend on
chance when a few long requests come at once (four on two workers: two each, where the
kernel could give all four to one worker and leave a core idle); for many short
requests, about as even as the kernel's own.

The rule is the least-connections rule of load balancers (nginx's ``least_conn``,
HAProxy's ``leastconn``): a worker watches the listening socket while no other worker
has fewer connections, give or take an eighth of its own; else it stops watching
(``Acceptor.hold``), and the kernel wakes only the others for the next client.
Connections, not requests: a worker can only choose whom to accept, and a count that
changes at accept and close costs nothing per request on a kept-alive connection. The
slack of an eighth keeps the rule exact for a few clients, where one is a good share of
a core, and loose for many, where an exact rule would have the workers take turns at the
socket with every accept.
"""

import mmap
import os
import selectors


class LeastConnections:
    """The board, made by the master before it forks, so that every worker shares it:
    anonymous memory (``mmap``), which fork() shares rather than copies, with two numbers
    for each worker, and for each worker a pipe through which the others wake it.

    Every slot starts at 0 connections, not empty: the master announces ``Serving on``
    before its workers exist, and clients that come at once must not all go to the first
    worker up. So a worker not started yet counts as idle, and the first one up takes one
    client and leaves the next to its sibling. A worker that dies, even before it ever
    published, is vacated by the master: its slot is then empty (``ABSENT``), never the
    least busy, so the others serve on without it until its replacement publishes."""

    ABSENT = 2**62  # the count of a slot with no worker: never the least busy

    def __init__(self, slots):
        self.slots = slots
        # Two numbers per worker: open connections, and 1 while it holds back. An mmap
        # starts zeroed: every worker counts as idle, started or not (see above).
        self.numbers = memoryview(mmap.mmap(-1, 16 * slots)).cast("q")
        self.pipes = [os.pipe() for _ in range(slots)]
        for reader, writer in self.pipes:
            os.set_blocking(reader, False)
            os.set_blocking(writer, False)

    def count(self, slot):
        return self.numbers[2 * slot]

    def holding(self, slot):
        return self.numbers[2 * slot + 1] == 1

    def may_take_clients(self, slot):
        mine = self.count(slot)
        fewest = min(self.count(other) for other in range(self.slots))
        return mine <= fewest + mine // 8

    def publish(self, slot, connections):
        """``slot`` has ``connections`` open now; if that is more than before, wake those
        holding back that may take clients again."""
        before, self.numbers[2 * slot] = self.count(slot), connections
        if connections > before:
            for other in range(self.slots):
                if other != slot and self.holding(other) and self.may_take_clients(other):
                    self.wake(other)

    def set_holding(self, slot, holding):
        self.numbers[2 * slot + 1] = int(holding)

    def wake(self, slot):
        try:
            os.write(self.pipes[slot][1], b"!")
        except BlockingIOError:
            pass  # its pipe is full of wake-ups already

    def vacate(self, slot):
        """The master, for a worker that died: its slot is nobody's, and the others look again."""
        self.numbers[2 * slot], self.numbers[2 * slot + 1] = self.ABSENT, 0
        for other in range(self.slots):
            self.wake(other)

    def seat(self, slot, selector, acceptor):
        """In a worker: its place at the board, watched by its selector."""
        return Seat(self, slot, selector, acceptor)


class Seat:
    """One worker's place at the board: it publishes the worker's count, and holds back or
    releases the worker's ``Acceptor`` as the board says, until the worker leaves."""

    def __init__(self, board, slot, selector, acceptor):
        self.board, self.slot = board, slot
        self.selector, self.acceptor = selector, acceptor
        self.wake_reader = board.pipes[slot][0]
        selector.register(self.wake_reader, selectors.EVENT_READ, self.on_wake)
        self.present = True

    def publish(self, connections):
        if self.present:
            self.board.publish(self.slot, connections)
            self.look()

    def look(self):
        """Watch the listener while the board says we may; else hold back. Holding back, say
        so on the board first and then look once more: a worker that took a client
        meanwhile may have looked at the board before we said so, and not woken us."""
        if not self.present:
            return
        if not self.board.may_take_clients(self.slot):
            self.acceptor.hold()
            self.board.set_holding(self.slot, True)
            if not self.board.may_take_clients(self.slot):
                return  # busier still: a worker that takes a client will wake us
        self.board.set_holding(self.slot, False)
        self.acceptor.release()

    def on_wake(self, events):
        try:
            os.read(self.wake_reader, 4096)
        except BlockingIOError:
            pass
        self.look()

    def leave(self):
        """The worker stops: its acceptor closes, and is neither held back nor released again."""
        if self.present:
            self.present = False
            self.selector.unregister(self.wake_reader)
