"""Loads the committed Python bindings next to the freshly built cdylib.

TOYSEAL_FFI_LIB names the built library (default: <repo>/target/debug/libtoyseal_ffi.so, or
$CARGO_TARGET_DIR/debug/...). The bindings module and the library are copied into a temporary
directory, because UniFFI's Python loader looks for the library beside the module.
"""

import atexit
import os
import pathlib
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[3]
BINDINGS = ROOT / "crates/toyseal-ffi/bindings/python/toyseal_ffi.py"


def _library() -> pathlib.Path:
    if os.environ.get("TOYSEAL_FFI_LIB"):
        return pathlib.Path(os.environ["TOYSEAL_FFI_LIB"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    name = "libtoyseal_ffi.dylib" if sys.platform == "darwin" else "libtoyseal_ffi.so"
    return target / "debug" / name


_dir = pathlib.Path(tempfile.mkdtemp(prefix="toyseal-ffi-py-"))
atexit.register(shutil.rmtree, _dir, ignore_errors=True)
shutil.copy(BINDINGS, _dir / "toyseal_ffi.py")
shutil.copy(_library(), _dir / _library().name)
sys.path.insert(0, str(_dir))
