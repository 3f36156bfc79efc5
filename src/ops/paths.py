"""Where the fast conv op's source and built library live (shared by the build script and the loader)."""
import os
from pathlib import Path

LIBRARY_ENV = "RESNET3D_FAST_CONV_LIB"   # path of a built library; overrides the default location
CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = (CSRC / "conv3d_dnnl.cc", CSRC / "conv3d_infer.cc", CSRC / "maxpool3d.cc",  # one library
           CSRC / "stem_bwd_weights.cc", CSRC / "conv3d_int8.cc", CSRC / "int8_program.cc")
HEADERS = (CSRC / "dnnl_runtime.h", CSRC / "stem_bwd_weights.h", CSRC / "units.h", CSRC / "executor.h")
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_library_path():
    return REPO_ROOT / "build" / "ops" / "libconv3d_dnnl.so"


def library_path():
    return Path(os.environ.get(LIBRARY_ENV) or default_library_path())


def library_requested():
    """Whether the library was asked for by path (LIBRARY_ENV): then failing to use it is said, not silent."""
    return bool(os.environ.get(LIBRARY_ENV))
