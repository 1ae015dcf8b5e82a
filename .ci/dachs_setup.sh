#!/usr/bin/env bash
# Install (once) and start a GAVO DaCHS VO server on 127.0.0.1:8099 publishing two resources
# (SIAP 1, SIAP 2, ObsCore/TAP, datalink/SODA):
#   amtest   - the test images of tests/archives (tests/archives/dachs/make_images.py);
#   ammosaic - a 3-band mock mosaic of 12 tiles and its source table ammosaic.sources (TAP),
#              for the mining tests (tests/archives/dachs/mosaic.py; numpy + astropy only).
#
# Usage (as root, from anywhere):  bash .ci/dachs_setup.sh
#   env: DACHS_PORT (default 8099), PYTHON (a Python with astropy + astroquery used to
#   build the images; default: the first of .venv/bin/python, /work/venv/bin/python,
#   python3 that can import both).
# Idempotent: when the server already answers with the current images it returns at once; a
# resource whose RD or files changed (sha256 fingerprint in /var/gavo/inputs/<name>/.stamp) is
# re-imported alone.
# From a fresh Debian 12 machine it takes about 90 s (apt 65-70 s, import + start ~10 s).
# Stop: dachs serve stop; pg_ctlcluster 15 main stop.   Logs: /var/gavo/logs/.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PORT="${DACHS_PORT:-8099}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
DACHS_SRC="$HERE/tests/archives/dachs"
RESOURCES="amtest ammosaic"
APT="apt-get -y -q -o DPkg::Lock::Timeout=300"
say() { echo "dachs_setup: $*"; }

if [ "$(id -u)" != 0 ]; then
    say "must run as root (installs Debian packages and starts PostgreSQL)" >&2
    exit 1
fi

# ---------------------------------------------------------------- packages
need_update=1
apt_update() { if [ "$need_update" = 1 ]; then apt-get update -q; need_update=0; fi; }
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_update
    $APT install --no-install-recommends postgresql
fi
pg_lsclusters -h | grep -q . || pg_createcluster 15 main
pg_ctlcluster 15 main status >/dev/null 2>&1 || pg_ctlcluster 15 main start

RC="$(printf '[web]\nbindAddress: 127.0.0.1\nserverPort: %s\nserverURL: http://127.0.0.1:%s\n\n[ivoa]\nauthority: amtest.test\n' "$PORT" "$PORT")"
if [ ! -f /etc/gavo.rc ] || [ "$(cat /etc/gavo.rc)" != "$RC" ]; then
    printf '%s\n' "$RC" > /etc/gavo.rc
    RC_CHANGED=1
else
    RC_CHANGED=0
fi

if ! dpkg -s gavodachs2-server 2>/dev/null | grep -q '^Status: install ok installed'; then
    apt_update
    # postgres must be running here: the postinst creates the gavo database and runs dachs init
    $APT install --no-install-recommends gavodachs2-server
fi

# ---------------------------------------------------------------- images + RD
pick_python() {
    for py in ${PYTHON:-} "$HERE/.venv/bin/python" /work/venv/bin/python python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c "import astropy, astroquery" >/dev/null 2>&1; then
            echo "$py"; return 0
        fi
    done
    return 1
}
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
if ! PY="$(pick_python)"; then
    # clean machine: take the two source files out of the astroquery and astropy wheels and use
    # Debian's python3-astropy (a gavodachs2-server dependency) to write the images
    say "no Python with astropy + astroquery; fetching the astroquery and astropy wheels with pip"
    /usr/bin/python3 -m pip --version >/dev/null 2>&1 || { apt_update; $APT install --no-install-recommends python3-pip; }
    /usr/bin/python3 -m pip download -q --no-deps --only-binary=:all: -d "$STAGE/wheels" astroquery astropy
    /usr/bin/python3 - "$STAGE" <<'PYEOF'
