"""Workplace shorthand spelled out, for comparing what people ask by meaning.

all-MiniLM-L6-v2 knows the words but not the chat shorthand of a workplace: "PTO allowance?"
sits at cosine 0.21 to "how many vacation days do I get", and "vacation allowance?" at 0.65.
``plain_words`` replaces the common abbreviations and clippings of office chat with the plain
words the model learned, so that ``core.gaps`` groups "PTO payout on leaving?" with "do I get
paid for unused vacation when I quit?" (0.47 -> 0.78).

The table holds general workplace usage, not any team's vocabulary, and leaves out shorthand
whose letters are also an everyday word or stand for several things in an office ("IT",
"PR", "PM", "comp"); ``bench/gap_grouping.py`` measures it on held-out handbooks.
"""

from __future__ import annotations

import re
from functools import lru_cache

SHORTHAND: dict[str, str] = {
    # time away and where people work
    "pto": "vacation",
    "ooo": "out of office",
    "wfh": "work from home",
    "loa": "leave of absence",
    "mat leave": "maternity leave",
    "pat leave": "paternity leave",
    # times and deadlines
    "eod": "end of day",
    "eow": "end of week",
    "cob": "close of business",
    "asap": "as soon as possible",
    "eta": "expected time",
    "tbd": "to be decided",
    # people and meetings
    "1:1": "one-on-one meeting",
    "1on1": "one-on-one meeting",
    "mgr": "manager",
    "mgmt": "management",
    "dept": "department",
    "devs": "developers",
    "perf review": "performance review",
    "okr": "objectives and key results",
    "okrs": "objectives and key results",
    "kpi": "key performance indicator",
    "kpis": "key performance indicators",
    "nda": "non-disclosure agreement",
    "dm": "direct message",
    "dms": "direct messages",
    # money
    "reimb": "reimbursement",
    "per diem": "daily allowance for meals",
    # accounts and tools
    "pw": "password",
    "pwd": "password",
    "passwd": "password",
    "2fa": "two-factor authentication",
    "mfa": "multi-factor authentication",
    "sso": "single sign-on",
    "repo": "repository",
    "repos": "repositories",
    "prod": "production",
    "env": "environment",
    "config": "configuration",
    "k8s": "kubernetes",
    "hw": "hardware",
    "sw": "software",
    # incidents and on-call
    "ack": "acknowledge",
    "acked": "acknowledged",
    "acks": "acknowledges",
    "sev": "severity",
    "rca": "root cause analysis",
    "sla": "service level agreement",
    "slo": "service level objective",
    # chat shorthand
    "w/": "with",
    "w/o": "without",
    "b/c": "because",
    "approx": "approximately",
    "info": "information",
    "msg": "message",
    "appt": "appointment",
    "req": "request",
}


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    keys = sorted(SHORTHAND, key=len, reverse=True)
    words = "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in keys)
    return re.compile(rf"(?<![\w/:-])(?:{words})(?![\w/:-])", re.IGNORECASE)


def plain_words(text: str) -> str:
    """``text`` with workplace shorthand spelled out ("PTO allowance?" -> "vacation
    allowance?"); anything else as it was."""
    return _pattern().sub(lambda m: SHORTHAND[" ".join(m.group(0).lower().split())], text)
