"""``flagops refs``: text (three sections), github (annotations for CI) and json (the contract)."""

from __future__ import annotations

from ..loading import FLAG_SUFFIX, FLAGS_DIR
from ..refs import RefsReport
from .base import Reporters, annotation, json_document, lines


def text(report: RefsReport) -> str:
    out = [f"unreferenced flags ({len(report.unreferenced)}):"]
    out += [f"  {k}" for k in report.unreferenced] or ["  none"]
    out.append(f"unknown keys ({len(report.unknown)}):")
    for u in report.unknown:
        hint = f' (did you mean "{u.suggestion}"?)' if u.suggestion else ""
        out.append(f'  {u.path}:{u.line}: "{u.key}" is not a flag{hint}')
    if not report.unknown:
        out.append("  none")
    out.append(f"references ({len(report.references)} flags):")
    for key, locs in report.references.items():
        shown = ", ".join(f"{loc.path}:{loc.line}" for loc in locs[:3])
        more = f" +{len(locs) - 3} more" if len(locs) > 3 else ""
        out.append(f"  {key}: {shown}{more}")
    return "\n".join(out) + "\n"


def github(report: RefsReport) -> str:
    """A warning on each unknown key where it is used, and on each flag no code uses."""
    found = [annotation("warning", u.path, f'"{u.key}" is not a flag'
                        + (f' (did you mean "{u.suggestion}"?)' if u.suggestion else ""),
                        line=u.line, title="flagops refs: unknown key") for u in report.unknown]
    found += [annotation("warning", f"{FLAGS_DIR}/{key}{FLAG_SUFFIX}", f"no code references {key}",
                         line=1, title="flagops refs: unreferenced flag") for key in report.unreferenced]
    return lines(found)


def json_report(report: RefsReport) -> str:
    return json_document(report.to_dict())


def summary(report: RefsReport, flags: int) -> str:
    return (f"{report.files} files scanned: {len(report.references)} of {flags} flags referenced, "
            f"{len(report.unknown)} unknown key(s)")


REPORTERS = Reporters(text=text, github=github, json=json_report)
