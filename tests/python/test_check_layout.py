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


def python_function(name, body_lines):
    body = "".join(f"    x{i} = '{{'  # }} {i}\n" for i in range(body_lines))
    return f"def {name}():\n{body}\n\n"


def test_a_long_function_a_long_file_and_a_large_binary_crate_are_named(tmp_path):
    lib = tmp_path / "crates" / "foramen-x" / "src"
    lib.mkdir(parents=True)
    (lib / "lib.rs").write_text(function("short", 78) + function("too_long", 120) + "trait T {\n    fn f();\n}\n")
    big = tmp_path / "crates" / "foramen" / "src"
    big.mkdir(parents=True)
    # 7 files of 400 lines: each under 600, together over 2,500.
    for i in range(7):
        (big / f"m{i}.rs").write_text("// line\n" * 400)
    code, out = run(tmp_path)
    assert code == 1
    assert "crates/foramen-x/src/lib.rs:82: fn too_long is 122 lines (limit 80)" in out
    assert "fn short" not in out
    assert "crates/foramen/src: 2800 lines (limit 2500)" in out
    (lib / "lib.rs").write_text("// x\n" * 650)
    code, out = run(tmp_path)
    assert "crates/foramen-x/src/lib.rs: 650 production lines (limit 600)" in out


def test_test_code_counts_for_functions_and_files_but_not_production_lines(tmp_path):
    lib = tmp_path / "crates" / "foramen-x" / "src"
    lib.mkdir(parents=True)
    tests = "#[cfg(test)]\nmod tests {\n" + function("short_test", 70) + "}\n"
    (lib / "lib.rs").write_text("// production\n" * 520 + tests)
    (lib / "tests.rs").write_text("// test code\n" * 590)
    e2e = tmp_path / "tests" / "cli"
    e2e.mkdir(parents=True)
    (e2e / "main.rs").write_text(function("short_e2e", 70))
    assert run(tmp_path) == (0, "")
    (lib / "more_tests.rs").write_text(function("long_test", 150))
    (e2e / "main.rs").write_text(function("long_e2e", 90) + "// e2e\n" * 601)
    (lib / "lib.rs").write_text("// production\n" * 520 + tests + "// t\n" * 20)
    code, out = run(tmp_path)
    assert code == 1
    assert "crates/foramen-x/src/lib.rs: 616 lines with its tests (limit 600)" in out
    assert "crates/foramen-x/src/more_tests.rs:1: fn long_test is 152 lines (limit 80)" in out
    assert "tests/cli/main.rs: 694 lines (limit 600)" in out
    assert "tests/cli/main.rs:1: fn long_e2e is 92 lines (limit 80)" in out


def test_python_files_and_functions_are_held_to_the_same_limits(tmp_path):
    pkg = tmp_path / "models" / "training" / "foramen_train"
    pkg.mkdir(parents=True)
    (pkg / "train.py").write_text(python_function("short", 79) + python_function("too_long", 90))
    tests = tmp_path / "models" / "training" / "tests"
    tests.mkdir(parents=True)
    (tests / "test_train.py").write_text(python_function("test_short", 60))
    code, out = run(tmp_path)
    assert code == 1
    assert out == "models/training/foramen_train/train.py:83: def too_long is 91 lines (limit 80)\n"
    (tests / "test_train.py").write_text(python_function("test_long", 650))
    code, out = run(tmp_path)
    assert "models/training/tests/test_train.py: 653 lines (limit 600)" in out
    assert "models/training/tests/test_train.py:1: def test_long is 651 lines (limit 80)" in out


def test_the_real_workspace_passes():
    code, out = run(REPO)
    assert code == 0, out
