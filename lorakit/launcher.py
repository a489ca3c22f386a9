"""Start ranks from a notebook: `launch(worker, *args)` runs worker(rank, world_size, *args) in fresh processes."""
import logging
import os
import pathlib
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _rank_file(out_dir: str, rank: int, kind: str) -> str:
    """Where a rank leaves its output ("log"), its result ("pt") or its traceback ("err")."""
    return os.path.join(out_dir, f"rank{rank}.{kind}")


def _entry(rank: int, worker: Callable, world_size: int, port: int, backend: str, timeout_s: float,
           out_dir: str, args: tuple) -> None:
    """One rank: join the process group, run the worker, save what it returns."""
    log = open(_rank_file(out_dir, rank, "log"), "w")  # the ranks' own prints and warnings
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    for stream in (sys.stdout, sys.stderr):  # line by line: a rank killed later keeps what it printed
        stream.reconfigure(line_buffering=True)
    torch.set_num_threads(1)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size, timeout=timedelta(seconds=timeout_s))
    try:
        result = worker(rank, world_size, *args)
        torch.save(result, _rank_file(out_dir, rank, "pt"))
    except BaseException:  # note when and how this rank failed: the first failure is the cause
        text = f"{time.time()!r}\n{traceback.format_exc()}"
        err = _rank_file(out_dir, rank, "err")
        with open(err + ".part", "w") as f:  # whole or not at all: this rank may be stopped any moment
            f.write(text)
        os.replace(err + ".part", err)
        raise
    finally:
        dist.destroy_process_group()
    # Done and saved: leave without the interpreter's teardown. After FSDP2 on gloo, torch 2.11 (Colab's)
    # aborted there in about 1 launch in 27 ("terminate called without an active exception", SIGABRT, no
    # Python frame left), turning a finished launch into a failed one; 0 in 110 launches with this exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def launch(worker: Callable, *args, world_size: int = 2, backend: str = "gloo",
           timeout_s: float = 120.0) -> list:
    """Run worker(rank, world_size, *args) in `world_size` fresh processes; return each rank's result.

    The worker must be importable (a module-level function), since spawned processes re-import it.
    A rank that raises makes this raise RankError with the traceback of the rank that failed first (the
    others are terminated); a rank killed by a signal, with that signal and the ends of the ranks' logs.
    After the worker returns, its rank exits with os._exit (no atexit handlers, no teardown): the worker
    must finish and close whatever it writes.
    Ranks still running after `timeout_s` are terminated and a TimeoutError is raised: nothing is left
    running.
    """
    with tempfile.TemporaryDirectory() as out_dir:
        port = free_port()
        ctx = mp.start_processes(_entry, args=(worker, world_size, port, backend, timeout_s, out_dir, args),
                                 nprocs=world_size, join=False, start_method="spawn")
        deadline = time.monotonic() + timeout_s
        spawn_log = logging.getLogger("torch.multiprocessing.spawn")
        level = spawn_log.level
        spawn_log.setLevel(logging.ERROR)  # no "Terminating process" warnings
        try:
            while not ctx.join(timeout=max(0.1, min(1.0, deadline - time.monotonic()))):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"ranks still running after {timeout_s} s")
        except ProcessException as err:  # raise the cause, not a later victim's error
            raise _failure(out_dir, [p.exitcode for p in ctx.processes], err) from None
        finally:
            for p in ctx.processes:
                if p.is_alive():
                    p.terminate()
                p.join()
            spawn_log.setLevel(level)
        return [torch.load(_rank_file(out_dir, r, "pt"), weights_only=False)
                for r in range(world_size)]


class RankError(RuntimeError):
    """A rank of a launch failed: the message is its traceback, or, for a rank killed by a signal, the
    signal and the ends of the ranks' logs."""


def _failure(out_dir: str, exitcodes: list[int | None], err: Exception) -> Exception:
    """Why a launch failed. A rank killed by a signal of its own (a C++ abort, the OOM killer; not the
    SIGTERM with which the others are stopped) could write no traceback, and the others' errors follow
    from it: name it, with the ends of the ranks' logs. Else the traceback of the rank that raised first."""
    world_size = len(exitcodes)
    raised = _first_failure(out_dir, world_size)
    killed = [f"rank {rank} of {world_size} was killed by {_signal_name(-code)}" for rank, code in enumerate(exitcodes)
              if code is not None and code < 0 and code != -signal.SIGTERM
              and not os.path.exists(_rank_file(out_dir, rank, "err"))]
    if killed:
        then = f"\n(then {raised})" if raised else ""
        return RankError(f"{'; '.join(killed)}{then}\n{_log_tails(out_dir, world_size)}")
    return raised or RankError(f"{err}\n{_log_tails(out_dir, world_size)}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _log_tails(out_dir: str, world_size: int, lines: int = 20) -> str:
    """The last lines each rank printed (its rank*.log): where a C++ abort leaves its message."""
    tails = []
    for r in range(world_size):
        path = pathlib.Path(_rank_file(out_dir, r, "log"))
        text = path.read_text(errors="replace").strip() if path.exists() else ""
        tails.append(f"rank {r} log, last lines:\n" + "\n".join(text.splitlines()[-lines:] or ["(empty)"]))
    return "\n".join(tails)


def _first_failure(out_dir: str, world_size: int) -> RankError | None:
    """The error of the rank that failed first (others often fail because it did), if any."""
    failures = []
    for r in range(world_size):
        path = _rank_file(out_dir, r, "err")
        if os.path.exists(path):
            with open(path) as f:
                when, _, tb = f.read().partition("\n")
            failures.append((float(when), r, tb))
    if not failures:
        return None
    _, rank, tb = min(failures)
    return RankError(f"rank {rank} of {world_size} failed:\n{tb.strip()}")
