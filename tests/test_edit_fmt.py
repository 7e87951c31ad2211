"""fmt on the edits' round-trip document: any field order gives the one layout, comments with their field."""

from __future__ import annotations

import random
import re

from flagops.fmt import format_flag_text
from flagops.loading import parse_yaml
from test_editing import COMMENTED

KILLED = """\
killed:
  reason: errors
  at: '2026-12-01T21:40:12Z'
  by: ops@dezky.eu
  state: rollout
  pct: 60
"""


def groups(text: str) -> list[list[str]]:
    """Each top-level field with the comment lines above it and its indented lines."""
    out: list[list[str]] = []
    pending: list[str] = []
    for line in text.rstrip("\n").split("\n"):
        if re.match(r"^[a-z]+:", line):
            out.append(pending + [line])
            pending = []
        elif line.startswith("  ") and out and not pending:
            out[-1].append(line)
        else:
            pending.append(line)
    out[-1] += pending  # the comment lines at the end stay at the end
    return out


def test_every_field_order_formats_to_the_canonical_file() -> None:
    canonical = COMMENTED.replace("# keep this note at the end\n", KILLED + "# keep this note at the end\n")
    assert format_flag_text(canonical) == canonical
    rng = random.Random(11)
    parts = groups(canonical)
    body, last = parts[1:-1], parts[-1]  # the modeline group stays first, the closing note last
    for _ in range(40):
        rng.shuffle(body)
        shuffled = "\n".join(line for group in [parts[0][1:] if len(parts[0]) > 1 else parts[0], *body, last]
                             for line in group) + "\n"
        shuffled = shuffled.replace("description: ", "description:    ", 1)
        formatted = format_flag_text(shuffled)
        assert formatted == canonical, shuffled
        doc, _ = parse_yaml("f.yaml", shuffled.encode())
        assert doc is not None


def test_a_file_opening_with_blank_lines_and_axes_in_any_order() -> None:
    text = ("\n\n# owner first\nowner: o@dezky.eu\nkey: x\nstate: targeted\ndescription: X\nscope:   # who\n"
            "  # the partner\n  partnerSlugs:\n  - nordcloud\n  plans: [ free,   business ]   # cheap ones\n")
    assert format_flag_text(text) == (
        "# yaml-language-server: $schema=../schema/flag.schema.json\nkey: x\ndescription: X\n\n\n"
        "# owner first\nowner: o@dezky.eu\nstate: targeted\nscope:   # who\n  plans: [free, business]   # cheap ones\n"
        "  # the partner\n  partnerSlugs: [nordcloud]\n")
