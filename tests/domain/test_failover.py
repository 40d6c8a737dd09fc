"""Submit and failover as a pure machine: every transition as a table, the never-submit-twice
invariants over every reachable state, and random refusal sequences as a property."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kling_gateway.domain.failover import (
    AcceptUnconfirmed,
    Action,
    Attempt,
    Created,
    Final,
    Found,
    HandBack,
    LookUp,
    LookUpFailed,
    Lost,
    Moved,
    MoveOn,
    NoneLeft,
    NotFound,
    Outcome,
    Record,
    Refused,
    Reject,
    Send,
    Superseded,
    next_action,
    start,
)
from kling_gateway.domain.refusals import Fault, refusal

FRESH = start(1)[1]  # a client's first create
RETRY = start(1, resent=True)[1]  # a client's retry of a row still queued
REFRESH = start(1, accepted=True, resent=True)[1]  # the refresher resubmitting an accepted row
CONFIRMED = replace(REFRESH, resent=False, client_retry=False)  # refresher, after a lookup


def refused(code: int, usable: bool = False) -> Refused:
    return Refused(refusal(code), usable)


def after(state: Attempt, code: int, *, usable: bool = False, same_again: bool = True) -> Attempt:
    """``state`` while handling a refusal ``code`` (its lookup or move under way)."""
    return replace(state, pending=refused(code, usable), resent=False, same_again=same_again)


TRY_2 = frozenset({1})

TRANSITIONS = [
    # --- answers
    ("created", FRESH, Created(), Record(reply_first=True), FRESH),
    ("created on resubmit", REFRESH, Created(), Record(reply_first=False), REFRESH),
    ("created on retry", RETRY, Created(), Record(reply_first=True), RETRY),
    ("found", after(FRESH, 5002), Found(), Record(reply_first=False), after(FRESH, 5002)),
    ("lookup failed", after(FRESH, 5002), LookUpFailed(), AcceptUnconfirmed(False),
     after(FRESH, 5002)),
    ("lookup failed on retry", after(RETRY, 1303), LookUpFailed(), AcceptUnconfirmed(False),
     after(RETRY, 1303)),
    # --- refusals that prove nothing was made
    ("busy moves on", FRESH, refused(1303), MoveOn(TRY_2, 1303), after(FRESH, 1303)),
    ("rate moves on", FRESH, refused(1302), MoveOn(TRY_2, 1302), after(FRESH, 1302)),
    ("unreachable moves on", FRESH, refused(5001), MoveOn(TRY_2, 5001), after(FRESH, 5001)),
    ("account moves on", FRESH, refused(1102), MoveOn(TRY_2, 1102), after(FRESH, 1102)),
    ("ip list moves on", FRESH, refused(1304), MoveOn(TRY_2, 1304), after(FRESH, 1304)),
    ("key rotates", FRESH, refused(1002, True), Send(1), after(FRESH, 1002, usable=True)),
    ("last key moves on", FRESH, refused(1002), MoveOn(TRY_2, 1002), after(FRESH, 1002)),
    ("bad request", FRESH, refused(1200), Reject(refusal(1200)), after(FRESH, 1200)),
    ("content policy", FRESH, refused(1301), Reject(refusal(1301)), after(FRESH, 1301)),
    ("refresher's bad request", CONFIRMED, refused(1200), HandBack(refusal(1200)),
     after(CONFIRMED, 1200)),
    # --- refusals that may hide a task: look up first
    ("1201 may be a duplicate", FRESH, refused(1201), LookUp(1), after(FRESH, 1201)),
    ("timeout after send", FRESH, refused(5002), LookUp(1), after(FRESH, 5002)),
    ("server error", FRESH, refused(5000), LookUp(1), after(FRESH, 5000)),
    ("retry's busy", RETRY, refused(1303), LookUp(1), after(RETRY, 1303)),
    ("retry's bad request", RETRY, refused(1200), LookUp(1), after(RETRY, 1200)),
    ("resubmit's busy", REFRESH, refused(1303), LookUp(1), after(REFRESH, 1303)),
    ("resubmit's key", REFRESH, refused(1000, True), LookUp(1), after(REFRESH, 1000, usable=True)),
    # --- the lookup confirmed absence
    ("absent after timeout", after(FRESH, 5002), NotFound(), MoveOn(TRY_2, None),
     after(FRESH, 5002)),
    ("absent after 1201", after(FRESH, 1201), NotFound(), Reject(refusal(1201)),
     after(FRESH, 1201)),
    ("absent after busy", after(REFRESH, 1303), NotFound(), MoveOn(TRY_2, 1303),
     after(REFRESH, 1303)),
    ("absent, key rotates", after(REFRESH, 1000, usable=True), NotFound(), Send(1),
     after(REFRESH, 1000, usable=True)),
    ("retry absent after busy", after(RETRY, 1303), NotFound(), AcceptUnconfirmed(True),
     after(RETRY, 1303)),
    ("retry absent after 1200", after(RETRY, 1200), NotFound(), AcceptUnconfirmed(True),
     after(RETRY, 1200)),
    ("retry absent, key rotates", after(RETRY, 1000, usable=True), NotFound(), Send(1),
     after(RETRY, 1000, usable=True)),
    ("retry absent after timeout", after(RETRY, 5002), NotFound(), Send(1),
     after(RETRY, 5002, same_again=False)),
    ("retry absent twice", after(RETRY, 5002, same_again=False), NotFound(),
     AcceptUnconfirmed(True),
     after(RETRY, 5002, same_again=False)),
    # --- moving on
    ("moved", after(FRESH, 1303), Moved(2), Send(2),
     replace(after(FRESH, 1303), account=2, tried=frozenset({1, 2}))),
    ("lost the row", after(FRESH, 1303), Lost(), Superseded(), after(FRESH, 1303)),
    ("none left, busy", after(FRESH, 1303), NoneLeft(), Reject(refusal(1303)), after(FRESH, 1303)),
    ("none left, resubmit busy", after(CONFIRMED, 1303), NoneLeft(), HandBack(refusal(1303)),
     after(CONFIRMED, 1303)),
    ("none left, unreachable", after(FRESH, 5001), NoneLeft(), Send(1),
     after(FRESH, 5001, same_again=False)),
    ("none left, unreachable twice", after(FRESH, 5001, same_again=False), NoneLeft(),
     Reject(refusal(5001)), after(FRESH, 5001, same_again=False)),
    ("none left after timeout", after(FRESH, 5002), NoneLeft(), Send(1),
     after(FRESH, 5002, same_again=False)),
    ("none left after timeout twice", after(FRESH, 5002, same_again=False), NoneLeft(),
     AcceptUnconfirmed(False), after(FRESH, 5002, same_again=False)),
    ("resubmit: none left after timeout twice", after(REFRESH, 5002, same_again=False), NoneLeft(),
     AcceptUnconfirmed(False), after(REFRESH, 5002, same_again=False)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "outcome", "action", "then"),
    [pytest.param(*row[1:], id=row[0]) for row in TRANSITIONS],
)
def test_transitions(state: Attempt, outcome: Outcome, action: Action, then: Attempt) -> None:
    assert next_action(state, outcome) == (action, then)


def test_start() -> None:
    assert start(7) == (Send(7), Attempt(7, frozenset({7}), False, False, False))
    assert start(7, resent=True)[1].client_retry
    assert not start(7, accepted=True, resent=True)[1].client_retry


# --- invariants, checked by a model of upstream that the machine does not see

CODES = [1000, 1004, 1100, 1103, 1200, 1201, 1203, 1301, 1302, 1303, 1304, 1399, 5000, 5001, 5002]
# one code per kind of row: the exhaustive walk grows with the square of this list
KINDS = [1000, 1102, 1200, 1201, 1303, 5000, 5001, 5002]


@dataclass
class Watch:
    """What the machine's past outcomes allow: ``may_hold`` is set while the current account may
    hold our task without a lookup having said otherwise."""

    state: Attempt
    action: Action
    may_hold: bool
    sent_to: list[int] = field(default_factory=list)

    def see(self, outcome: Outcome) -> None:
        client_retry = self.state.client_retry
        if isinstance(outcome, Refused):
            r = outcome.refusal
            self.may_hold = self.may_hold or not r.absent or r.duplicate
        elif isinstance(outcome, NotFound | Moved):  # confirmed empty, or an account never sent to
            self.may_hold = False
        self.action, self.state = next_action(self.state, outcome)
        action = self.action
        if self.may_hold:  # never a send anywhere, a move or a rejection before a lookup
            assert isinstance(action, LookUp | Record | AcceptUnconfirmed), (outcome, action)
        if client_retry:  # a client's retry is never moved nor rejected
            assert not isinstance(action, MoveOn | Reject | HandBack), (outcome, action)
        if isinstance(action, Send):
            assert action.account == self.state.account
            # once more to the account just tried, or to one never sent to
            assert action.account not in self.sent_to or action.account == self.sent_to[-1]
            self.sent_to.append(action.account)
        if isinstance(action, MoveOn):
            assert action.exclude >= set(self.sent_to)  # no account is walked twice
        if isinstance(action, Reject | HandBack):
            assert action.refusal.absent
            assert isinstance(action, HandBack) == self.state.accepted


def watch(resent: bool, accepted: bool) -> Watch:
    action, state = start(1, accepted=accepted, resent=resent)
    return Watch(state, action, may_hold=resent, sent_to=[1])


def outcomes_for(action: Action, tried: frozenset[int]) -> list[Outcome]:
    match action:
        case Send():
            keys = [refused(c, True) for c in KINDS if refusal(c).fault is Fault.KEY]
            return [Created(), *(refused(c) for c in KINDS), *keys]
        case LookUp():
            return [Found(), NotFound(), LookUpFailed()]
        case MoveOn():
            fresh = [a for a in (1, 2, 3) if a not in tried]
            return [NoneLeft(), Lost(), *(Moved(a) for a in fresh[:1])]
    return []


STARTS = [(False, False), (True, False), (True, True)]


@pytest.mark.parametrize(("resent", "accepted"), STARTS, ids=["fresh", "retry", "refresh"])
def test_invariants_over_every_reachable_state(resent: bool, accepted: bool) -> None:
    """Every path over three accounts, a key rotation at most once per account (the channel cools
    a key per KEY refusal, so rotations are finite)."""
    seen = 0
    todo = [(watch(resent, accepted), frozenset[int]())]
    while todo:
        w, rotated = todo.pop()
        for outcome in outcomes_for(w.action, w.state.tried):
            rotates = isinstance(outcome, Refused) and outcome.usable
            if rotates and (w.state.account in rotated or w.action != Send(w.state.account)):
                continue
            nxt = Watch(w.state, w.action, w.may_hold, list(w.sent_to))
            nxt.see(outcome)
            seen += 1
            if not isinstance(nxt.action, Final):
                todo.append((nxt, rotated | {w.state.account} if rotates else rotated))
    assert seen > 100


@dataclass(frozen=True)
class World:
    """Upstream as the property sees it: each account's answers in turn, and its spare keys."""

    answers: dict[int, list[int]]  # per account: codes in order (0: created), the last one for ever
    keys: dict[int, int]
    lookups: list[int]  # 0 found, 1 not found, 2 failed, in order; then "not found" for ever
    moves: list[int]  # 0 lost, 1 moved, 2 none left, in order; then "moved" while any is left


