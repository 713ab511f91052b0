"""The committed RL reports recompute from the CSVs committed beside them: the report folder is
laid out again as a protocol folder (training logs, `value*`, `traps`, `finetune`) and
`write_report` must give the same report.md, line for line, but for the line naming the folder."""
import shutil
from pathlib import Path

import pytest

from soo_interp.rl.protocol import POLICY
from soo_interp.rl.report import write_report

REPORTS = Path(__file__).parent.parent / "reports" / "rl_physical_deception"


def as_protocol(report: Path, runs: Path) -> None:
    """The committed files of `report` where `rl report` reads them under `runs`."""
    for log in report.glob("log_*.csv"):
        run = runs / log.stem.removeprefix("log_")
        run.mkdir(parents=True)
        shutil.copy(log, run / "log.csv")
        (run / f"{POLICY}.json").write_text("{}")  # find_runs lists runs by their policy file
    for value in report.glob("value_run*.json"):
        sfx = value.stem.removeprefix("value_run")
        out = runs / f"value{sfx}"
        out.mkdir()
        for name in ("value", "states", "value_pairs"):
            shutil.copy(report / f"{name}{sfx}.csv", out / f"{name}.csv")
    for name, files in (("traps", ("traps.csv", "traps_run.json")),
                        ("finetune", ("finetune.csv", "finetune_run.json"))):
        if (report / files[0]).exists():
            (runs / name).mkdir()
            shutil.copy(report / files[0], runs / name / files[0])
            shutil.copy(report / files[1], runs / name / "run.json")


@pytest.mark.parametrize("name", ["episodes_40000", "control_keep_close"])
def test_committed_report_recomputes(name, tmp_path):
    report = REPORTS / name
    as_protocol(report, tmp_path / "runs")
    lines = (write_report(tmp_path / "runs") / "report.md").read_text().splitlines()
    committed = (report / "report.md").read_text().splitlines()
    assert len(lines) == len(committed)
    differ = [(a, b) for a, b in zip(lines, committed) if a != b]
    assert len(differ) == 1 and differ[0][0].startswith("Runs under"), differ[:3]
