#!/usr/bin/env bash
# CI check of the frozen build: the console executable labels the sample exactly as the source
# does, and the GUI executable starts offscreen and quits cleanly. Run after `make dist`.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=$(ls -d dist/Tagline-*/ | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for side in frozen source; do
    mkdir -p "$work/$side"
    cp resources/sample/*.jpg "$work/$side/"
done
export TAGLINE_CACHE_DIR="$work/cache" XDG_DATA_HOME="$work/data"
start=$(date +%s%N)
"$bundle/tagline" -q classify "$work/frozen" --captions resources/sample/captions.csv --out "$work/frozen.csv"
echo "frozen classify of the sample: $(( ($(date +%s%N) - start) / 1000000 )) ms (start-up included)"
.venv/bin/tagline -q classify "$work/source" --captions resources/sample/captions.csv --out "$work/source.csv"
diff "$work/frozen.csv" "$work/source.csv"
echo "frozen and source CSVs are identical ($(wc -l < "$work/frozen.csv") lines)"
"$bundle/tagline" -q caption "$work/frozen" --overwrite --out "$work/frozen-captions.csv"
.venv/bin/tagline -q caption "$work/source" --overwrite --out "$work/source-captions.csv"
diff "$work/frozen-captions.csv" "$work/source-captions.csv"
echo "frozen and source generated captions are identical: $(tail -n +2 "$work/frozen-captions.csv" | head -2 | tr '\n' ' ')"
for lib in libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1; do  # a fresh desktop lacks them
    test -f "$bundle/_internal/$lib" || { echo "the bundle lacks $lib: Qt's window would not open" >&2; exit 1; }
done
echo "the bundle carries Qt's X11 libraries (libxcb-cursor, -icccm, -keysyms)"
QT_QPA_PLATFORM=offscreen TAGLINE_SMOKE_SECONDS=4 timeout 60 "$bundle/Tagline" "$work/frozen"
echo "frozen GUI started and quit cleanly; bundle size $(du -sh "$bundle" | cut -f1)"
