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


def test_search_aliases_and_advanced_inputs_follow_the_host(server):
    """Where the host's schema has them, the editor's search finds our nodes by the names users know and the
    rarely used inputs are folded away; where it has not, the pack still registers (nothing is sent)."""
    from conftest import pack_module

    common = pack_module("nodes.common")
    schema = pack_module("host.schema")
    info = server.object_info()
    ours = {name: spec for name, spec in info.items() if name.startswith(node_reference.PREFIX)}
    advanced = {name: [key for section in spec["input"].values() for key, entry in section.items()
                       if len(entry) > 1 and isinstance(entry[1], dict) and entry[1].get("advanced")]
                for name, spec in ours.items()}
    if not schema.supports("search_aliases"):
        assert not any(spec.get("search_aliases") for spec in ours.values())
    else:
        assert all(spec.get("search_aliases") for spec in ours.values()), "a node without search aliases"
        for node, alias in (("VideoCombine", "Video Combine"), ("LoadVideo", "Load Video"),
                            ("LoadMotionModule", "AnimateDiff"), ("ApplyMotionModule", "Use Evolved Sampling")):
            assert alias in info[common.node_id(node)]["search_aliases"], (node, alias)
    if schema.supports("advanced"):
        assert {"crf", "gif_dither", "extra_crf"} <= set(advanced["AnimateFlow_VideoCombine"])
        assert "images" not in advanced["AnimateFlow_VideoCombine"]
    else:
        assert not any(advanced.values())
