"""Write the operation table's part of src/linuxaio/_engine.pyi from the table.

    python tools/engine_stub.py          rewrite it (after building the engine)
    python tools/engine_stub.py --check  exit 1 if it is out of date

The table (src/engine/ops.def) is read from the built engine (_engine._op_table(),
and _engine.__all__, the names linuxaio re-exports):
the aio face's parameter names come from its docstring's signature, their
types from its argument letters (src/engine/ops.h); an os face takes *args,
as linuxaio.os gives it the names and shapes of os.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUB = ROOT / "src/linuxaio/_engine.pyi"
BEGIN = "# ---- the operation table (tools/engine_stub.py writes this part) ----\n"
END = "# ---- end of the operation table ----\n"

# The type of each letter an aio face may take.
TYPES = {
    "f": "FileDescriptorLike",
    "F": "int",
    "x": "Union[FileDescriptorLike, PathArg]",
    "p": "PathArg",
    "P": "PathArg",
    "g": "Optional[int]",
    "M": "int",
    "e": "int",
    "X": "Union[str, bytes]",
    "b": "ReadableBuffer",
    "i": "int",
    "m": "int",
    "s": "float",
    "o": "Optional[int]",
    "l": "int",
    "n": "int",
    "L": "Optional[int]",
    "u": "Optional[float]",
    "w": "WriteableBuffer",
    "r": "ReadableBuffer",
    "d": "int",
    "G": "FileDescriptorLike",
    "j": "int",
    "q": "Optional[int]",
    "c": "Optional[int]",
    "R": "int",
    "a": "Union[int, str, ReadableBuffer, WriteableBuffer]",
    "B": "ReadableBuffer",
    "y": "bytearray",
}


def engine():
    sys.path.insert(0, str(ROOT / "src"))
    from linuxaio import _engine
    return _engine


def aio_stub(name, letters, doc):
    signature = re.match(r"%s\(([^)]*)\)" % re.escape(name), doc)
    if not signature:
        raise SystemExit(f"{name}: its docstring does not start with its signature")
    params = [p.strip() for p in signature.group(1).split(",")]
    names = params[:len(letters)]
    if len(names) != len(letters) or not params[len(letters)].startswith("callback"):
        raise SystemExit(f"{name}: its signature does not match its letters {letters!r}")
    args = [f"{n}: {TYPES[c]}" for n, c in zip(names, letters)]
    args += ["callback: Callback = None", "*", "pri: int = 0"]
    return f"def {name}({', '.join(args)}) -> Request: ...\n"


def table_part():
    table = engine()._op_table()
    lines = [BEGIN]
    # what linuxaio re-exports: every public name but the os twins and AT_*
    lines.append("__all__ = [\n%s]\n" % "".join(f"    {n!r},\n" for n in engine().__all__))
    lines += [aio_stub(r[1], r[2], r[8]) for r in table if r[1]]
    lines.append("# The os twins, behind linuxaio.os (the last positional argument is a callback"
                 " or an asyncio loop).\n")
    lines += [f"def {r[3]}(*args: Any, pri: int = 0) -> Request: ...\n" for r in table if r[3]]
    lines.append(END)
    return "".join(lines)


def rewritten(text):
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + table_part() + text[end:]


def main():
    text = STUB.read_text()
    new = rewritten(text)
    if "--check" in sys.argv[1:]:
        if new != text:
            print(f"{STUB} is out of date: run python tools/engine_stub.py")
            return 1
        return 0
    STUB.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
