#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings of toyseal-ffi from the built cdylib, with the
# uniffi-bindgen built from the same pinned `uniffi` (crates/toyseal-ffi/Cargo.toml), into the
# committed directories crates/toyseal-ffi/bindings/{kotlin,swift,python}. Unformatted
# (`--no-format`), so the output does not depend on ktlint/swiftformat being installed; CI
# regenerates and runs `git diff --exit-code` on them.
#
#   bash scripts/gen-bindings.sh          # build (debug) + generate
#   CARGO_TARGET_DIR=… bash scripts/gen-bindings.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
cargo build -p toyseal-ffi --lib --bin uniffi-bindgen
case "$(uname -s)" in
Darwin) lib="$target_dir/debug/libtoyseal_ffi.dylib" ;;
*) lib="$target_dir/debug/libtoyseal_ffi.so" ;;
esac

out=crates/toyseal-ffi/bindings
for lang in kotlin swift python; do
    rm -rf "${out:?}/$lang"
    mkdir -p "$out/$lang"
    "$target_dir/debug/uniffi-bindgen" generate "$lib" --language "$lang" --no-format \
        --out-dir "$out/$lang"
done
echo "generated into $out/{kotlin,swift,python} from $lib"
