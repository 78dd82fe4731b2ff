"""Checks the size rules of docs/ARCHITECTURE.md on the workspace's production Rust.

- no production file over 600 lines (a file's `#[cfg(test)]` module and `tests.rs`
  files are test code, not counted);
- no function over 100 lines (the style target is 80);
- the binary crate's `src/` under 2,500 lines.

Exit status 1 with one line per breach; `--report` also lists every function over 80
lines; `--root DIR` checks another workspace. Run by `make lint`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_LINES = 600
MAX_FN_LINES = 100
STYLE_FN_LINES = 80
MAX_BINARY_LINES = 2500
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def production_lines(path: Path) -> list[str]:
    """The file's lines up to its `#[cfg(test)]` module (tests sit at the end)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.name == "tests.rs":
        return []
    for i, line in enumerate(lines):
        if line.strip() == "#[cfg(test)]" and i + 1 < len(lines) and lines[i + 1].startswith("mod tests"):
            return lines[:i]
    return lines


def functions(lines: list[str]) -> list[tuple[str, int, int]]:
    """(name, first line, length) of each function with a body, by brace counting."""
    out = []
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            code = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j].split("//")[0])
            if not started and ";" in code and "{" not in code:
                break  # a declaration without a body (trait method)
            depth += code.count("{") - code.count("}")
            started = started or "{" in code
            if started and depth <= 0:
                out.append((m.group(6), i + 1, j - i + 1))
                break
            j += 1
        i += 1
    return out


def main(argv: list[str]) -> int:
    report = "--report" in argv
    root = Path(argv[argv.index("--root") + 1]) if "--root" in argv else DEFAULT_ROOT
    errors = []
    binary_lines = 0
    for path in sorted((root / "crates").glob("*/src/**/*.rs")):
        rel = path.relative_to(root)
        lines = production_lines(path)
        if rel.parts[1] == "foramen":
            binary_lines += len(path.read_text(encoding="utf-8").splitlines())
        if len(lines) > MAX_FILE_LINES:
            errors.append(f"{rel}: {len(lines)} production lines (limit {MAX_FILE_LINES})")
        for name, line, length in functions(lines):
            if length > MAX_FN_LINES:
                errors.append(f"{rel}:{line}: fn {name} is {length} lines (limit {MAX_FN_LINES})")
            elif report and length > STYLE_FN_LINES:
                print(f"{rel}:{line}: fn {name} is {length} lines (style target {STYLE_FN_LINES})")
    if binary_lines > MAX_BINARY_LINES:
        errors.append(f"crates/foramen/src: {binary_lines} lines (limit {MAX_BINARY_LINES})")
    for e in errors:
        print(e)
    if report:
        print(f"binary crate src/: {binary_lines} lines")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