ACCOUNTS = (1, 2, 3)
worlds = st.builds(
    World,
    answers=st.fixed_dictionaries(
        {a: st.lists(st.sampled_from([0, *CODES]), min_size=1) for a in ACCOUNTS},
    ),
    keys=st.fixed_dictionaries({a: st.integers(0, 3) for a in ACCOUNTS}),
    lookups=st.lists(st.integers(0, 2)),
    moves=st.lists(st.integers(0, 2)),
)


@settings(max_examples=400, deadline=None)
@given(world=worlds, resent=st.booleans(), accepted=st.booleans())
def test_random_refusal_sequences(world: World, resent: bool, accepted: bool) -> None:
    w = watch(resent, accepted)
    answers = {a: list(codes) for a, codes in world.answers.items()}
    keys, lookups, moves = dict(world.keys), list(world.lookups), list(world.moves)
    # sends: one per account, one per spare key, one more; each costs at most a lookup and a move
    bound = 3 * (len(ACCOUNTS) + sum(keys.values()) + 1) + 1
    for _ in range(bound):
        if isinstance(w.action, Final):
            return
        w.see(_answer(w, answers, keys, lookups, moves))
    raise AssertionError(f"no final action after {bound} steps")


def _answer(
    w: Watch,
    answers: dict[int, list[int]],
    keys: dict[int, int],
    lookups: list[int],
    moves: list[int],
) -> Outcome:
    account = w.state.account
    match w.action:
        case Send():
            code = answers[account].pop(0) if len(answers[account]) > 1 else answers[account][0]
            if code == 0:
                return Created()
            usable = refusal(code).fault is Fault.KEY and keys[account] > 0
            keys[account] -= usable  # the channel cools the key that failed
            return refused(code, usable)
        case LookUp():
            seen: list[Outcome] = [Found(), NotFound(), LookUpFailed()]
            return seen[lookups.pop(0) if lookups else 1]
        case MoveOn(exclude=exclude):
            left = [a for a in ACCOUNTS if a not in exclude]
            pick = moves.pop(0) if moves else 1
            if not left or pick == 2:
                return NoneLeft()
            return Lost() if pick == 0 else Moved(left[0])
    raise AssertionError(w.action)
