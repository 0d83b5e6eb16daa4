"""The top entries of a py-spy profile (`py-spy record -f raw`): the share of samples whose
innermost frame is each function (self), and the share that pass through it (inclusive).

    python bench/pyspy_top.py PROFILE.txt [N]

bench/load.py --profile DIR writes one such profile per Parley phase, and
bench/idle_sockets.py --profile DIR one per step's idle window, each with this summary next
to it (`record`).
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def summarize(path: Path, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples", "", "self:"]
    lines += [f"{100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(lines) + "\n"


async def record(pid: int, seconds: float, raw: Path) -> None:
    """py-spy's samples of process `pid` for `seconds` into `raw`, and their summary beside it."""
    spy = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("py-spy")),
        *("record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", "200"),
        *("-f", "raw", "-o", str(raw), "--nonblocking"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await spy.wait()
    _summarize_beside(raw)


def _summarize_beside(raw: Path) -> None:
    if raw.exists():
        raw.with_suffix(".top.txt").write_text(summarize(raw))


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 25), end="")
