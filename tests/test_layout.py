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


def _landmix_imports(path: Path) -> set[str]:
    """Every landmix module a file imports, at its top or inside a function (`from landmix import x` -> x)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "landmix":
            found |= {f"landmix.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m.split(".")[0] in ("landmix", "torch", "ray", "mlflow")}


def _module_files(package: Path) -> dict[str, Path]:
    return {".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in package.rglob("*.py")}  # fmt: skip


def test_import_direction_formats_and_translators_know_nothing_of_training():
    """The formats, schemes, metrics and label translators sit below everything else: they import only each
    other (no training, checkpoint, model or sweep code, no torch, Ray or MLflow), so they can be read, tested
    and reused alone. Training never imports the sweep that drives it."""
    files = _module_files(ROOT / "platform" / "landmix")
    base = {"landmix.schemes", "landmix.metrics", "landmix.quarantine", "landmix.translate", "landmix.sources"}
    base |= {m for m in files if m.startswith("landmix.sources.")}
    for module in sorted(base):
        imported = _landmix_imports(files[module])
        outside = {m for m in imported if not any(m == b or m.startswith(b + ".") for b in base)}
        assert not outside, (module, outside)
    for module in ("landmix.train", "landmix.checkpoint", "landmix.models", "landmix.evaluate", "landmix.predict"):
        assert not {m for m in _landmix_imports(files[module]) if m.startswith("landmix.sweep")}, module
