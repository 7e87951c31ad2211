"""``flagops compile``: the JSON document on stdout, and the summary and warnings on stderr."""

from __future__ import annotations

from typing import Any

from .base import Reporters, json_document


def text(result: Any) -> str:
    """Nothing: the text output of a compile is its summary, on stderr."""
    return ""


def json_report(result: Any) -> str:
    """``{"out": DIR, "environments": [...]}``."""
    return json_document({"out": str(result.out), "environments": [e.to_dict() for e in result.environments]})


def summary(environments: list[Any]) -> str:
    """One line per environment, then how many tenants each flag is on for."""
    out = []
    for e in environments:
        on = sum(1 for v in e.enabled.values() if v)
        out.append(f"{e.environment}: {e.tenants} tenants x {e.flags} flags -> {e.path} "
                   f"({on} flag(s) on for someone; revision {e.revision or 'none'})")
    keys = sorted({k for e in environments for k in e.enabled})
    if keys and environments:
        headers = ["enabled for", *(e.environment for e in environments)]
        rows = [[k, *(f"{e.enabled.get(k, 0)}/{e.tenants}" for e in environments)] for k in keys]
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            out.append("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                        for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(out)


REPORTERS = Reporters(text=text, json=json_report)
