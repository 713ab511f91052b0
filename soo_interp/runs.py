"""Files in and out: run folders (ownership markers, atomic writes, all-or-nothing output
folders, stale temporaries), seeding, `run.json` metadata, and reading the text files a user
hands over (pairs, neutral texts, configs, suites) with one-line errors."""
from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import json
import os
import platform
import random
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import ConfigError, OutputExistsError, SooError

RUN_JSON = "run.json"
MARKER = ".soo-interp-run.json"  # in every run folder: soo-interp wrote it, and for which kind
# Temporary names of interrupted writes: .NAME.partial-PID-*, .NAME.old-PID, .NAME.tmp-PID*
_STALE = re.compile(r"^\..*\.(?:partial|old|tmp)-(\d+)")
_TRACKED_LIBRARIES = (
    "soo-interp", "torch", "transformers", "nnsight", "transformer-lens", "peft", "numpy",
    "pandas", "scikit-learn", "tokenizers", "safetensors",
)


def check_seed(seed: Any) -> None:
    """A seed every RNG accepts: a whole number from 0 to 2**63 - 1."""
    from numbers import Integral

    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed {str(seed)[:40]} is not a whole number from 0 to 2**63 - 1; "
                          "e.g. --seed 0")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run is repeatable on one machine."""
    import numpy as np
    import torch

    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _TRACKED_LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


_COMMAND: list[str] | None = None  # the command line being run, set by `recording_command`


@contextlib.contextmanager
def recording_command(argv: list[str]) -> Iterator[None]:
    """Record `argv` as the command line in every run.json written during the block (the CLI
    called as `main(argv)` runs a command other than `sys.argv`)."""
    global _COMMAND
    old, _COMMAND = _COMMAND, list(argv)
    try:
        yield
    finally:
        _COMMAND = old


def run_metadata(config: dict[str, Any], seed: int | None, argv: list[str] | None = None) -> dict:
    """What `run.json` holds: config, seed, command line and library versions."""
    return {
        "config": config,
        "seed": seed,
        "command": list(argv if argv is not None else _COMMAND or sys.argv),
        "versions": library_versions(),
        "platform": platform.platform(),
    }


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-{os.getpid()}-")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would follow the file into place
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` for a library writer (parquet, savefig, safetensors);
    rename it over `path` only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporary files and folders (`.NAME.partial-PID-*`, `.NAME.old-PID`,
    `.NAME.tmp-PID*`) that a process no longer running left in `folder` (kill -9, power loss);
    a live process's are kept. Returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _STALE.match(p.name)
        if m and not _alive(int(m[1])):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            removed.append(p)
    return removed


_HELD: dict[str, tuple[int, Path]] = {}  # absolute run folder -> (locked fd, its lock file)


def _lock_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def lock_run(path: str | Path) -> bool:
    """Claim run folder `path` for this process: an exclusive `flock` on `.NAME.lock` beside
    it, which the kernel drops when the process ends (also by kill -9), so a dead process never
    holds a folder. Another living process's claim is refused with one line. Returns False if
    this process already held it (claims nest)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent runs are not detected there
        return False
    path = Path(path).absolute()
    if str(path) in _HELD:
        return False
    lock = _lock_file(path)
    check_writable(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 20).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputExistsError(f"{path} is being written by another soo-interp process "
                                    f"(pid {holder}); wait for it to finish (or stop it), or "
                                    "choose another --out") from None
        try:  # the lock file may have been removed by its last holder meanwhile: retry
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _HELD[str(path)] = (fd, lock)
    return True


def release_run(path: str | Path) -> None:
    """Give up this process's claim on `path` (and remove its lock file)."""
    fd, lock = _HELD.pop(str(Path(path).absolute()), (None, None))
    if fd is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


@contextlib.contextmanager
def claimed(path: str | Path) -> Iterator[None]:
    """`lock_run(path)` for the block (released after, unless an outer block holds it)."""
    mine = lock_run(path)
    try:
        yield
    finally:
        if mine:
            release_run(path)


atexit.register(lambda: [release_run(p) for p in list(_HELD)])


