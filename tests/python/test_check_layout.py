"""tools/check_layout.py, the size rules `make lint` enforces, on small made-up workspaces."""

import subprocess
import sys

from conftest import REPO

CHECK = REPO / "tools" / "check_layout.py"


def run(root):
    out = subprocess.run([sys.executable, str(CHECK), "--root", str(root)], capture_output=True, text=True, check=False)
    return out.returncode, out.stdout


def function(name, body_lines):
    body = "".join(f'    let x{i} = "{{ not a brace }}"; // }} {i}\n' for i in range(body_lines))
    return f"pub fn {name}() {{\n{body}}}\n\n"


def test_a_long_function_a_long_file_and_a_large_binary_crate_are_named(tmp_path):
    lib = tmp_path / "crates" / "foramen-x" / "src"
    lib.mkdir(parents=True)
    (lib / "lib.rs").write_text(function("short", 80) + function("too_long", 120) + "trait T {\n    fn f();\n}\n")
    big = tmp_path / "crates" / "foramen" / "src"
    big.mkdir(parents=True)
    # 7 files of 400 lines: each under 600, together over 2,500.
    for i in range(7):
        (big / f"m{i}.rs").write_text("// line\n" * 400)
    code, out = run(tmp_path)
    assert code == 1
    assert "crates/foramen-x/src/lib.rs:84: fn too_long is 122 lines (limit 100)" in out
    assert "fn short" not in out
    assert "crates/foramen/src: 2800 lines (limit 2500)" in out
    (lib / "lib.rs").write_text("// x\n" * 650)
    code, out = run(tmp_path)
    assert "crates/foramen-x/src/lib.rs: 650 production lines (limit 600)" in out


def test_tests_do_not_count_and_the_real_workspace_passes(tmp_path):
    lib = tmp_path / "crates" / "foramen-x" / "src"
    lib.mkdir(parents=True)
    tests = "#[cfg(test)]\nmod tests {\n" + function("long_test", 150) + "}\n"
    (lib / "lib.rs").write_text(function("ok", 10) + tests)
    (lib / "tests.rs").write_text("// test code\n" * 900)
    assert run(tmp_path) == (0, "")
    code, out = run(REPO)
    assert code == 0, out
