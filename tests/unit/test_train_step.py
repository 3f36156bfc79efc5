"""src/train/step.py: gradient accumulation, loss scaling with overflow skipping, AMP levels; the input
worker rule of src/runtime.py."""
import numpy as np
import pytest

import mindspore as ms

from src.errors import UserError
from src.runtime import auto_num_workers
from src.train.step import build_train_step, resolve_amp_level
from tests.helpers.nets import conv_fc_net

N_CLASSES = 4


def _step(net, **kw):
    options = dict(start_ft="conv1", device_target="CPU", n_classes=N_CLASSES, label_smoothing=0.1, momentum=0.9,
                   weight_decay=1e-3, loss_scale=1024.0)
    options.update(kw)
    return build_train_step(net, np.full(10, 0.1, np.float32), **options)


def _batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return (ms.Tensor(rng.standard_normal((n, 3, 4, 8, 8)).astype(np.float32)),
            ms.Tensor(rng.integers(0, N_CLASSES, n).astype(np.int32)))


def _weights(net):
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


def _split(clip, label, k):
    n = clip.shape[0] // k
    return [(clip[i * n:(i + 1) * n], label[i * n:(i + 1) * n]) for i in range(k)]


def _max_diff(a, b):
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def _same_start(make):
    ms.set_seed(0)
    a = make()
    b = make()
    for pa, pb in zip(a.get_parameters(), b.get_parameters()):
        pb.set_data(pa.data.copy())
    return a, b


def test_two_micro_batches_of_four_equal_one_batch_of_eight():
    a, b = _same_start(lambda: conv_fc_net(N_CLASSES))
    clip, label = _batch(8)
    whole, accumulated = _step(a, drop_overflow_update=True), _step(b, accumulation_steps=2)
    for _ in range(3):  # momentum state too
        whole([(clip, label)])
        accumulated(_split(clip, label, 2))
    diff = _max_diff(_weights(a), _weights(b))
    print(f"accumulation 2 x 4 vs 8 (no BatchNorm): max weight difference {diff:.3g}")
    assert diff < 1e-6
    assert whole.global_step == accumulated.global_step == 3


def test_accumulation_with_batchnorm_training_normally():
    from src.models.factory import ModelSpec, build_model

    spec = ModelSpec(model_depth=10, n_classes=N_CLASSES, widen_factor=0.125)
    a, b = _same_start(lambda: build_model(spec))
    clip, label = _batch(8)
    _step(a, drop_overflow_update=True)([(clip, label)])
    _step(b, accumulation_steps=2)(_split(clip, label, 2))
    wa, wb = _weights(a), _weights(b)
    diff = _max_diff(wa, wb)
    rel = np.median([np.abs(wa[k] - wb[k]).max() / (np.abs(wa[k]).max() + 1e-12) for k in wa])
    print(f"accumulation 2 x 4 vs 8 with BatchNorm in training mode: max weight difference {diff:.3g}, "
          f"median per-tensor relative {rel:.3g}")
    assert np.isfinite(diff) and diff > 1e-6  # batch statistics of 4 clips are not those of 8


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_an_overflowing_step_is_skipped_and_the_scale_halved(accumulation_steps):
    net = conv_fc_net(N_CLASSES)
    step = _step(net, loss_scale_type="dynamic", accumulation_steps=accumulation_steps)
    before = {p.name: p.asnumpy().copy() for p in step.get_parameters() if "accum" not in p.name}
    clip, label = _batch(8)
    bad = clip.asnumpy()
    bad[-1, 0, 0, 0, 0] = np.inf  # in the last micro-batch: the earlier ones were clean
    result = step(_split(ms.Tensor(bad), label, accumulation_steps))
    after = {p.name: p.asnumpy() for p in step.get_parameters() if "accum" not in p.name}
    changed = [k for k in before if k != "scale_sense" and not np.array_equal(before[k], after[k])
               and k not in ("current_iterator_step", "last_overflow_iterator_step")]
    assert result.overflow and (result.scale_before, result.scale_after) == (1024.0, 512.0)
    assert changed == [], changed  # weights, momentum, global step: untouched
    assert step.global_step == 0
    # the next, clean step trains (the accumulators were emptied)
    result = step(_split(*_batch(8, seed=1), accumulation_steps))
    assert not result.overflow and step.global_step == 1
    assert not np.array_equal(before["fc.weight"], net.fc.weight.asnumpy())


def test_fixed_scale_with_drop_skips_an_inf_batch():
    net = conv_fc_net(N_CLASSES)
    step = _step(net, drop_overflow_update=True)
    clip, label = _batch(4)
    bad = clip.asnumpy()
    bad[0, 0, 0, 0, 0] = np.inf
    before = _weights(net)
    result = step([(ms.Tensor(bad), label)])
    assert result.overflow and result.scale_after == 1024.0
    assert _max_diff(before, _weights(net)) == 0.0


def test_amp_levels():
    assert resolve_amp_level("auto", "Ascend") == "O2" and resolve_amp_level("auto", "GPU") == "O0"
    # the CPU: auto = O2 (BF16 convolutions) exactly where they can run
    assert resolve_amp_level("auto", "CPU", bf16_missing=None) == "O2"
    assert resolve_amp_level("auto", "CPU", bf16_missing="this CPU has no native BF16") == "O0"
    assert resolve_amp_level("O2", "CPU", bf16_missing=None) == "O2"
    assert resolve_amp_level("O1", "CPU", bf16_missing=None) == "O1"
    with pytest.raises(UserError, match=r"--amp_level=O2 trains with BF16 convolutions on the CPU, but this CPU "
                                        r"has no native BF16: use --amp_level=O0"):
        resolve_amp_level("O2", "CPU", bf16_missing="this CPU has no native BF16")
    with pytest.raises(UserError, match="--amp_level=O3 casts BatchNorm.*use --amp_level=O2"):
        resolve_amp_level("O3", "CPU", bf16_missing=None)
    assert resolve_amp_level("O3", "GPU") == "O3" and resolve_amp_level("O0", "CPU") == "O0"


def test_input_workers_are_sized_to_the_host(monkeypatch):
    monkeypatch.delenv("NNODES", raising=False)
    assert auto_num_workers(1, cores=2) == 2
    assert auto_num_workers(2, cores=2) == 1
    assert auto_num_workers(8, cores=192) == 8  # capped
    assert auto_num_workers(1, cores=64) == 8
    monkeypatch.setenv("NNODES", "2")
    assert auto_num_workers(16, cores=96) == 8 and auto_num_workers(4, cores=8) == 4
