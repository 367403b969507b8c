"""Command line: ``python -m linuxaio bench`` (also the ``linuxaio`` script), and
the whole-tree tools ``scan``, ``copy`` and ``rm`` (src/linuxaio/_tools/)."""
from __future__ import annotations

import os
import stat
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

DEFAULT_SIZE = 256 << 20
MAX_THREADS = 4096          # the engine's limit for min_parallel/max_parallel
MAX_ARENA = 1 << 30         # --qd buffers of --bs bytes (page-rounded), at most


def _size(text: str) -> int:
    """A byte count such as 4096, 4k, 64KiB, 1.5M; at least 1."""
    import argparse
    from ._tools.sizes import parse_size
    try:
        value = parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte: {text!r}")
    return value


def _int_in(low: int, high: int):
    def parse(text: str) -> int:
        import argparse
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}: {text!r}")
        return value
    return parse


def _seconds(text: str) -> float:
    import argparse
    import math
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _bench_module():
    # loaded for bench only: its imports (dataclasses, random, tempfile...)
    # would add ms to the start of scan, a command timed against du
    from ._tools import bench
    return bench


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The checks that involve several options or the file: parser.error (a
    one-line message, exit status 2) for any that fails, before anything is
    created or opened for writing."""
    _bench = _bench_module()
    existing = None
    if args.file is not None:
        try:
            existing = os.stat(args.file)
        except FileNotFoundError:
            pass
        except OSError as exc:
            parser.error(f"--file {args.file}: {exc.strerror}")
    if existing is not None:
        # Someone else's file: read as it is, never resized or rewritten
        # unless --overwrite says so.
        if not stat.S_ISREG(existing.st_mode):
            parser.error(f"--file {args.file}: not a regular file")
        if args.size is not None:
            parser.error(f"--size: {args.file} exists and is used at its own size "
                         f"({existing.st_size} bytes); drop --size or name a new file")
        if args.write and not args.overwrite:
            parser.error(f"--write would overwrite parts of {args.file} with random bytes; "
                         "add --overwrite if it may")
        args.size = existing.st_size
        what = f"{args.file} ({existing.st_size} bytes)"
    else:
        if args.size is None:
            args.size = DEFAULT_SIZE
        what = f"--size ({args.size})"
    if args.size < args.bs:
        parser.error(f"--bs ({args.bs}) is larger than {what}")
    if args.direct:
        import linuxaio
        import tempfile
        where = args.file if existing is not None else os.path.dirname(
            os.path.abspath(args.file)) if args.file else tempfile.gettempdir()
        _, align = linuxaio.dio_alignment(where)
        if args.bs % align:
            parser.error(f"--bs {args.bs} is not a multiple of the O_DIRECT alignment of "
                         f"{where} ({align} bytes; see linuxaio.dio_alignment)")
    if args.qd * max(args.bs, _bench.PAGE) > MAX_ARENA:
        parser.error(f"--qd {args.qd} buffers of --bs {args.bs} bytes need more than "
                     f"{MAX_ARENA >> 20} MiB")


def bench(args: argparse.Namespace) -> int:
    import linuxaio
    _bench = _bench_module()

    if args.threads:
        linuxaio.min_parallel(args.threads)
        linuxaio.max_parallel(args.threads)
    if args.file is not None and os.path.exists(args.file):
        path, created = args.file, False
    else:
        path, created = _bench.make_file(args.file, args.size), True
    try:
        # O_RDWR only on a file this run created, or with --overwrite
        flags = os.O_RDWR if args.write else os.O_RDONLY
        if args.direct:
            flags |= os.O_DIRECT   # the device, not the page cache
        fd = os.open(path, flags)
        size = os.fstat(fd).st_size
        op = "write" if args.write else "read"
        shown = f"{size / 2**20:.0f} MiB" if size >= 1 << 20 else f"{size} bytes"
        print(f"linuxaio bench: random {args.bs} B {op}s of {path} ({shown}), "
              f"{args.qd} in flight, {args.seconds:g} s each, {args.threads or 'default'} threads, "
              f"engine {linuxaio.engine()}{', O_DIRECT' if args.direct else ''}", flush=True)
        results = []
        for runner in ("linuxaio", "plain"):
            if not args.direct:
                resident = _bench.warm(path)
                print(f"  page cache: {resident:.0%} of the file resident before the {runner} run", flush=True)
            if runner == "linuxaio":
                r = _bench.run_linuxaio(fd, size, args.bs, args.qd, args.seconds, args.write, args.quiet)
            else:
                r = _bench.run_plain(fd, size, args.bs, args.seconds, args.write, args.quiet, args.direct)
            results.append(r)
        os.close(fd)
    finally:
        if created and args.file is None:
            os.unlink(path)
    print(f"{'':12} {'IOPS':>12} {'MB/s':>9}")
    for r in results:
        print(f"{r.name:12} {r.iops:12,.0f} {r.mbps:9.1f}")
    ratio = results[0].iops / results[1].iops
    print(f"ratio linuxaio / {results[1].name}: {ratio:.2f}x")
    # The two latencies measure different things: linuxaio's includes the
    # wait behind the other requests in flight, so they are shown apart.
    lx, plain = results
    print("latency, not comparable between the two:")
    print(f"  {lx.name:10} p50 {lx.percentile(50):9.1f} us  p99 {lx.percentile(99):9.1f} us  "
          f"submission to callback, including the wait in a queue of {args.qd}")
    print(f"  {plain.name:10} p50 {plain.percentile(50):9.1f} us  p99 {plain.percentile(99):9.1f} us  "
          f"one call, nothing queued")
    return 0


def _columns() -> int:
    """The terminal's width, as shutil.get_terminal_size finds it."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def _parser_class() -> type:
    """argparse's ArgumentParser whose help formatter asks no shutil for the
    terminal's width (made here: argparse is imported only when parsing)."""
    import argparse

    class _Formatter(argparse.HelpFormatter):
        """argparse's, without its `import shutil` for the terminal's width:
        every add_argument makes a formatter, and shutil (with bz2, lzma,
        fnmatch...) would cost each start of `linuxaio scan`, a command timed
        against du, some 5 ms (more with cold caches)."""

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: int | None = None) -> None:
            super().__init__(prog, indent_increment, max_help_position,
                             _columns() - 2 if width is None else width)

    class _Parser(argparse.ArgumentParser):
        """The subcommands' parsers are of this class too (add_subparsers)."""

        def __init__(self, *args, **kwargs) -> None:
            kwargs.setdefault("formatter_class", _Formatter)
            super().__init__(*args, **kwargs)

    return _Parser


