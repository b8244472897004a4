"""The benches' tables read their own JSON (the generator ablation's re-labelling rounds, in chain order), and
their records are what the results pages' tables render."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

import pytest

from landmix import records

BENCH = Path(__file__).resolve().parents[1] / "bench"
GENERATE_PAGE = BENCH.parent / "docs" / "results" / "generate.md"


@pytest.fixture(scope="module")
def ablation():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("generator_ablation")
    finally:
        sys.path.remove(str(BENCH))


def run(test_nme: float, translator: str = "", relabelled_with: str = "") -> dict:
    r = {
        "test_nme": test_nme,
        "val_nme": test_nme - 0.001,
        "test_nme_helen": test_nme - 0.002,
        "test_nme_afw": test_nme + 0.005,
        "best_epoch": 50,
        "epochs": 100,
        "translator": translator,
        "label_adapted": {"-1": {"test_nme": 0.046}},
    }
    return r | ({"relabelled_with": relabelled_with} if relabelled_with else {})


def test_relabel_rounds_follow_the_chain_not_the_key_order(ablation):
    gap = {
        "accuracy": 0.77,
        "accuracy_ci": [0.73, 0.81],
        "accuracy_synthetic": 0.75,
        "accuracy_synthetic_ci": [0.7, 0.8],
        "auc": 0.85,
    }
    # another --translator run: not a round
    row = {
        "look": ["a"],
        "generator_version": "gx",
        "gap": gap,
        "converge_chain-bbb": run(0.0488, translator="t/1.npz"),  # round 2, stored first
        "converge": run(0.0601, relabelled_with="t/0.npz"),
        "converge_chain-aaa": run(0.0492, translator="t/0.npz", relabelled_with="t/1.npz"),
        "converge_chain-zzz": run(0.0700, translator="t/other.npz"),
    }
    assert [b for b, _ in ablation.relabel_rounds(row)] == [
        "converge",
        "converge_chain-aaa",
        "converge_chain-bbb",
    ]
    lines = ablation.table({"full": row}).splitlines()
    rounds = [line for line in lines if line.startswith("| full | ") and line.split("|")[2].strip().isdigit()]
    assert [line.split("|")[3].strip() for line in rounds] == [
        "the generator-fitted stage",
        "chain-aaa",
        "chain-bbb",
    ]
    assert "4.88 % (4.68, 5.38)" in rounds[2] and "4.60 %" in rounds[2]


def test_no_rounds_table_without_rounds(ablation):
    row = {"look": ["a"], "generator_version": "gx", "converge": run(0.06)}
    assert ablation.relabel_rounds(row) == [("converge", row["converge"])]
    assert ablation.relabel_rounds({"look": ["a"]}) == []


def page_table(name: str, page: Path = GENERATE_PAGE) -> str:
    """A page's marked table `name`, emptied: its opening marker (with the spec) and its closing one."""
    m = re.search(rf"<!-- table:{name} .*?-->\n", page.read_text(), re.S)
    assert m, f"{page} has no table {name!r}"
    return m.group(0) + f"<!-- /table:{name} -->\n"


def test_a_relabelling_round_is_a_record_the_generate_page_renders(ablation, tmp_path):
    args = argparse.Namespace(
        seed=3, gen_size=160, labels="translated", augment_strength=None, relabel_rounds=2
    )
    row = {
        "look": ["a"],
        "generator_version": "gx",
        "pose": "wide",
        "gap": {"accuracy": 0.8},
        "converge_chain-aaa": run(0.0492, translator="t/0.npz") | {"n": 10000},
    }
    rec = ablation.train_record("full", row, "converge_chain-aaa", args, round_=1)
    assert rec["config"]["translator"] == "chain-aaa" and rec["metrics"]["label_adapted"] == {
        "all": {"test_nme": 0.046}
    }
    assert rec["metrics"]["classifier"] == 0.8 and rec["experiment"] == "converge"
    records.write_record(rec, root=tmp_path)
    table = records.render_text(page_table("rounds"), records.read_records("generate", tmp_path))
    assert "| 3 | 1 | 4.92 % | 4.72 / 5.42 | 4.82 % | 50 of 100 |" in table


def test_a_classifier_figure_is_a_record_the_generate_page_renders(ablation, tmp_path):
    args = argparse.Namespace(seed=2, gen_size=160)
    gap = {"accuracy": 0.758, "accuracy_ci": [0.713, 0.797], "auc": 0.824, "n": 100, "repeats": 2}
    row = {
        "look": ["a"],
        "generator_version": "g592ac7c8fe",
        "pose": "wide",
        "gap": gap,
        "stats": {"noise": 1.9},
    }
    records.write_record(ablation.gap_record("full", row, args), root=tmp_path)
    table = records.render_text(page_table("classifier"), records.read_records("generate", tmp_path))
    assert "| 2 | 75.8 % | [71, 80] | 0.824 |" in table
