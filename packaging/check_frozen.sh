#!/usr/bin/env bash
# CI check of both frozen builds (run after `make dist`): each build's console executable
# classifies and captions the sample and trains a head on 60 shared photos exactly as the source
# does in the environment the build was made from (.venv for the GPU build, .venv-cpu for the
# CPU build); the GUI executable opens its window offscreen and quits; sizes and start-to-window
# times are printed. `packaging/check_frozen.sh cpu` checks one build.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' core/__init__.py)
builds=("${@:-gpu cpu}")
read -r -a builds <<< "${builds[*]}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config"

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# 60 photos of the shared comp5329 set and their truth, to train a head on (skipped without ../shared)
comp=../shared/data/comp5329
if [ -f "$comp/train.csv" ]; then
    mkdir -p "$work/train-photos"
    head -61 "$comp/train.csv" > "$work/truth.csv"
    tail -n +2 "$work/truth.csv" | cut -d, -f1 | while read -r name; do cp "$comp/images/$name" "$work/train-photos/"; done
fi

check_build() {  # $1: cpu or gpu
    local build=$1 bundle="dist/Tagline-$version-$1" source
    source=$([ "$build" = cpu ] && echo .venv-cpu/bin/tagline || echo .venv/bin/tagline)
    local w="$work/$build"
    echo "== $build build: $bundle against the source in ${source%/bin/tagline}"
    test -x "$bundle/tagline" || { echo "no $bundle: run make dist" >&2; return 1; }
    for side in frozen source; do
        mkdir -p "$w/$side"
        cp resources/sample/*.jpg "$w/$side/"
    done
    run() {  # $1: frozen or source; each side has its own cache (so each exports the heads' graph itself)
        local side=$1; shift
        mkdir -p "$w/cache-$side"
        # the same runtime choice on both sides: the source reads the frozen side's timing of the encoders
        [ "$side" = source ] && [ -f "$w/cache-frozen/runtime-probe.json" ] && cp -n "$w/cache-frozen/runtime-probe.json" "$w/cache-source/"
        if [ "$side" = frozen ]; then TAGLINE_CACHE_DIR="$w/cache-$side" "$bundle/tagline" "$@"
        else TAGLINE_CACHE_DIR="$w/cache-$side" "$source" "$@"; fi
    }
    "$bundle/tagline" info | sed -n 1p | tee "$w/info.txt"
    grep -q "^build: ${build^^} build" "$w/info.txt" || { echo "tagline info does not name the $build build" >&2; return 1; }

    local start
    start=$(date +%s%N)
    run frozen -q classify "$w/frozen" --captions resources/sample/captions.csv --out "$w/frozen.csv"
    echo "frozen classify of the sample: $(ms_since "$start") ms (start-up and the heads' export included)"
    run source -q classify "$w/source" --captions resources/sample/captions.csv --out "$w/source.csv"
    diff "$w/frozen.csv" "$w/source.csv"
    echo "classify: frozen and source CSVs are identical ($(wc -l < "$w/frozen.csv") lines)"

    run frozen -q caption "$w/frozen" --overwrite --out "$w/frozen-captions.csv"
    run source -q caption "$w/source" --overwrite --out "$w/source-captions.csv"
    diff "$w/frozen-captions.csv" "$w/source-captions.csv"
    echo "caption: frozen and source generated captions are identical: $(tail -n +2 "$w/frozen-captions.csv" | head -2 | tr '\n' ' ')"

    if [ -d "$work/train-photos" ]; then
        for side in frozen source; do
            mkdir -p "$w/train-$side"
            cp "$work"/train-photos/*.jpg "$w/train-$side/"
            start=$(date +%s%N)
            run "$side" -q train "$w/train-$side" --captions "$work/truth.csv" --label-map resources/label_maps/comp5329.json \
                --out "$w/model-$side" > "$w/train-$side.txt"
            echo "$side train on 60 shared photos: $(ms_since "$start") ms"
            run "$side" -q classify "$w/train-$side" --redo --out "$w/trained-$side.csv"
        done
        if [ "$build" = cpu ]; then
            diff <(cd "$w/model-frozen" && sha256sum ./*.safetensors) <(cd "$w/model-source" && sha256sum ./*.safetensors)
            diff "$w/trained-frozen.csv" "$w/trained-source.csv"
            echo "train: frozen and source heads are bit-identical ($(cd "$w/model-frozen" && ls ./*.safetensors)), and so is" \
                 "the classify of the 60 photos with them; $(grep -o 'chose [^;]*' "$w/train-frozen.txt" | head -1)"
        else  # .venv's CUDA torch 2.14.1 trains these heads differently from one source run to the next on a CPU
            # (docs/benchmarks.md "Packaging": 7 source runs, 6 different heads), so the GPU build is not held to one run
            echo "train, frozen: $(cd "$w/model-frozen" && ls ./*.safetensors) $(grep -o 'chose [^;]*' "$w/train-frozen.txt" | head -1)"
            echo "train, source: $(cd "$w/model-source" && ls ./*.safetensors) $(grep -o 'chose [^;]*' "$w/train-source.txt" | head -1)"
        fi
    else
        echo "train: skipped (../shared/data/comp5329 is not here)"
    fi

    if [ "$build" = cpu ]; then  # the promise of the CPU build, on what it carries and what it says
        if find "$bundle" -name 'libcudart*' -o -name 'libcublas*' -o -name 'libcudnn*' -o -name 'libnccl*' \
                -o -name 'libtorch_cuda*' -o -name '*providers_cuda*' | grep -q .; then
            echo "the CPU build carries CUDA libraries" >&2; return 1
        fi
        echo "the CPU build carries no CUDA library"
        local said
        said=$(TAGLINE_CACHE_DIR="$w/cache-frozen" "$bundle/tagline" -q train "$w/frozen" --out "$w/tuned" --finetune 2>&1) && {
            echo "train --finetune ran in the CPU build" >&2; return 1; }
        grep -q "use the GPU build" <<< "$said" || { echo "train --finetune did not name the GPU build: $said" >&2; return 1; }
        echo "train --finetune says: $said"
        said=$(TAGLINE_CACHE_DIR="$w/cache-frozen" "$bundle/tagline" -q train "$w/frozen" --out "$w/timm" \
               --image-encoder timm:resnet18 2>&1) && { echo "a timm: encoder ran in the CPU build" >&2; return 1; }
        grep -q "use the GPU build" <<< "$said" || { echo "a timm: encoder did not name the GPU build: $said" >&2; return 1; }
        echo "--image-encoder timm:resnet18 says: $said"
    fi

    for lib in libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1; do  # a fresh desktop lacks them
        test -f "$bundle/_internal/$lib" || { echo "the bundle lacks $lib: Qt's window would not open" >&2; return 1; }
    done
    echo "the bundle carries Qt's X11 libraries (libxcb-cursor, -icccm, -keysyms)"
    QT_QPA_PLATFORM=offscreen TAGLINE_SMOKE_SECONDS=2 TAGLINE_CACHE_DIR="$w/cache-frozen" timeout 60 "$bundle/Tagline" "$w/frozen" \
        2> "$w/gui.txt" || { cat "$w/gui.txt" >&2; return 1; }
    grep -o "window shown.*" "$w/gui.txt" || { cat "$w/gui.txt" >&2; return 1; }
    echo "frozen GUI started and quit cleanly"
    echo "$build build size: $(du -sh "$bundle" | cut -f1) on disk ($(du -sm "$bundle" | cut -f1) MB)"
}

for build in "${builds[@]}"; do
    check_build "$build"
done
echo "sizes: $(for build in "${builds[@]}"; do printf '%s %s MB  ' "$build" "$(du -sm "dist/Tagline-$version-$build" | cut -f1)"; done)"
