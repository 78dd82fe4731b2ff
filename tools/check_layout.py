"""Checks the size rules of docs/ARCHITECTURE.md on the workspace's Rust and Python.

- no production Rust file over 600 lines (a file's `#[cfg(test)]` module and
  `tests.rs` / `*_tests.rs` files are test code, not counted), and no Rust file at all, test code
  included (the end-to-end tests in `tests/` too), over 600 lines;
- no Rust function over 80 lines, test code included (the end-to-end tests in
  `tests/` too);
- the binary crate's `src/` under 2,500 lines;
- no Python file (the training recipe, its tests, tools, benchmarks and the checks of
  the binary) over 600 lines, and no function over 80 lines.

Exit status 1 with one line per breach; `--report` also gives the binary crate's size;
`--root DIR` checks another workspace. Run by `make lint`.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_LINES = 600
MAX_FN_LINES = 80
MAX_BINARY_LINES = 2500
# Rust outside crates/*/src: end-to-end tests and benchmarks (all of it test code).
RUST_ELSEWHERE = ("tests", "benches")
PYTHON_DIRS = ("models/training", "tools", "benches", "tests/python")
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def production_lines(path: Path) -> list[str]:
    """The file's lines up to its `#[cfg(test)]` module (tests sit at the end); none of
    a test module's own file (`tests.rs`, `<topic>_tests.rs`)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.name == "tests.rs" or path.name.endswith("_tests.rs"):
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


def long_functions(rel: Path, lines: list[str]) -> list[str]:
    """One breach per Rust function in `lines` over the limit."""
    return [
        f"{rel}:{line}: fn {name} is {length} lines (limit {MAX_FN_LINES})"
        for name, line, length in functions(lines)
        if length > MAX_FN_LINES
    ]


def rust_errors(root: Path) -> tuple[list[str], int]:
    """Breaches of the Rust rules, and the binary crate's line count."""
    errors = []
    binary_lines = 0
    for path in sorted((root / "crates").glob("*/src/**/*.rs")):
        rel = path.relative_to(root)
        all_lines = path.read_text(encoding="utf-8").splitlines()
        lines = production_lines(path)
        if rel.parts[1] == "foramen":
            binary_lines += len(all_lines)
        if len(lines) > MAX_FILE_LINES:
            errors.append(f"{rel}: {len(lines)} production lines (limit {MAX_FILE_LINES})")
        elif len(all_lines) > MAX_FILE_LINES:
            errors.append(f"{rel}: {len(all_lines)} lines with its tests (limit {MAX_FILE_LINES})")
        errors += long_functions(rel, all_lines)
    for path in sorted(p for d in RUST_ELSEWHERE for p in (root / d).glob("**/*.rs")):
        rel = path.relative_to(root)
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_FILE_LINES:
            errors.append(f"{rel}: {len(lines)} lines (limit {MAX_FILE_LINES})")
        errors += long_functions(rel, lines)
    return errors, binary_lines


def python_errors(root: Path) -> list[str]:
    """Breaches of the Python rules: file and function length."""
    errors = []
    files = sorted({p for d in PYTHON_DIRS for p in (root / d).glob("**/*.py")})
    for path in files:
        rel = path.relative_to(root)
        if any(part.startswith(".") or part in ("runs", "__pycache__") for part in rel.parts):
            continue
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > MAX_FILE_LINES:
            errors.append(f"{rel}: {n} lines (limit {MAX_FILE_LINES})")
        for node in ast.walk(ast.parse(text, filename=str(rel))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FN_LINES:
                    errors.append(f"{rel}:{node.lineno}: def {node.name} is {length} lines (limit {MAX_FN_LINES})")
    return errors


def main(argv: list[str]) -> int:
    """Prints each breach; 1 if there is any."""
    report = "--report" in argv
    root = Path(argv[argv.index("--root") + 1]) if "--root" in argv else DEFAULT_ROOT
    errors, binary_lines = rust_errors(root)
    if binary_lines > MAX_BINARY_LINES:
        errors.append(f"crates/foramen/src: {binary_lines} lines (limit {MAX_BINARY_LINES})")
    errors += python_errors(root)
    for e in errors:
        print(e)
    if report:
        print(f"binary crate src/: {binary_lines} lines")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
