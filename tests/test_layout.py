"""Guard: `platform/` is a folder, not a package, so the standard library's `platform` still works."""

import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_stdlib_platform_not_shadowed_from_repo_root():
    code = "import platform; print(platform.system()); import landmix; print(landmix.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    system, path = out.stdout.split()
    assert system == platform.system()
    assert Path(path).resolve() == ROOT / "platform" / "landmix" / "__init__.py"
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_console_script_lists_commands():
    exe = Path(sys.executable).parent / "landmix"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "ingest" in out.stdout and "train" in out.stdout
