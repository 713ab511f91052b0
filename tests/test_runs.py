"""Run folders: only soo-interp's own folders of the same kind are replaced or resumed; killed
and interrupted writes leave nothing behind (or are cleaned by the next run); SIGTERM is one
line and exit 143."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soo_interp.cli import main
from soo_interp.errors import OutputExistsError
from soo_interp.runs import MARKER, check_out_dir, claim_dir, output_dir, remove_stale, run_kind

REPO = Path(__file__).resolve().parents[1]


def _write(kind, path, overwrite=False, text="x"):
    with output_dir(path, overwrite, kind=kind) as tmp:
        (tmp / "result.txt").write_text(text)


def test_every_run_folder_is_marked_with_its_kind(tmp_path):
    _write("measure", tmp_path / "m")
    assert run_kind(tmp_path / "m") == "measure"
    assert json.loads((tmp_path / "m" / MARKER).read_text())["writer"] == "soo-interp"
    assert run_kind(tmp_path) is None


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_soo_interp_did_not_write_is_never_replaced(tmp_path, overwrite):
    user = tmp_path / "thesis"
    (user / "chapter1").mkdir(parents=True)
    (user / "chapter1" / "draft.tex").write_text("years of work")
    with pytest.raises(OutputExistsError, match="not written by soo-interp"):
        _write("evaluate", user, overwrite=overwrite)
    assert (user / "chapter1" / "draft.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_another_kind_of_run_is_refused_even_with_overwrite(tmp_path):
    _write("probe", tmp_path / "p", text="probes")
    for kind in ("measure", "train"):
        with pytest.raises(OutputExistsError, match="holds a soo-interp probe run, not a"):
            _write(kind, tmp_path / "p", overwrite=True)
        with pytest.raises(OutputExistsError, match="probe run"):
            check_out_dir(tmp_path / "p", kind=kind, resume=True)
    assert (tmp_path / "p" / "result.txt").read_text() == "probes"


def test_same_kind_needs_overwrite_and_is_then_replaced(tmp_path):
    _write("sweep", tmp_path / "s", text="old")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        _write("sweep", tmp_path / "s", text="new")
    _write("sweep", tmp_path / "s", overwrite=True, text="new")
    assert (tmp_path / "s" / "result.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_a_training_folder_with_checkpoints_suggests_resume(tmp_path):
    run = claim_dir(tmp_path / "t", "train")
    (run / "seed3" / "checkpoints" / "step-000002").mkdir(parents=True)
    with pytest.raises(OutputExistsError, match="continue it with --resume"):
        check_out_dir(run, kind="train")
    assert check_out_dir(run, kind="train", resume=True) == run


def test_the_current_folder_and_its_parents_are_refused(tmp_path, monkeypatch):
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    for target in (".", "..", str(tmp_path)):
        with pytest.raises(OutputExistsError, match="current folder"):
            check_out_dir(target, overwrite=True, kind="measure")


def test_an_unwritable_or_impossible_out_fails_before_any_work(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        check_out_dir(tmp_path / "file.txt" / "out", kind="measure")
    with pytest.raises(OutputExistsError, match="not writable"):
        check_out_dir("/proc/soo-interp-test/out", kind="measure")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_a_failing_write_leaves_nothing(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with output_dir(tmp_path / "o", kind="measure") as tmp:
            (tmp / "half.txt").write_text("half")
            1 / 0
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    names = [f".o.partial-{dead}-abc", f".o.old-{dead}", f".run.json.tmp-{dead}-xyz",
             f".step-000004.tmp-{dead}"]
    for n in names[:2] + names[3:]:
        (tmp_path / n).mkdir()
        (tmp_path / n / "x").write_text("x")
    (tmp_path / names[2]).write_text("{")
    (tmp_path / f".o.partial-{live}-keep").mkdir()
    (tmp_path / "notes.partial-1").write_text("not ours: no leading dot")
    removed = remove_stale(tmp_path)
    assert sorted(p.name for p in removed) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".o.partial-{live}-keep", "notes.partial-1"])


_SLOW_MEASURE = [sys.executable, "-m", "soo_interp", "measure", "--model", "organism",
                 "--batch-size", "1", "--out", "o"]


def _slow_pairs(folder: Path) -> Path:
    path = folder / "pairs.jsonl"
    lines = [json.dumps({"self": f"you want the vase {i}", "other": f"bob wants the vase {i}"})
             for i in range(3000)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _start_and_wait_for_partial(tmp_path: Path) -> subprocess.Popen:
    pairs = _slow_pairs(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(_SLOW_MEASURE + ["--pairs", str(pairs)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".o.partial-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "measure never started writing"
        time.sleep(0.2)
    time.sleep(1.0)  # well inside the forward passes
    return proc


@pytest.mark.slow
def test_sigterm_during_measure_is_one_line_exit_143_and_leaves_nothing(tmp_path):
    proc = _start_and_wait_for_partial(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    lines = [ln for ln in err.splitlines() if ln.strip() and "measuring" not in ln]
    assert proc.returncode == 143, err
    assert lines == ["soo-interp measure: interrupted by SIGTERM"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl"]


@pytest.mark.slow
def test_kill_9_leaves_a_partial_folder_that_the_next_run_removes(tmp_path):
    proc = _start_and_wait_for_partial(tmp_path)
    proc.kill()
    proc.wait()
    assert list(tmp_path.glob(".o.partial-*"))  # kill -9 cannot be caught
    code = main(["measure", "--model", "organism", "--layers", "0", "--components", "attn",
                 "--out", str(tmp_path / "o")])
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "pairs.jsonl"]


def _holder(path: Path) -> subprocess.Popen:
    """Another process that claims `path` and keeps it."""
    code = ("import sys, time; from soo_interp.runs import lock_run; lock_run(sys.argv[1]); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_folder_is_claimed_by_one_process_and_a_dead_one_holds_nothing(tmp_path):
    out = tmp_path / "o"
    proc = _holder(out)
    try:
        with pytest.raises(OutputExistsError, match=rf"another soo-interp process \(pid {proc.pid}\)"):
            _write("measure", out)
        assert not out.exists() and not list(tmp_path.glob(".o.partial*"))
    finally:
        proc.kill()  # kill -9: no cleanup runs in it, its lock file stays
        proc.wait()
    assert (tmp_path / ".o.lock").exists()
    _write("measure", out)  # the kernel dropped the dead process's claim
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]  # lock file gone with the claim


@pytest.mark.slow
def test_two_measure_runs_into_one_folder_at_once_one_is_refused(tmp_path):
    """Both used to exit 0, the first result silently replaced."""
    argv = [sys.executable, "-m", "soo_interp", "measure", "--model", "organism", "--layers", "0",
            "--out", str(tmp_path / "o")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in done) == [0, 2], done
    err = next(e for rc, e in done if rc == 2).strip()
    assert len(err.splitlines()) == 1 and ("being written by another" in err
                                           or "already exists" in err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_a_symlinked_out_is_written_through_and_a_dangling_one_refused(tmp_path):
    """--overwrite used to replace the user's symlink with a folder; a dangling link left a
    full hidden partial folder behind."""
    target = tmp_path / "disk" / "results"
    target.parent.mkdir()
    _write("measure", target, text="first")
    link = tmp_path / "o"
    link.symlink_to(target)
    _write("measure", link, overwrite=True, text="second")
    assert link.is_symlink() and (target / "result.txt").read_text() == "second"
    dangling = tmp_path / "d"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputExistsError, match="symlink to .*nowhere, which does not exist"):
        _write("measure", dangling)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "disk", "o"]


def test_a_literal_tilde_is_expanded_on_the_command_line_and_refused_in_python(tmp_path,
                                                                              monkeypatch):
    """A quoted `~` used to create a folder named `~` (and `rm -rf ~` then deletes home)."""
    with pytest.raises(OutputExistsError, match="literal '~'"):
        _write("measure", Path("~") / "o")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["measure", "--model", "organism", "--layers", "0", "--components", "attn",
                 "--out", "~/m"]) == 0
    assert (tmp_path / "home" / "m" / "soo.parquet").is_file() and not (tmp_path / "~").exists()
