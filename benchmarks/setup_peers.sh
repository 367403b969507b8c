#!/usr/bin/env bash
# Install the benchmark peers (never runtime dependencies of linuxaio):
# Debian's libio-aio-perl (Perl IO::AIO), fio, wrk and nginx, and the pip packages in
# requirements.txt.  Idempotent: installs only what is missing.
# PYTHON=/path/to/python picks the interpreter (default: python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
# wrk and nginx: W10's load generator and its bar (benchmarks/w10_asgi_static.py)
for pkg in libio-aio-perl fio wrk nginx; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# All at once; if that fails (pyaio has been known not to build), one by one
# so that the others still get installed.
if ! "$py" -m pip install -q --root-user-action=ignore -r "$here/requirements.txt"; then
    grep -Ev '^\s*(#|$)' "$here/requirements.txt" | while read -r req; do
        "$py" -m pip install -q --root-user-action=ignore "$req" || echo "warning: could not install $req (its contenders will be skipped)" >&2
    done
fi

perl -MIO::AIO -e 'print "IO::AIO $IO::AIO::VERSION\n"'
fio --version
wrk --version 2>&1 | head -n 1 || true
/usr/sbin/nginx -v 2>&1 || true
"$py" - <<'PY'
from importlib import metadata
for name in ("aiofiles", "aiofile", "caio", "anyio", "trio", "uvloop", "pyaio"):
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        print(name, "NOT INSTALLED")
PY
