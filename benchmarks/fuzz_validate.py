"""A long fuzz run of ``netlab validate``: thousands of mutants of the shipped scenarios (and of
one file in the Kubernetes documentation's style), each judged in a worker process with a time
limit and a memory limit, and the counts by outcome.

    .venv/bin/python benchmarks/fuzz_validate.py --count 10000 --seed 1
    .venv/bin/python benchmarks/fuzz_validate.py --count 10000 --save /tmp/findings

Outcomes: valid; invalid (every diagnostic located, with a hint, printable); unlocated (a
diagnostic without its place or hint); crash (an exception escaped: the CLI's "unexpected",
exit 4, or a worker that died); hang (no verdict within --timeout seconds); memory (the
--memory limit was hit). Anything but valid and invalid is a finding: --save writes each one
there; a minimal reproducer of it belongs in tests/unit/fuzz_cases/. Exit status 1 if there
was any finding. No root needed; nothing is built.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
import time
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tooling.mutate import (  # noqa: E402  (after the path is set)
    CRASH,
    HANG,
    INVALID,
    MEMORY,
    OUTCOMES,
    VALID,
    Verdict,
    judge,
    mutants,
)


class _Hang(Exception):
    pass


def _ring(signum: int, frame: FrameType | None) -> None:
    raise _Hang


def _worker_setup(memory_mib: int) -> None:
    limit = memory_mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _ring)


def _judge(label: str, content: bytes, timeout: int) -> tuple[str, Verdict, float]:
    start = time.perf_counter()
    signal.alarm(timeout)
    try:
        verdict = judge(content)
    except _Hang:
        verdict = Verdict(HANG, f"no verdict within {timeout} s")
    except MemoryError:
        verdict = Verdict(MEMORY, "the memory limit was hit")
    finally:
        signal.alarm(0)
    return label, verdict, time.perf_counter() - start


def run(args: argparse.Namespace) -> dict[str, object]:
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    slowest = (0.0, "")
    stream = mutants(args.seed)
    save = Path(args.save) if args.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    done = 0
    while done < args.count:
        batch = [next(stream) for _ in range(min(args.batch, args.count - done))]
        contents = dict(batch)
        pool = ProcessPoolExecutor(args.workers, initializer=_worker_setup, initargs=(args.memory,))
        futures: list[tuple[str, Future[tuple[str, Verdict, float]]]] = [
            (label, pool.submit(_judge, label, content, args.timeout)) for label, content in batch
        ]
        for label, future in futures:
            try:
                _, verdict, seconds = future.result()
            except BrokenProcessPool:
                verdict, seconds = Verdict(CRASH, "the worker process died"), 0.0
            counts[verdict.outcome] += 1
            slowest = max(slowest, (seconds, label))
            if verdict.outcome not in (VALID, INVALID):
                examples.setdefault(verdict.outcome, []).append(
                    f"{label}: {verdict.detail.strip()[-300:]}"
                )
                if save:
                    (save / f"{label.replace(':', '-')}.yaml").write_bytes(contents[label])
        pool.shutdown(cancel_futures=True)
        done += len(batch)
        if args.progress:
            print(f"  {done}/{args.count} {dict(counts)}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    return {
        "seed": args.seed,
        "mutants": done,
        "seconds": round(elapsed, 1),
        "outcomes": {o: counts[o] for o in OUTCOMES},
        "slowest": {"seconds": round(slowest[0], 3), "mutant": slowest[1]},
        "findings": {o: e[:5] for o, e in examples.items()},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=10000, help="mutants to judge (default 10000)")
    p.add_argument("--seed", type=int, default=1, help="the mutants' random seed (default 1)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--timeout", type=int, default=10, help="seconds per mutant (default 10)")
    p.add_argument("--memory", type=int, default=2048, help="MiB per worker (default 2048)")
    p.add_argument("--batch", type=int, default=500, help="mutants per pool (default 500)")
    p.add_argument("--save", help="directory to write every finding's input to")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--progress", action="store_true", help="counts so far on stderr")
    args = p.parse_args()
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        total = int(str(report["mutants"]))
        outcomes = report["outcomes"]
        assert isinstance(outcomes, dict)
        print(f"{total} mutants (seed {args.seed}) in {report['seconds']} s")
        for outcome in OUTCOMES:
            n = outcomes[outcome]
            print(f"  {outcome:<10} {n:>7}  {100 * n / max(total, 1):6.2f} %")
        print(f"  slowest: {report['slowest']}")
        findings = report["findings"]
        assert isinstance(findings, dict)
        for outcome, lines in findings.items():
            print(f"{outcome}:")
            for line in lines:
                print(f"  {line}")
    findings = report["findings"]
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
