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
    return {
        ".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in package.rglob("*.py")
    }


def test_training_never_imports_the_sweep_that_drives_it():
    files = _module_files(ROOT / "platform" / "landmix")
    for module in (
        "landmix.train",
        "landmix.checkpoint",
        "landmix.models",
        "landmix.evaluate",
        "landmix.predict",
    ):
        assert not {m for m in _landmix_imports(files[module]) if m.startswith("landmix.sweep")}, module


# --- The layer table of docs/architecture.md, enforced whole ----------------------------------------------------

ARCHITECTURE = ROOT / "docs" / "architecture.md"
FRAMEWORK_FREE = "formats and labels"  # the bottom layer: no torch, Ray or MLflow either


def _layer_table() -> list[tuple[str, list[str], set[str]]]:
    """[(layer, [module names as written, `sources/` for a package], {modules marked coming})] in table order."""
    import re

    text = ARCHITECTURE.read_text()
    table = text[text.index("| layer | module") :].split("\n\n")[0].splitlines()[2:]
    layers: list[tuple[str, list[str], set[str]]] = []
    for row in table:
        layer, modules, owns = (c.strip() for c in row.strip().strip("|").split("|", 2))
        if layer:
            layers.append((layer, [], set()))
        names = re.findall(r"`([a-z_0-9/.]+)`", modules)
        layers[-1][1].extend(names)
        if "(coming)" in owns or "coming" in modules:
            layers[-1][2].update(names)
    return layers


def _layer_of() -> dict[str, int]:
    """Every module of the package -> the index of its layer; fails on a module the table does not name."""
    files = _module_files(ROOT / "platform" / "landmix")
    entries = [(i, name) for i, (_, names, _) in enumerate(_layer_table()) for name in names]
    found: dict[str, int] = {}
    for module in files:
        if module == "landmix":
            continue
        rel = module.removeprefix("landmix.")
        hits = [
            i
            for i, name in entries
            if rel == name.rstrip("/") or (name.endswith("/") and rel.startswith(name.rstrip("/") + "."))
        ]
        assert len(hits) == 1, (
            f"{module} must sit in exactly one row of docs/architecture.md's layer table: {hits}"
        )
        found[module] = hits[0]
    return found


def test_every_module_sits_in_the_layer_table_and_every_name_there_exists():
    layer_of = _layer_of()
    files = _module_files(ROOT / "platform" / "landmix")
    for _, names, coming in _layer_table():
        for name in names:
            exists = any(m.removeprefix("landmix.") == name.rstrip("/") for m in files)
            outside = name.endswith("/") and (ROOT / name).is_dir()  # jobs/: entry points beside the package
            if outside:
                continue
            assert exists or name in coming, (
                f"docs/architecture.md names `{name}`, which is not a module (mark it coming)"
            )
    assert layer_of  # the package was found


def test_imports_point_down_the_layer_table_only():
    """A module imports its own layer and the layers below it, never one above (docs/architecture.md)."""
    layers, layer_of = _layer_table(), _layer_of()
    files = _module_files(ROOT / "platform" / "landmix")
    wrong = []
    for module, level in layer_of.items():
        for imported in _landmix_imports(files[module]):
            target = imported if imported in layer_of else imported.rsplit(".", 1)[0]
            if target.startswith("landmix.") and target in layer_of and layer_of[target] > level:
                wrong.append(
                    f"{module} ({layers[level][0]}) imports {imported} ({layers[layer_of[target]][0]})"
                )
    assert not wrong, "\n".join(wrong)


def test_the_bottom_layer_needs_no_framework():
    layers, layer_of = _layer_table(), _layer_of()
    files = _module_files(ROOT / "platform" / "landmix")
    assert layers[0][0] == FRAMEWORK_FREE
    for module, level in layer_of.items():
        if level == 0:
            frameworks = {m for m in _landmix_imports(files[module]) if not m.startswith("landmix")}
            assert not frameworks, (module, frameworks)


def test_bench_scripts_stand_alone_and_write_nothing_into_the_package():
    """bench/ measures the platform: a script imports the package, never another script, and never names the
    package's folder (where a fitted file would be written: that is a library command's job)."""
    import ast

    scripts = sorted((ROOT / "bench").glob("*.py"))
    stems = {p.stem for p in scripts}
    for path in scripts:
        tree = ast.parse(path.read_text())
        imported = {
            a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        imported |= {
            n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        }
        assert not imported & stems, f"{path.name} imports {imported & stems} from bench/"
        assert "platform/landmix" not in path.read_text(), f"{path.name} names the package's folder"


def test_only_tracking_and_the_registry_talk_to_mlflow():
    files = _module_files(ROOT / "platform" / "landmix")
    talking = {
        m for m, path in files.items() if any(i.split(".")[0] == "mlflow" for i in _landmix_imports(path))
    }
    assert talking <= {"landmix.tracking", "landmix.registry"}, talking
