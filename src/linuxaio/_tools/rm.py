"""``linuxaio rm PATH...``: ``rm -rf`` in parallel (linuxaio.shutil.rmtree's
fd-based removal), with a progress line on a terminal."""
from __future__ import annotations

import argparse
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:     # typing costs ms at start-up: the CLI tools avoid it
    from typing import Any

from . import progress as _progress


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("rm", help="remove trees in parallel (rm -rf)",
                       description="Remove each PATH and everything under it, in parallel, with "
                       "*at() calls on directory handles (a symlink is removed, never followed). "
                       "Exit status: 0, or 1 if something could not be removed (each failure is "
                       "printed), 2 for bad usage.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to remove")
    p.add_argument("-f", "--force", action="store_true",
                   help="a PATH that does not exist is no error (as rm -f)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress line (there is none when stderr is not a terminal)")
    return p


async def remove(paths: list, force: bool, bar: _progress.Line) -> list:
    import errno
    from .. import _tree
    from .._loop import run
    from .. import _engine
    failures: list = []
    counted = [0]

    def onexc(func: Any, path: Any, exc: BaseException) -> None:
        failures.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")

    def tick(n: int) -> None:
        bar.show(lambda el: f"rm: {counted[0] + n:,} entries removed ({(counted[0] + n) / max(el, 1e-9):,.0f}/s)")

    for p in paths:
        try:
            st = await run(_engine.stat, p, None, _tree.NOFOLLOW)
        except OSError as exc:
            if not (force and exc.errno == errno.ENOENT):
                failures.append(f"{p}: {exc.strerror}")
            continue
        import stat
        if stat.S_ISDIR(st.st_mode):
            await _tree.remove_tree(p, None, onexc, tick if bar.live else None)
        else:
            try:
                await run(_engine.unlink, p, None)
            except OSError as exc:
                failures.append(f"{p}: {exc.strerror}")
    return failures


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .._loop import run_main
    bar = _progress.Line(quiet=args.quiet)
    for p in args.paths:
        if p.rstrip("/") in ("", ".", "..") or p.endswith(("/.", "/..")):
            parser.error(f"refusing to remove '.' or '..' or '/': {p!r}")
    try:
        failures = run_main(remove(args.paths, args.force, bar))
    except KeyboardInterrupt:
        bar.clear()
        return 130
    bar.clear()
    for f in failures:
        print(f"linuxaio rm: {f}", file=sys.stderr)
    return 1 if failures else 0
