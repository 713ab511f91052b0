"""Every committed ladder report is what its shipped per-seed outcomes give: runs.csv,
table.csv, answer.csv and report.md recomputed from outcomes.parquet and run.json alone."""
import io
from pathlib import Path

import pandas as pd
import pytest

from soo_interp.experiments.ladder import recompute

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = sorted(p.parent for p in (ROOT / "reports").rglob("ladder.json"))


def test_there_are_committed_ladders():
    assert FOLDERS


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: str(p.relative_to(ROOT / "reports")))
def test_committed_ladder_report_is_recomputed_from_its_outcomes(folder):
    runs, table, ans, markdown = recompute(folder)
    for name, df in (("runs.csv", runs), ("table.csv", table), ("answer.csv", ans)):
        got = pd.read_csv(io.StringIO(df.to_csv(index=False)))
        pd.testing.assert_frame_equal(got, pd.read_csv(folder / name), obj=name)
    assert markdown == (folder / "report.md").read_text()
