"""Submitting a queued row upstream, failing over between accounts without ever submitting twice.

A pure machine: ``next_action(attempt, outcome)`` returns what to do next and the next attempt
state; services/submit.py performs each action and reports its outcome. The rules:

* a refusal that proves no task exists moves on to the next account when it is the account's
  fault (busy, unreachable, credentials, balance: domain/refusals.py), else it is the client's
  answer;
* a failure that may have made a task asks the *same* account for our id first; only a confirmed
  absence moves on (to another account, or once more to this one when no other can go);
* the row is re-pointed at the next account before the send (``MoveOn``), so if the process dies
  mid-call the refresher asks the account that may hold the task.

``accepted``: the client already holds the id (refresher path): a final refusal goes back to the
caller (``HandBack``) instead of hiding the row.

``resent``: the row may have been sent to this account before, by a request or process that died
before recording the answer; no refusal is believed until a lookup by our id finds nothing. A
client's retry of such a row (resent, not accepted) is never moved nor rejected: its first request
may still be on its way here, so "absent" proves nothing yet. It is accepted unconfirmed and left to
the refresher, no earlier than the first request's own deadline (``keep_deadline``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .refusals import Fault, Refusal

# --- outcomes: what the executor saw


@dataclass(frozen=True, slots=True)
class Created:
    """The create was accepted upstream."""


@dataclass(frozen=True, slots=True)
class Refused:
    refusal: Refusal
    usable: bool = False  # after a KEY refusal: the account still has a usable key (benching ran)


@dataclass(frozen=True, slots=True)
class Found:
    """The lookup found our task upstream."""


@dataclass(frozen=True, slots=True)
class NotFound:
    """The account confirms it holds nothing under our id."""


@dataclass(frozen=True, slots=True)
class LookUpFailed:
    """The lookup itself failed: upstream's state stays unknown."""


@dataclass(frozen=True, slots=True)
class Moved:
    account: int  # the row now points at this account


@dataclass(frozen=True, slots=True)
class NoneLeft:
    """No other account can take the create now."""


@dataclass(frozen=True, slots=True)
class Lost:
    """The row was re-pointed by someone else: this attempt no longer owns it."""


Outcome = Created | Refused | Found | NotFound | LookUpFailed | Moved | NoneLeft | Lost

# --- actions: what the executor does next


@dataclass(frozen=True, slots=True)
class Send:
    account: int  # create on this account (first send, a rotated key, or once more)


@dataclass(frozen=True, slots=True)
class LookUp:
    account: int  # ask this account for the task under our id


@dataclass(frozen=True, slots=True)
class MoveOn:
    exclude: frozenset[int]  # pick another account outside these; re-point the row at it
    refused: int | None  # the code that moved it, for the log; None after a confirmed absence


@dataclass(frozen=True, slots=True)
class Record:
    reply_first: bool  # upstream holds the task; a fresh create's reply need not wait for the write


@dataclass(frozen=True, slots=True)
class AcceptUnconfirmed:
    keep_deadline: bool  # not before the row's scheduled look, which an earlier request may beat


@dataclass(frozen=True, slots=True)
class Reject:
    refusal: Refusal  # no task exists: hide the row, release its external id, answer the client


@dataclass(frozen=True, slots=True)
class HandBack:
    refusal: Refusal  # the refresher's task: the refusal goes back to it to retry or fail


@dataclass(frozen=True, slots=True)
class Superseded:
    """Another request or node re-pointed the row: read it back and answer with that."""


Step = Send | LookUp | MoveOn
Final = Record | AcceptUnconfirmed | Reject | HandBack | Superseded
Action = Step | Final


@dataclass(frozen=True, slots=True)
class Attempt:
    account: int  # the account the row points at
    tried: frozenset[int]
    accepted: bool
    client_retry: bool  # resent and not accepted: never moved nor rejected
    resent: bool  # this account may hold the task from an earlier send
    same_again: bool = True  # one more send to an account that confirmed it holds nothing
    pending: Refused | None = None  # the refusal being handled


def start(account: int, *, accepted: bool = False, resent: bool = False) -> tuple[Send, Attempt]:
    state = Attempt(account, frozenset({account}), accepted, resent and not accepted, resent)
    return Send(account), state


def next_action(state: Attempt, outcome: Outcome) -> tuple[Action, Attempt]:
    match outcome:
        case Created():
            return Record(reply_first=not state.accepted), state
        case Found():
            return Record(reply_first=False), state
        case LookUpFailed():
            return AcceptUnconfirmed(keep_deadline=False), state
        case Refused(refusal=r):
            may_hold = not r.absent or state.resent or r.duplicate
            # confirmed or settled below, one way or the other: an earlier send no longer counts
            state = replace(state, pending=outcome, resent=False)
            if may_hold:
                return LookUp(state.account), state
            return _proved_absent(state)
        case NotFound():
            if _pending(state).refusal.absent:
                return _proved_absent(state)
            return _confirmed_absent(state)
        case Moved(account=a):
            return Send(a), replace(state, account=a, tried=state.tried | {a})
        case NoneLeft():
            return _none_left(state)
        case Lost():
            return Superseded(), state


def _pending(state: Attempt) -> Refused:
    assert state.pending is not None, "a lookup or a move only ever follows a refusal"
    return state.pending


def _proved_absent(state: Attempt) -> tuple[Action, Attempt]:
    """This account holds no task: its refusal said so, confirmed by a lookup where it had to be."""
    pending = _pending(state)
    r = pending.refusal
    if r.fault is Fault.KEY and pending.usable:
        return Send(state.account), state  # that key sits out now; the account's next key gets it
    if state.client_retry:
        return AcceptUnconfirmed(keep_deadline=True), state
    if r.fault.fails_over:
        return MoveOn(state.tried, refused=r.code), state
    return _none_left(state)


def _confirmed_absent(state: Attempt) -> tuple[Action, Attempt]:
    """A failure that may have made a task, and the account confirmed it holds nothing."""
    if state.client_retry:
        return _none_left(state)
    return MoveOn(state.tried, refused=None), state


def _none_left(state: Attempt) -> tuple[Action, Attempt]:
    r = _pending(state).refusal
    if r.absent and not (r.fault is Fault.UNREACHABLE and state.same_again):
        return (HandBack(r) if state.accepted else Reject(r)), state
    if not r.absent and not state.same_again:
        return AcceptUnconfirmed(keep_deadline=state.client_retry), state
    # nothing reached it, or it confirmed it holds nothing: one more send to it is safe, once
    return Send(state.account), replace(state, same_again=False)
