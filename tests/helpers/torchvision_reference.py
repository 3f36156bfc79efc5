"""torchvision's own video ResNets (``torchvision/models/video/resnet.py``) as the reference, without installing
torchvision.

torchvision cannot be installed beside our CPU torch (its wheels' C extension fails at ``import torchvision``:
"operator torchvision::nms does not exist"), but its video ResNets are plain Python on torch.nn. So the pinned
wheel is fetched once with pip (``pip download torchvision==<TORCHVISION_VERSION> --no-deps``) into a cache,
its Python files are unpacked, and ``torchvision.models.video.resnet`` is imported unmodified under a private
package name, together with the modules it imports (``models._api``, ``models._meta``, ``models._utils``,
``transforms._presets``, ``utils``), also unmodified. Only the three package ``__init__`` files are not run
(the top one loads the C extension): their package objects are created empty. Nothing of it is copied into the
project, and nothing is patched.

The cache: ``$RESNET3D_TORCHVISION_CACHE``, else ``~/.cache/resnet3d/torchvision``. Without the wheel (no
package index reachable), tests skip, except in CI (``CI=true``), where they fail: parity is never skipped
silently there.
"""
import importlib
import os
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import pytest
import torch

TORCHVISION_VERSION = "0.29.1"
PACKAGE = "_torchvision_reference"  # never "torchvision": nothing else in the process may see it


def cache_dir():
    return Path(os.environ.get("RESNET3D_TORCHVISION_CACHE", Path.home() / ".cache" / "resnet3d" / "torchvision"))


def _unavailable(reason):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"torchvision reference unavailable in CI: {reason}")
    pytest.skip(f"torchvision reference unavailable: {reason}")


def _download_wheel(folder):
    """The torchvision wheel, downloaded by pip (the package index the machine is set up with) into ``folder``."""
    cmd = [sys.executable, "-m", "pip", "download", f"torchvision=={TORCHVISION_VERSION}", "--no-deps",
           "--only-binary=:all:", "--quiet", "-d", str(folder)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as err:
        _unavailable(f"pip download failed: {err}")
    wheels = sorted(Path(folder).glob(f"torchvision-{TORCHVISION_VERSION}-*.whl"))
    if done.returncode != 0 or not wheels:
        _unavailable(f"pip download torchvision=={TORCHVISION_VERSION} failed: {done.stderr.strip()[-300:]}")
    return wheels[0]


def source_root():
    """The folder holding the wheel's ``torchvision/`` Python files (fetched and unpacked on first use)."""
    root = cache_dir() / f"torchvision-{TORCHVISION_VERSION}"
    if (root / "torchvision" / "models" / "video" / "resnet.py").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as work:
        wheel = _download_wheel(work)
        unpacked = Path(work) / "unpacked"
        with zipfile.ZipFile(wheel) as archive:
            members = [n for n in archive.namelist() if n.startswith("torchvision/") and n.endswith(".py")]
            archive.extractall(unpacked, members)
        try:
            os.replace(unpacked, root)  # atomic: a concurrent run either sees all of it or none
        except OSError:
            if not root.is_dir():
                raise
    return root


def _empty_package(name, path):
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    module.__package__ = name
    sys.modules[name] = module


def video_resnet_module():
    """torchvision's ``torchvision/models/video/resnet.py`` module (r3d_18, mc3_18, r2plus1d_18, VideoResNet)."""
    name = f"{PACKAGE}.models.video.resnet"
    if name not in sys.modules:
        top = source_root() / "torchvision"
        _empty_package(PACKAGE, top)
        _empty_package(f"{PACKAGE}.models", top / "models")
        _empty_package(f"{PACKAGE}.models.video", top / "models" / "video")
    return importlib.import_module(name)


def randomize_torchvision(model, seed=0):
    """Every tensor of a torchvision video ResNet drawn from ``seed`` by its module's kind (BatchNorm affine and
    running statistics away from their identity values, so that folding them is tested), eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 0.5 + 0.75)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
            elif isinstance(module, torch.nn.Conv3d):  # Kaiming normal (fan-out), torchvision's init, seeded
                fan_out = module.weight.shape[0] * module.weight[0, 0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_out) ** 0.5)
            elif isinstance(module, torch.nn.Linear):
                bound = module.weight.shape[1] ** -0.5
                module.weight.copy_((torch.rand(module.weight.shape, generator=gen) * 2 - 1) * bound)
                module.bias.copy_((torch.rand(module.bias.shape, generator=gen) * 2 - 1) * bound)
    return model.eval()

