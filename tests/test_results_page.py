"""The study's results page: regenerated from a sweep's report, the job's wall time over every run of it, the
reader's notes kept."""

from __future__ import annotations


def test_results_page_is_regenerated_from_the_report_and_keeps_the_notes(tmp_path):
    import os
    import time

    from landmix import results_page

    root, report_dir = tmp_path / "sweep", tmp_path / "report"
    report_dir.mkdir()
    files = {
        "summary_md": report_dir / "summary.md",
        "figure": report_dir / "nme_vs_n_real.png",
        "summary_csv": report_dir / "summary.csv",
    }
    files["summary_md"].write_text("The claim **holds** ...\n\n![NME against n_real](nme_vs_n_real.png)\n")
    files["figure"].write_bytes(b"\x89PNG fake")
    files["summary_csv"].write_text("a,b\n1,2\n")
    # a first run cut off after writing one cell 60 s in, then a second one that finished
    first = results_page.record_job_start(root, ["python", "jobs/tune_mix.py", "--preset", "study"])
    (root / "cells").mkdir()
    cell = root / "cells" / "real_only-n10-s0.json"
    cell.write_text("{}")
    os.utime(cell, (first + 60, first + 60))
    lines = (root / results_page.JOB_RUNS).read_text()
    second = time.time() + 100
    argv = '["python", "jobs/tune_mix.py", "--preset", "study", "--results-page", "study.md"]'
    (root / results_page.JOB_RUNS).write_text(
        lines + f'{{"argv": {argv}, "start": {second}}}\n{{"start": {second}, "end": {second + 30}}}\n'
    )
    runs = results_page.job_runs(root)
    assert [r["finished"] for r in runs] == [False, True]
    assert [round(r["seconds"]) for r in runs] == [60, 30]
    page = tmp_path / "docs" / "study.md"
    results_page.write_results_page(
        page, "The study", root, files, ["real faces: 1207"], {"compute_total_seconds": 5}
    )
    text = page.read_text()
    assert "python jobs/tune_mix.py --preset study --results-page study.md" in text  # as last run
    assert "1 min 30 s" in text  # the two runs together
    assert "](study/nme_vs_n_real.png)" in text and (page.parent / "study" / "nme_vs_n_real.png").exists()
    assert "The claim **holds**" in text and "real faces: 1207" in text
    page.write_text(text + "\n" + results_page.NOTES_HEADING + "\n\nWhat the figure does not show.\n")
    files["summary_md"].write_text("The claim **does not hold** ...\n")
    results_page.write_results_page(page, "The study", root, files, [], {})
    again = page.read_text()
    assert "does not hold" in again and "holds** ..." not in again
    assert again.endswith(results_page.NOTES_HEADING + "\n\nWhat the figure does not show.\n")
