"""`python -m migration IN.json [-o OUT.json]`: convert a workflow file, print what changed and what did not.

Works without ComfyUI: run it from the pack's folder (custom_nodes/<pack>) with any Python 3.11+.
Exit status 0 when every node of theirs was replaced, 1 when some were left as they were, 2 on an unreadable file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .convert import convert_workflow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migration", description=__doc__.splitlines()[0])
    parser.add_argument("workflow", type=Path, help="a UI-format or API-format workflow JSON file")
    parser.add_argument("-o", "--output", type=Path,
                        help="where to write the converted workflow (default: <name>.animateflow.json beside it)")
    parser.add_argument("--report-json", type=Path, help="also write the report as JSON")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.workflow.read_text(encoding="utf-8"))
        converted, report = convert_workflow(data)
    except (OSError, ValueError) as err:
        print(f"{args.workflow}: {err}", file=sys.stderr)
        return 2
    except (AttributeError, IndexError, KeyError, TypeError) as err:  # workflow-shaped, with odd entries
        print(f"{args.workflow}: an entry the converter cannot read ({type(err).__name__}: {err}); save the "
              "workflow again from the editor it was made in", file=sys.stderr)
        return 2
    output = args.output or args.workflow.with_name(args.workflow.stem + ".animateflow.json")
    if output.resolve() == args.workflow.resolve():
        print(f"{output}: refusing to overwrite the original; pass another -o", file=sys.stderr)
        return 2
    temporary = output.with_name(output.name + ".part")
    temporary.write_text(json.dumps(converted, indent=2, ensure_ascii=False), encoding="utf-8")
    temporary.replace(output)
    if args.report_json:
        args.report_json.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    print("\n".join(report.lines()))
    print(f"wrote {output}")
    return 1 if report.unknown else 0


if __name__ == "__main__":
    sys.exit(main())
