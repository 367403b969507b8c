#!/usr/bin/env bash
# Run a script (default: tools/exercise_ops.py, every operation row) under
# valgrind memcheck against the in-place build, and fail on an invalid
# access or a block definitely lost with the engine on its stack.
#
#   tools/valgrind.sh [script args...]        LINUXAIO_ENGINE=threads|uring|auto
#
# PYTHONMALLOC=malloc: every Python object through valgrind's malloc (pymalloc's
# arenas would hide a use after free and confuse the leak check).  CPython
# leaves objects alive at exit that valgrind counts as lost; those are not
# ours, and CPython 3.11's start-up shows uninitialised-value reports of its
# own (small ints, before our module is imported): so a report counts only if
# a frame of the engine (a file of src/engine/) is on its stack.
# tools/valgrind.supp: narrow suppressions of valgrind's own gaps, each with why.
# The threads engine by default: under valgrind (3.19) the io_uring engine
# hangs, valgrind holding its one-thread-at-a-time lock while the ring thread
# waits in io_uring_enter (it does not know that call blocks), so the ring
# is checked with tools/sanitize.sh --engine uring instead.
set -euo pipefail
export LINUXAIO_ENGINE=${LINUXAIO_ENGINE:-threads}
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
LOG=${VG_LOG:-$(mktemp /tmp/linuxaio-valgrind.XXXXXX.log)}
[ $# -gt 0 ] || set -- tools/exercise_ops.py
SUPP=(--suppressions=tools/valgrind.supp)
# Debian's copy of CPython's Misc/valgrind-python.supp, where installed.
for f in /usr/lib/valgrind/python3.supp; do [ -f "$f" ] && SUPP+=(--suppressions="$f"); done
PYTHONMALLOC=malloc PYTHONPATH=src valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite --errors-for-leak-kinds=none --track-origins=no \
    --num-callers=30 --fullpath-after= "${SUPP[@]}" --log-file="$LOG" "$PY" "$@"
echo "valgrind log: $LOG"
grep -E "ERROR SUMMARY|definitely lost:" "$LOG" || true
# Invalid accesses and definite leaks with the engine on the stack.
bad=$(awk '/^==[0-9]+== [A-Z]/{kind=""; ours=0}
           /^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest)/{kind="e"}
           /are definitely lost/{kind="l"}
           kind!="" && /src\/engine\//{ours=1}
           /^==[0-9]+== $/{if (kind=="e" && ours) e++; if (kind=="l" && ours) l++; kind=""}
           END{print e+0, l+0}' "$LOG")
echo "invalid accesses, engine leaks: $bad"
[ "$bad" = "0 0" ]
