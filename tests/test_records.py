"""Results records: written and read back as files, tables rendered from them into a page between markers."""

from __future__ import annotations

import json

import pytest

from landmix import records

SPEC = {
    "where": {"experiment": "converge"},
    "sort": ["config.seed"],
    "columns": [
        ["model", "{label}"],
        ["seed", "{config.seed}"],
        ["test NME", "{metrics.test_nme:.2%}"],
        ["interval", "[{metrics.ci.0:.0p}, {metrics.ci.1:.0p}]"],
    ],
}


def page_text(spec: dict, body: str = "stale\n") -> str:
    return (
        f"# Title\n\nProse before, by hand.\n\n<!-- table:nme {json.dumps(spec)} -->\n{body}"
        "<!-- /table:nme -->\n\nProse after, by hand.\n"
    )


def test_round_trip_keeps_every_field_and_fills_the_machine_ones(tmp_path):
    with records.run(
        "gen", "converge", {"seed": 1, "looks": ["full"]}, label="every step", root=tmp_path
    ) as rec:
        rec["metrics"]["test_nme"] = 0.0601
    rec2 = records.new_record(
        "gen", "rate", {"size": 128}, {"img_per_s": 91.0}, command="python bench/generate.py"
    )
    path = records.write_record(rec2, root=tmp_path)
    assert path == tmp_path / "gen" / "records.jsonl"
    got = records.read_records("gen", root=tmp_path)
    assert [r["experiment"] for r in got] == ["converge", "rate"]
    first = got[0]
    assert list(first)[: len(records.FIELDS)] == list(records.FIELDS)
    assert first["config"] == {"seed": 1, "looks": ["full"]} and first["metrics"] == {"test_nme": 0.0601}
    assert first["label"] == "every step" and first["host"] and first["cpus"] >= 1
    assert (
        first["started"] <= first["ended"] and len(first["load"]["start"]) == len(first["load"]["end"]) == 3
    )
    assert first["imported_from"] is None
    assert got[1]["command"] == "python bench/generate.py"


def test_a_run_that_fails_writes_nothing(tmp_path):
    with pytest.raises(RuntimeError), records.run("gen", "rate", root=tmp_path):
        raise RuntimeError("boom")
    assert records.read_records("gen", root=tmp_path) == []


def test_a_record_needs_a_page_and_an_experiment(tmp_path):
    with pytest.raises(ValueError, match="experiment"):
        records.write_record({"page": "gen"}, root=tmp_path)


def test_imported_figures_keep_their_empty_fields(tmp_path):
    records.write_record(
        {
            "page": "gen",
            "experiment": "converge",
            "label": "flat",
            "metrics": {"test_nme": 0.0693},
            "imported_from": "6f664fc",
        },
        root=tmp_path,
    )
    (rec,) = records.read_records("gen", root=tmp_path)
    assert rec["imported_from"] == "6f664fc"
    assert rec["commit"] is None and rec["ended"] is None and rec["load"] is None and rec["config"] is None


def test_table_rows_sorted_missing_fields_empty_and_a_mean_row():
    rows = [
        {
            "experiment": "converge",
            "label": "b",
            "config": {"seed": 2},
            "metrics": {"test_nme": 0.05, "ci": [0.4, 0.6]},
        },
        {"experiment": "converge", "label": "a", "config": {"seed": 1}, "metrics": {"test_nme": 0.0601}},
        {"experiment": "gap", "label": "not selected", "config": {"seed": 0}, "metrics": {"test_nme": 1.0}},
    ]
    table = records.render_table(rows, SPEC | {"mean": "two seeds"}).splitlines()
    assert table[0] == "| model | seed | test NME | interval |"
    assert table[2] == "| a | 1 | 6.01 % |  |"  # no interval recorded: an empty cell, not "None"
    assert table[3] == "| b | 2 | 5.00 % | [40, 60] |"
    assert table[4] == "| two seeds |  | 5.50 % |  |"  # seeds are counts: not averaged
    assert len(table) == 5