import glob, os, sys, zipfile
stage = sys.argv[1]
want = {"astroquery/mast/tests/data/astrocut_189.49206_62.20615_100x100px_f.zip": "candels.zip",
        "astropy/io/fits/hdu/compressed/tests/data/m13.fits": "m13.fits"}
for wheel in glob.glob(os.path.join(stage, "wheels", "*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name in want:
                with open(os.path.join(stage, want[name]), "wb") as f:
                    f.write(z.read(name))
PYEOF
    export AMTEST_CANDELS_ZIP="$STAGE/candels.zip" AMTEST_M13="$STAGE/m13.fits"
    PY=/usr/bin/python3
fi
mkdir -p "$STAGE/amtest" "$STAGE/ammosaic"
"$PY" "$DACHS_SRC/make_images.py" "$STAGE/amtest/data" >/dev/null
"$PY" "$DACHS_SRC/mosaic.py" "$STAGE/ammosaic/data" >/dev/null
rm -f "$STAGE/ammosaic/data/"*.ecsv
for res in $RESOURCES; do cp "$DACHS_SRC/$res/q.rd" "$STAGE/$res/q.rd"; done

# fingerprint of what is published, per resource: re-import only when its RD or files changed
stamp_of() { (cat "$STAGE/$1/q.rd"; cat "$STAGE/$1"/data/*.fits; echo "$PORT") | sha256sum | cut -c1-16; }
served() {  # HTTP status of the resource's SIAP 1 endpoint
    curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$PORT/$1/q/i/siap.xml?POS=0,0&SIZE=0" 2>/dev/null
}
all_served() { for res in $RESOURCES; do [ "$(served "$res")" = 200 ] || return 1; done; }
STALE=""
for res in $RESOURCES; do
    if [ "$RC_CHANGED" = 1 ] || [ ! -f "/var/gavo/inputs/$res/.stamp" ] \
        || [ "$(cat "/var/gavo/inputs/$res/.stamp")" != "$(stamp_of "$res")" ]; then
        STALE="$STALE $res"
    fi
done
if [ -z "$STALE" ] && all_served; then
    say "already running on http://127.0.0.1:$PORT/ with the current images ($RESOURCES)"
    exit 0
fi

if [ -n "$STALE" ]; then
    cd /var/gavo/inputs
    # dachs imp exits non-zero on a failed import (dachs pub does not): keep set -e
    dachs imp //obscore >/dev/null
    for res in $STALE; do
        INPUTS="/var/gavo/inputs/$res"
        rm -f "$INPUTS/.stamp"
        mkdir -p "$INPUTS/data"
        rm -f "$INPUTS"/data/*.fits
        cp "$STAGE/$res"/data/*.fits "$INPUTS/data/"
        cp "$STAGE/$res/q.rd" "$INPUTS/q.rd"
        chown -R gavo:gavo "$INPUTS" 2>/dev/null || true
        chmod -R a+rX "$INPUTS"
        dachs imp "$res/q"
        dachs pub "$res/q"
    done
fi

# ---------------------------------------------------------------- server
if [ "$RC_CHANGED" = 1 ]; then dachs serve stop >/dev/null 2>&1 || true; fi
if [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)" = 000 ]; then
    dachs serve start
else
    dachs serve reload >/dev/null 2>&1 || dachs serve restart
fi
for _ in $(seq 1 60); do
    all_served && break
    sleep 0.5
done
if ! all_served; then
    say "the server did not answer on http://127.0.0.1:$PORT/ for all of: $RESOURCES (see /var/gavo/logs/)" >&2
    exit 1
fi
for res in $RESOURCES; do stamp_of "$res" > "/var/gavo/inputs/$res/.stamp"; done
say "serving on http://127.0.0.1:$PORT/: SIAP 1 /amtest/q/i/siap.xml and /ammosaic/q/i/siap.xml," \
    "SIA 2 /__system__/siap2/sitewide/siap2.xml (COLLECTION=amtest|ammosaic), TAP /tap (ammosaic.sources)"