def run_kind(path: str | Path) -> str | None:
    """The kind of soo-interp run folder `path` is ('measure', 'train', ...), from its marker
    file; None for a folder soo-interp did not write."""
    try:
        return str(json.loads((Path(path) / MARKER).read_text())["kind"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_run(folder: Path, kind: str) -> None:
    """Write the marker that says soo-interp owns `folder` and what kind of run it holds."""
    atomic_write_json(Path(folder) / MARKER, {"kind": kind, "writer": "soo-interp",
                                              "version": library_versions()["soo-interp"]})


def check_writable(path: str | Path, what: str = "--out") -> None:
    """Fail now, with one line, if `path` (a folder, maybe not yet existing) cannot be created:
    probes the nearest existing ancestor with a temporary folder that is removed at once."""
    path = Path(path).absolute()
    anc = path
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise OutputExistsError(f"cannot create {what} {path}: {anc} is a file, not a folder; "
                                f"choose another {what}")
    try:
        os.rmdir(tempfile.mkdtemp(dir=anc, prefix=f".soo-interp-probe-{os.getpid()}-"))
    except OSError as e:
        raise OutputExistsError(f"cannot write {what} {path}: {anc} is not writable "
                                f"({e.strerror}); choose a writable {what}") from None


def _refuse_enclosing(path: Path) -> None:
    here, target = Path.cwd().resolve(), path.resolve()
    if target == here or target in here.parents or target == Path.home().resolve():
        raise OutputExistsError(f"--out {path} is the current folder, one above it or the home "
                                "folder; soo-interp never replaces those: name a new sub-folder")


def check_out_dir(path: str | Path, overwrite: bool = False, *, kind: str,
                  resume: bool = False) -> Path:
    """Check, before any work, that a `kind` run may be written (or resumed) at `path`.

    A new or empty folder is fine. An existing folder is only ever replaced (`overwrite`) or
    resumed if soo-interp wrote it for the same kind of run (its marker file says so); a user's
    folder, the current folder and other kinds of runs are refused. A symlink to a folder
    stands for that folder (the run is written into it; the link stays) and the returned path
    is the folder's; a dangling link and an unexpanded `~` are refused."""
    path = Path(path)
    if path.parts and path.parts[0].startswith("~"):
        raise OutputExistsError(f"output {path} starts with a literal '~' (the shell did not "
                                "expand it: quoted, from a config, or HOME unset); give the "
                                "full path, e.g. $HOME/...")
    if path.is_symlink():
        if not path.exists():
            raise OutputExistsError(f"output {path} is a symlink to {os.readlink(path)}, which "
                                    "does not exist; create that folder or remove the link")
        path = path.resolve()
    _refuse_enclosing(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output {path} is a file; choose a folder for --out")
    check_writable(path)
    if not path.exists() or not any(p for p in path.iterdir() if not _STALE.match(p.name)):
        return path
    found = run_kind(path)
    if found is None:
        raise OutputExistsError(f"output folder {path} exists and was not written by soo-interp "
                                "(no run marker); it is never replaced or resumed: choose another "
                                "--out")
    if found != kind:
        raise OutputExistsError(f"output folder {path} holds a soo-interp {found} run, not a "
                                f"{kind} run; choose another --out")
    if not (overwrite or resume):
        hint = ("continue it with --resume, or pass --overwrite to discard it"
                if (path / "checkpoints").is_dir() or any(path.glob("seed*/checkpoints"))
                else "pass --overwrite (overwrite=True) to replace it, or choose another --out")
        raise OutputExistsError(f"output folder {path} already exists; {hint}")
    return path


def check_resume_or_overwrite(resume: bool, overwrite: bool) -> None:
    """A run is continued (`resume`) or discarded (`overwrite`), never both (`--overwrite` used
    to be ignored silently)."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other (one continues the "
                          "run, the other discards it); give only one")


def claim_dir(path: str | Path, kind: str, overwrite: bool = False) -> Path:
    """Create `path` as an empty, marked `kind` run folder for a run that writes in place
    (training), replacing an earlier `kind` run only with `overwrite`. The other ways to claim
    a folder: `claim_resumable` (a run that adds to it), `output_dir` (all or nothing) and
    `claimed` (the lock alone, for a block)."""
    path = check_out_dir(path, overwrite, kind=kind)
    lock_run(path)  # held until the process ends or an enclosing `claimed` block does
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    remove_stale(path.parent)
    mark_run(path, kind)
    return path


def claim_resumable(path: str | Path, kind: str) -> Path:
    """Claim `path` for a `kind` run that a rerun resumes and that adds to the folder in place
    (sweep, search, verdict, an RL protocol): new, empty, or an earlier `kind` run (a user's
    folder or another kind of run is refused); held until the process ends or an enclosing
    `claimed` block does."""
    path = check_out_dir(path, kind=kind, resume=True)
    lock_run(path)
    path.mkdir(parents=True, exist_ok=True)
    if run_kind(path) is None:
        mark_run(path, kind)
    return path


@contextlib.contextmanager
def output_dir(path: str | Path, overwrite: bool = False, *, kind: str) -> Iterator[Path]:
    """All-or-nothing output folder: work happens in a hidden sibling, renamed into place at the
    end. On any error the sibling is removed and an existing folder is left untouched. Stale
    siblings of killed runs are removed first; the folder is marked as a `kind` run."""
    final = check_out_dir(path, overwrite, kind=kind)
    final.parent.mkdir(parents=True, exist_ok=True)
    with claimed(final):  # a second run into the same folder at once is refused
        final = check_out_dir(path, overwrite, kind=kind)  # as it is now that it is ours
        remove_stale(final.parent)
        tmp = Path(tempfile.mkdtemp(dir=final.parent,
                                    prefix=f".{final.name}.partial-{os.getpid()}-"))
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # a run folder as mkdir makes it, not 0700
            mark_run(tmp, kind)
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)


MAX_INPUT_ENV = "SOO_INTERP_MAX_INPUT_MB"  # the limit on input text files (`--max-input-mb`)
MAX_INPUT_MB = 64.0


def max_input_bytes() -> int:
    """The size limit on a user's input text file: $SOO_INTERP_MAX_INPUT_MB MB, default 64."""
    raw = os.environ.get(MAX_INPUT_ENV) or MAX_INPUT_MB
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb > 0:
        raise ConfigError(f"{MAX_INPUT_ENV}={raw!r} is not a size in MB; give a number > 0, "
                          "e.g. 256")
    return int(mb * 2**20)


def read_user_text(path: str | Path, what: str = "file",
                   error: type[SooError] = ConfigError) -> str:
    """The UTF-8 text of `path` (a UTF-8 BOM is dropped), or `error` naming the file, what is
    wrong and the fix. Only regular files are read (a FIFO would block, a device never end),
    and at most `max_input_bytes()` of them, checked before reading."""
    import stat

    path = Path(path).expanduser()
    if not path.exists():
        raise error(f"{what} {path} does not exist; check the path")
    if path.is_dir():
        raise error(f"{what} {path} is a folder; give the file itself")
    limit = max_input_bytes()
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} {path} is not a regular file (a pipe, device or socket); save "
                        "the input to a file and give that")
        with path.open("rb") as f:  # a file that grows while read is still bounded
            data = f.read(limit + 1)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}; check its permissions") from None
    if max(st.st_size, len(data)) > limit:
        raise error(f"{what} {path} is {max(st.st_size, len(data)) / 2**20:.1f} MB, over the "
                    f"{limit / 2**20:g} MB limit on input files; raise it with --max-input-mb "
                    f"(or {MAX_INPUT_ENV}) if it is meant to be that large")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise error(f"{what} {path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} on line "
                    f"{line}); save it as UTF-8") from None


def write_run_json(folder: Path, config: dict[str, Any], seed: int | None,
                   argv: list[str] | None = None, **extra: Any) -> Path:
    meta = run_metadata(config, seed, argv)
    meta.update(extra)
    out = Path(folder) / RUN_JSON
    atomic_write_json(out, meta)
    return out