def test_where_accepts_lists_and_cells_escape_pipes_and_say_yes_or_no():
    rows = [
        {"experiment": "x", "label": "a|b", "config": {"k": 1, "kept": True}},
        {"experiment": "x", "label": "c", "config": {"k": 3, "kept": False}},
        {"experiment": "y", "label": "d", "config": {"k": 4, "kept": False}},
    ]
    spec = {"where": {"config.k": [1, 2]}, "columns": [["name", "{label}"], ["kept", "{config.kept}"]]}
    assert records.render_table(rows, spec).splitlines()[2:] == ["| a\\|b | yes |"]
    spec["where"] = [{"config.k": 1}, {"experiment": "y"}]  # either selection
    assert records.render_table(rows, spec).splitlines()[2:] == ["| a\\|b | yes |", "| d | no |"]


def test_a_list_of_templates_takes_the_first_the_record_fills_and_min_prints_minutes():
    rows = [
        {
            "experiment": "x",
            "label": "a",
            "metrics": {"mean_rate": 195.2, "rate": 180.0, "test_fr@10": 0.004},
        },
        {"experiment": "x", "label": "b", "metrics": {"rate": 82.4, "wall_s": 1148}},
        {"experiment": "x", "label": "c", "metrics": {"wall_s": 240.0}},
    ]
    spec = {
        "columns": [
            ["name", "{label}"],
            ["samples/s", ["{metrics.mean_rate:.0f}", "{metrics.rate:.0f}*"]],
            ["FR@10", "{metrics.test_fr@10:.1%}"],
            ["wall", "{metrics.wall_s:min}"],
        ]
    }
    assert records.render_table(rows, spec).splitlines()[2:] == [
        "| a | 195 | 0.4 % |  |",
        "| b | 82* |  | 19 min 8 s |",
        "| c |  |  | 4 min |",
    ]


def test_render_page_changes_the_table_and_nothing_else(tmp_path):
    page = tmp_path / "gen.md"
    page.write_text(page_text(SPEC))
    records.write_record(
        {
            "page": "gen",
            "experiment": "converge",
            "label": "flat",
            "config": {"seed": 0},
            "metrics": {"test_nme": 0.0693},
            "imported_from": "6f664fc",
        },
        root=tmp_path,
    )
    assert records.render_page(page) is True
    text = page.read_text()
    assert "stale" not in text and "| flat | 0 | 6.93 % |  |" in text
    expected = page_text(SPEC, records.render_table(records.read_records("gen", tmp_path), SPEC))
    assert text == expected
    assert records.render_page(page) is False  # up to date: rendering again is a no-op
    records.write_record(
        {
            "page": "gen",
            "experiment": "converge",
            "label": "every step",
            "config": {"seed": 1},
            "metrics": {"test_nme": 0.0641},
        },
        root=tmp_path,
    )
    assert records.main(["render", "--check", str(page)]) == 1
    assert records.main(["render", str(page)]) == 0
    new = page.read_text()
    before, after = text.split("<!-- /table:nme -->"), new.split("<!-- /table:nme -->")
    assert before[1] == after[1] and before[0].split("-->\n")[0] == after[0].split("-->\n")[0]
    assert "| every step | 1 | 6.41 % |  |" in new and records.main(["render", "--check", str(page)]) == 0


def test_a_broken_marker_says_which_table(tmp_path):
    with pytest.raises(ValueError, match="'nme' has no closing marker"):
        records.render_text('<!-- table:nme {"columns": [["a", "{label}"]]} -->\nrows\n', [])
    with pytest.raises(ValueError, match="'nme': its spec is not JSON"):
        records.render_text("<!-- table:nme {columns} -->\n<!-- /table:nme -->\n", [])


def test_records_sits_in_the_bottom_layer():
    import ast

    tree = ast.parse(open(records.__file__).read())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"landmix", "torch", "ray", "mlflow", "numpy"}


def test_the_command_line_says_what_is_wrong_and_exits_2(tmp_path, capsys):
    page = tmp_path / "gen.md"
    page.write_text("<!-- table:nme {not json} -->\n<!-- /table:nme -->\n")
    assert records.main(["render", str(page)]) == 2
    assert "its spec is not JSON" in capsys.readouterr().err
    assert records.main(["render", str(tmp_path / "absent.md")]) == 2
