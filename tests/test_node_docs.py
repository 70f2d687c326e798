"""The editor's help pages (web/docs/<node id>.md): one for every node the pack registers, current with the
schemas (scripts/node_reference.py writes them from the same /object_info as README's node reference)."""

from __future__ import annotations

from scripts import node_reference


def test_every_registered_node_has_a_current_help_page(server):
    expected = node_reference.help_pages(server.object_info())
    assert expected, "the pack registered no nodes"
    present = {path.name: path.read_text() for path in node_reference.DOCS.glob(f"{node_reference.PREFIX}*.md")}
    assert sorted(present) == sorted(expected), "a node without a page, or a page without a node: run " \
                                                "scripts/node_reference.py"
    stale = sorted(name for name, text in expected.items() if present[name] != text)
    assert not stale, f"stale help pages {stale}: run scripts/node_reference.py"
    for name, text in expected.items():
        assert "## Inputs" in text and "## Example" in text and "```json" in text, name
