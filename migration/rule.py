"""One row of the mapping table (`Rule`) and what its value translation works on (`Context`).

One `Rule` per node type of the leading AnimateDiff pack (ADE_…) or VideoHelperSuite (VHS_…). The editor's
node replacement (registration.py) and the file converter (convert.py) are both built from these rules, so they
agree: what the editor can express (copy a widget, set a value, move a link) comes from `copy`, `fixed`, `links`
and `outputs`; what only a converter can do (translate a value, warn about a setting with no equivalent) is the
rule's `translate`, run by the converter after the copies.

Pure Python: no ComfyUI import, so the converter runs anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .targets import TARGETS


@dataclass
class Context:
    """What a rule's `translate` sees and changes for one node."""
    old: dict[str, Any]
    """Their widget values by name (saved values over their defaults)."""
    new: dict[str, Any]
    """Our widget values by name (the copies and fixed values, to be adjusted)."""
    connected: set[str]
    """Their link inputs that are connected (current names)."""
    links: dict[str, str | None]
    """Their link input → our input (None: no equivalent); a translate may redirect one."""
    notes: list[str] = field(default_factory=list)
    link_types: dict[str, str | None] = field(default_factory=dict)
    """Their connected inputs → the type of what arrives there, where the workflow or the host says (UI links carry
    it; an API file's only where the host knows the sending node); None: unknown."""

    def warn(self, text: str) -> None:
        self.notes.append(text)

    def unless_default(self, name: str, default: Any, consequence: str) -> None:
        """Warn that `name` has no equivalent when it is not at its harmless value."""
        value = self.old.get(name, default)
        if value != default:
            self.warn(f"{name} = {value!r} has no equivalent here; {consequence}")


@dataclass(frozen=True)
class Rule:
    old: str
    target: str
    layouts: tuple[tuple[str, ...], ...]
    """Widget names of saved workflows' positional `widgets_values`, newest first (older versions had fewer or
    other widgets). The first is what the editor's replacement reads."""
    defaults: dict[str, Any]
    """Their widget defaults: what an API file that lists only changed inputs means by leaving one out."""
    copy: dict[str, str] = field(default_factory=dict)
    """Their widget → our widget, the value copied as it is."""
    fixed: dict[str, Any] = field(default_factory=dict)
    """Our widget → a value set whatever theirs held."""
    links: dict[str, str | None] = field(default_factory=dict)
    """Their link input → our input; None: no equivalent (reported when connected)."""
    outputs: dict[int, int | None] = field(default_factory=dict)
    """Their output slot → ours; None: no equivalent (links from it are reported and removed)."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Input names of older versions → the current name."""
    extra_widgets: frozenset[str] = frozenset()
    """Their widgets that only some configurations have (VideoHelperSuite's per-format widgets)."""
    ui_only: frozenset[str] = frozenset()
    """Their widgets that hold editor state (previews, upload buttons), not settings: dropped without a word."""
    translate: Callable[[Context], None] | None = None
    tail: Callable[[dict[str, Any], list[Any]], None] | None = None
    """For a node whose saved list ends with a variable number of values (VideoHelperSuite's per-format widgets):
    reads the values after the first layout's into the widget dict."""

    def __post_init__(self) -> None:
        target = TARGETS[self.target]
        names = set(target.widget_names())
        sockets = {name for name, _ in target.sockets}
        bad = [n for n in (*self.copy.values(), *self.fixed) if n not in names]
        bad += [n for n in self.links.values() if n is not None and n not in sockets | names]
        if bad:
            raise ValueError(f"{self.old} → {self.target}: no such input {bad}")

    def widget_names(self) -> tuple[str, ...]:
        """Every widget name any version of their node had (current names)."""
        seen: dict[str, None] = {}
        for layout in self.layouts:
            seen.update((self.aliases.get(n, n), None) for n in layout)
        return tuple(seen)
