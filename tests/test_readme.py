"""The README's Python examples run as written, so that they cannot rot.

Each ```python block of README.md runs in a child interpreter (dev mode,
warnings as errors, a time limit) in an empty temporary directory, which it
must leave empty; its output must match the one expected for it."""
import os
import re

import pytest

from aio_helpers import run_python

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")

with open(README, encoding="utf-8") as _f:
    BLOCKS = re.findall(r"^```python\n(.*?)^```$", _f.read(), re.M | re.S)

# What each block prints, in README order (a regular expression for the whole output).
EXPECTED_OUTPUT = [
    r"read [1-9]\d* b'.*'\n",                                   # select() loop
    r"\d+\n",                                                   # asyncio stat
    r"all stats done: ok\n",                                    # group with a feeder
    r"b'.*'\n\d+ [1-9]\d*\n[1-9]\d*\n",                         # linuxaio.os
    r"6 \['today\.log'\]\n",                                     # working-directory handles
    (r"first line\nsecond line\nfirst line\n 11\n23 first line\nsecond line\n\n"
     r"(/\S+/notes\.txt)\n\1 23\n"),                            # linuxaio.open / Path
    r"backup \['src'\] \[\]\nbackup/src \[\] \['a.txt'\]\n\['b.txt', 'data'\]\n",   # whole-tree work
]

# A close submitted while a request on the same fd is still in flight is the
# race the first example had (priority orders the queue, not execution): the
# child fails at the submission that makes it possible, however rarely the
# close would actually win.
FD_GUARD = '''
import linuxaio as _lx

def _guard():
    in_flight = {}

    def track(name):
        real = getattr(_lx, name)

        def submit(fd, *args, **kw):
            *rest, callback = args
            in_flight[fd] = in_flight.get(fd, 0) + 1

            def done(result):
                in_flight[fd] -= 1
                if callback is not None:
                    callback(result)
            return real(fd, *rest, done, **kw)
        setattr(_lx, name, submit)

    for name in ("aio_read", "aio_write", "aio_stat"):
        track(name)
    real_close = _lx.aio_close

    def close(fd, *args, **kw):
        if in_flight.get(fd):
            raise SystemExit(f"aio_close({fd}) submitted while {in_flight[fd]} request(s) "
                             "on it may still run")
        return real_close(fd, *args, **kw)
    _lx.aio_close = close

_guard()
del _guard
'''


def test_readme_has_an_expected_output_for_every_example():
    assert len(BLOCKS) == len(EXPECTED_OUTPUT)


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"example{i + 1}")
def test_readme_example_runs(tmp_path, index):
    code = FD_GUARD + f"import os\nos.chdir({str(tmp_path)!r})\n" + BLOCKS[index]
    proc, _ = run_python(code, timeout=60, env={"PYTHONDEVMODE": "1", "PYTHONWARNINGS": "error",
                                                "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    # Dev mode makes asyncio log a step over 100 ms: the machine's speed (a
    # loaded one, or an ASan build), not the example's fault.
    stderr = re.sub(r"(?m)^Executing <.*> took [0-9.]+ seconds\n", "", proc.stderr)
    assert stderr == ""
    assert re.fullmatch(EXPECTED_OUTPUT[index], proc.stdout), proc.stdout
    assert os.listdir(tmp_path) == []           # nothing left behind in the working directory

