"""The MLflow UI in a real browser: open an experiment's runs table and read what the page shows.

Headless Chromium (Debian's `chromium` package) driven by Playwright for Python, never a downloaded
browser build (`make browser` installs chromium as root; playwright comes with the dev extras).
`check_runs_page` is the page check, used by tests/test_tune_mix_job.py on a real sweep; point it at
any experiment, e.g.

    check_runs_page("http://127.0.0.1:5000", "1", "landmix-smoke", ["real_only-n10-s0", ...], Path("ui.png"))

A server with `landmix mlflow-server --auth` asks the browser for a login (HTTP basic auth): pass
`login=("admin", password)`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _rows_by_index(page) -> dict[str, dict[str, str]]:
    """The runs grid as {row index: {column id: cell text}}; ag-grid splits a row into pinned and centre parts."""
    return page.evaluate(
        """() => {
            const rows = {};
            for (const row of document.querySelectorAll('[role="row"][row-index]')) {
                const cells = rows[row.getAttribute('row-index')] ??= {};
                for (const cell of row.querySelectorAll('[role="gridcell"][col-id]')) {
                    cells[cell.getAttribute('col-id')] = cell.innerText.trim();
                }
            }
            return rows;
        }"""
    )


def check_runs_page(
    url: str,
    experiment_id: str,
    parent: str,
    children: list[str],
    screenshot: Path,
    metric: str = "nme",
    timeout_ms: int = 60_000,
    login: tuple[str, str] | None = None,
) -> dict[str, float]:
    """Open the experiment's runs table, show `metric`, expand `parent`, and return {run name: metric}.

    Fails (AssertionError) unless the parent and every child are listed with a numeric metric; the child
    rows must appear only once the parent is expanded (they are nested under it). Saves a screenshot.
    The values are as displayed, so rounded: compare them with pytest.approx(..., rel=1e-2).
    `login` (username, password) answers the server's HTTP basic-auth prompt, as a user types it.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # Tall enough for every row: the grid only draws the rows in view.
            page = browser.new_page(
                viewport={"width": 1600, "height": max(900, 400 + 34 * (len(children) + 1))},
                http_credentials={"username": login[0], "password": login[1]} if login else None,
            )
            page.goto(f"{url}/#/experiments/{experiment_id}/runs", wait_until="domcontentloaded")
            parent_row = page.locator('[role="row"]', has_text=parent).first
            parent_row.wait_for(timeout=timeout_ms)  # the React app has fetched and drawn the runs
            assistant = page.get_by_role("button", name="Close")
            if assistant.count():
                assistant.first.click()  # the assistant side panel would cover the metric columns
            metric_col = f"metrics.`{metric}`"
            if not page.locator(f'[col-id="{metric_col}"]').count():
                page.get_by_role("button", name="Columns").click()
                page.get_by_role("dialog").get_by_text(metric, exact=True).click()
                page.keyboard.press("Escape")
                page.locator(f'[role="gridcell"][col-id="{metric_col}"]').first.wait_for(timeout=timeout_ms)
            if children:
                assert not page.get_by_text(children[0], exact=True).count(), (
                    "child runs shown before expanding"
                )
                parent_row.locator("button").first.click()  # the expander in the Run Name cell
                page.get_by_text(children[-1], exact=True).first.wait_for(timeout=timeout_ms)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
            rows = _rows_by_index(page)
        finally:
            browser.close()
    shown = {}
    for cells in rows.values():
        name = cells.get("attributes.`Run Name`", "").splitlines()
        if name and cells.get(metric_col):
            shown[name[-1]] = float(cells[metric_col])
    missing = [n for n in [parent, *children] if n not in shown]
    assert not missing, f"runs not listed with {metric} on the page: {missing} (page shows {shown})"
    return shown


def browser_missing() -> str:
    """Why the browser check cannot run here ("" when it can)."""
    if importlib.util.find_spec("playwright") is None:
        return "needs playwright (the dev extras: make test installs it)"
    if not CHROMIUM.exists():
        return "needs /usr/bin/chromium: `make browser` as root (apt-get install -y chromium)"
    return ""
