#!/usr/bin/env bash
# Build the engine with AddressSanitizer + UndefinedBehaviorSanitizer (gcc)
# and run the test suite against that build.
#
#   tools/sanitize.sh [--engine auto|threads|uring] [--leaks] [pytest arguments]
#                                             (default: the whole of tests/)
#
# --engine sets LINUXAIO_ENGINE for the run (run it once per mode: the ring
# and the threads are different code).  --leaks turns LeakSanitizer on, with
# tools/lsan.supp (what it suppresses and why is in that file).  A leak then
# fails the process that leaked at its exit (exit code 23), child interpreters
# included.
#
# The build goes to a scratch directory (the in-place build in src/ is left
# alone).  Python itself is not built with ASan, so libasan is preloaded;
# PYTHONMALLOC=malloc sends Python objects (requests, buffers) through ASan's
# malloc, so a use after free of one is caught too.  detect_leaks=0: CPython
# keeps interned objects and arenas until exit, which LeakSanitizer reports as
# noise.  Any sanitizer report fails the run (halt_on_error, exit code 66).
# KEEP_BUILD=1 keeps the scratch build (its path is in the test output);
# SANITIZE_BUILD=DIR runs against such a kept build instead of building again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
CC=${CC:-gcc}
LEAKS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --engine) export LINUXAIO_ENGINE="$2"; shift 2 ;;
        --engine=*) export LINUXAIO_ENGINE="${1#--engine=}"; shift ;;
        --leaks) LEAKS=1; shift ;;
        *) break ;;
    esac
done
if [ -n "${SANITIZE_BUILD:-}" ]; then
    OUT=$SANITIZE_BUILD
else
OUT=$(mktemp -d /tmp/linuxaio-sanitize.XXXXXX)
[ -n "${KEEP_BUILD:-}" ] || trap 'rm -rf "$OUT"' EXIT

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
CC="$CC" CFLAGS="$SAN" LDFLAGS="$SAN" \
    "$PY" setup.py -q build_ext --build-lib "$OUT" --build-temp "$OUT/build" --force 2>&1 \
    | grep -v -e _BetaConfiguration -e 'warnings.warn' || true
# The package's Python files, subpackages included; not an in-place .so,
# which would replace the sanitized build.
tar -C src -cf - --exclude='*.so' --exclude=__pycache__ linuxaio | tar -C "$OUT" -xf -
fi
ls "$OUT"/linuxaio/_engine*.so >/dev/null

LIBASAN=$("$CC" -print-file-name=libasan.so)
export LD_PRELOAD="$LIBASAN${LD_PRELOAD:+:$LD_PRELOAD}"
if [ "$LEAKS" = 1 ]; then
    export LSAN_OPTIONS="suppressions=$PWD/tools/lsan.supp:print_suppressions=0:exitcode=23${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi
export ASAN_OPTIONS="detect_leaks=$LEAKS:halt_on_error=1:exitcode=66:abort_on_error=0:detect_stack_use_after_return=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=66${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PYTHONMALLOC=malloc
export PYTHONPATH="$OUT"
echo "sanitized build: $OUT; LINUXAIO_ENGINE=${LINUXAIO_ENGINE:-auto}; leaks: $LEAKS"

# Skipped: the RSS bound of a million queued requests (ASan's shadow memory
# and quarantine make RSS meaningless) and the million-callback run (minutes
# under ASan; the smaller stress tests still run).
DESELECT=(--deselect tests/test_stress.py::test_a_million_nops_complete_with_bounded_memory
          --deselect tests/test_stress.py::test_a_million_callbacks_all_run)
# With --leaks, also the tests LeakSanitizer cannot run: the ones that cap
# the number of threads (LSan's own thread then fails: "fatal error"), and
# the exit with a Python thread still blocked in poll_wait (its thread state
# and a frame's object are still held by that thread: CPython's, no engine
# frame on their stacks).
if [ "$LEAKS" = 1 ]; then
    DESELECT+=(--deselect tests/test_control.py::test_no_worker_thread_can_start_fails_the_request_with_runtimeerror
               --deselect tests/test_control.py::test_no_worker_thread_can_start_fails_an_await_with_runtimeerror
               "--deselect=tests/test_concurrency.py::test_exit_with_requests_pending[poller_thread_blocked]")
fi
if [ $# -eq 0 ]; then
    set -- tests
fi
# The build under test must be the sanitized one.
"$PY" -c 'import linuxaio, sys; assert linuxaio.__file__.startswith(sys.argv[1]), linuxaio.__file__' "$OUT"
"$PY" -m pytest -q -p no:cacheprovider "${DESELECT[@]}" "$@"