class _PlainScan:
    """The arguments of `scan [--json] [--quiet] PATH...` as argparse would
    make them (tests/test_tree_cli.py compares the two)."""

    command = "scan"
    top = 0
    ext = False

    def __init__(self, paths: list, json: bool, quiet: bool) -> None:
        self.paths, self.json, self.quiet = paths, json, quiet


def _plain_scan(argv: list) -> _PlainScan | None:
    """`scan [--json] [--quiet] PATH...` (options before or after the paths),
    the form scripts and benchmarks run, parsed without argparse: argparse,
    gettext, locale and re are some 15 modules to read at every start of a
    command timed against du (about 10 ms, several times that with cold
    caches).  Anything else (--help, --top, a path starting with "-", bad
    usage...): None, and argparse parses it."""
    if len(argv) < 2 or argv[0] != "scan":
        return None
    flags = {"--json": False, "--quiet": False}
    paths: list = []
    ended = False              # the paths are one run, as argparse's nargs="+" takes them
    for arg in argv[1:]:
        if arg in flags:
            flags[arg] = True
            ended = bool(paths)
        elif arg.startswith("-") or not arg or ended:
            return None
        else:
            paths.append(arg)
    if not paths:
        return None
    return _PlainScan(paths, flags["--json"], flags["--quiet"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    plain = _plain_scan(argv)
    if plain is not None:
        from ._tools import scan as _scan
        return _scan.main(plain, None)
    _Parser = _parser_class()
    parser = _Parser(prog="linuxaio", description="linuxaio tools")
    sub = parser.add_subparsers(dest="command")
    b = sub.add_parser("bench", help="random reads through the callback API vs a plain os.pread loop")
    b.add_argument("--file", help="file to read, as it is (never modified without --write "
                   "--overwrite); one that does not exist is created at --size and kept "
                   "(default: a temporary file, removed afterwards)")
    b.add_argument("--size", type=_size, default=None,
                   help="size of the file the bench creates, e.g. 256M (default 256M)")
    b.add_argument("--bs", type=_size, default=4096, help="block size (default 4096)")
    b.add_argument("--qd", type=_int_in(1, 1 << 20), default=64,
                   help="requests in flight (default 64)")
    b.add_argument("--threads", type=_int_in(0, MAX_THREADS), default=0,
                   help="worker threads (default 0: the engine's)")
    b.add_argument("--seconds", type=_seconds, default=5.0, help="length of each run (default 5)")
    b.add_argument("--write", action="store_true", help="random writes instead of reads")
    b.add_argument("--overwrite", action="store_true",
                   help="let --write change an existing --file (its size stays the same)")
    b.add_argument("--engine", choices=("auto", "threads", "uring"),
                   help="LINUXAIO_ENGINE for the run (default: as the environment says, else auto)")
    b.add_argument("--direct", action="store_true",
                   help="open the file with O_DIRECT: cold-device figures, no page cache (--bs "
                   "must be a multiple of linuxaio.dio_alignment())")
    b.add_argument("--quiet", action="store_true",
                   help="no progress line (there is none when stderr is not a terminal)")
    from ._tools import copy as _copy, rm as _rm, scan as _scan   # whole-tree tools
    tools = {"scan": _scan, "copy": _copy, "rm": _rm}
    tool_parsers = {name: mod.add_parser(sub) for name, mod in tools.items()}
    if not argv or argv[0] not in ("bench", "-h", "--help", *tools):
        argv = ["bench"] + argv         # bench is the default command, options and all
    args = parser.parse_args(argv)
    if args.command == "bench":
        _check(b, args)
        if args.engine and args.engine != os.environ.get("LINUXAIO_ENGINE", "auto"):
            # the engine is chosen at import: run again under the one asked for
            os.environ["LINUXAIO_ENGINE"] = args.engine
            sys.stdout.flush()
            os.execv(sys.executable, [sys.executable, "-m", "linuxaio", *argv])
        try:
            return bench(args)
        except KeyboardInterrupt:
            return 130
        except OSError as exc:
            # the file system's answer (no space, no permission...), not a bug
            print(f"linuxaio bench: {exc}", file=sys.stderr)
            return 1
    if args.command in tools:
        return tools[args.command].main(args, tool_parsers[args.command])
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
