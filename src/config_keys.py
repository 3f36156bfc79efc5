"""Every configuration key, declared once: its type, its default, what it means, its choices and its range.

The YAML files (``ucf101_config.yaml``, ``hmdb51_config.yaml``, ``demo_config.yaml``) hold values only;
help texts and choices live here, so ``--help``, the README's reference table and the checks never
drift apart. Defaults are the original suite's UCF101 values (a test keeps ``ucf101_config.yaml`` equal to
them), so a YAML that omits a key gets the original's value.
"""
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any
from collections.abc import Callable


def at_least(low: float) -> Callable[[Any], str | None]:
    def check(value):
        return None if value >= low else f"must be at least {low:g}"
    return check


def positive(value) -> str | None:
    return None if value > 0 else "must be larger than 0"


def fraction(value) -> str | None:
    """(0, 1]."""
    return None if 0 < value <= 1 else "must be in (0, 1]"


def below_one(value) -> str | None:
    """[0, 1)."""
    return None if 0 <= value < 1 else "must be in [0, 1)"


def between_0_and_1(value) -> str | None:
    """(0, 1)."""
    return None if 0 < value < 1 else "must be between 0 and 1 (exclusive)"


def channel_values(positive_only=False) -> Callable[[Any], str | None]:
    """One finite number per RGB channel (above 0 with ``positive_only``)."""
    def check(value):
        ok = (len(value) == 3 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                      and (v > 0 or not positive_only) for v in value))
        return None if ok else f"must be 3 finite numbers{' above 0' if positive_only else ''}, e.g. [0.4, 0.4, 0.4]"
    return check


def empty_or_size(value) -> str | None:
    ok = not value or (len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                               for v in value))
    return None if ok else "must be [] or [height, width] in pixels, e.g. [128, 171]"


def auto_or_at_least_one(value) -> str | None:
    if value == "auto":
        return None
    try:
        return None if int(value) >= 1 else "must be 'auto' or at least 1"
    except ValueError:
        return "must be 'auto' or a whole number of at least 1"


def no_space(value) -> str | None:
    return "must not contain spaces (the Ascend tools split on them)" if " " in value else None


def file_name_part(value) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", str(value)):
        return None
    return "must be a name of letters, digits, '_' and '-' (it names files), e.g. mydata"


@dataclass(frozen=True)
class Key:
    default: Any
    help: str
    choices: tuple = ()
    check: Callable[[Any], str | None] | None = None
    convert: Callable[[Any], Any] | None = None  # applied after the checks (e.g. "4" -> 4)

    def problem(self, value) -> str | None:
        """What is wrong with ``value`` (its type, choices, range), or None."""
        problem = _type_problem(self.default, value)
        if problem:
            return problem
        if self.choices and str(value) not in [str(c) for c in self.choices]:
            return f"is not one of {', '.join(str(c) for c in self.choices)}"
        return self.check(value) if self.check else None


def _type_problem(default, value) -> str | None:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, (str, int)) and not isinstance(value, bool)
    return None if ok else f"is not a {type(default).__name__}"


def key(default, help, choices=(), check=None, convert=None):
    """A configuration key as a field of its section: the section's default and its :class:`Key` (metadata)."""
    meta = {"key": Key(default, help, tuple(choices), check, convert)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def key_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for key ``name``, or None: the one rule that the command line, the config
    file and a model file's record are checked by."""
    return KEYS[name].problem(value)


ORIGINAL_ONLY = "Kept from the original suite for compatibility"


@dataclass(frozen=True)
class Placement:
    """Where training runs: the device kind and data parallelism (they change the numbers: precision, effective
    batch)."""
    device_target: str = key("auto", "Target device: CPU, GPU, Ascend, or auto (Ascend where an NPU works, else GPU, "
                                     "else CPU; one line says which and why).", ("auto", "CPU", "GPU", "Ascend"))
    run_distribute: bool = key(False, "Data-parallel training over all ranks started by the launcher "
                                      "(HCCL on Ascend, msrun anywhere).")


@dataclass(frozen=True)
class Runtime:
    """How and how fast it runs on the device chosen; never what it computes."""
    device_id: int = key(0, "Device id on this host (Ascend/GPU). As for every key: the command line, else the "
                            "environment (DEVICE_ID, set by the launch scripts), else the config file.",
                         check=at_least(0))
    is_modelarts: bool = key(False, f"{ORIGINAL_ONLY}; not used.")
    data_url: str = key("", f"{ORIGINAL_ONLY} (ModelArts); not used.")
    train_url: str = key("", f"{ORIGINAL_ONLY} (ModelArts); not used.")
    mode: str = key("GRAPH", "MindSpore execution mode: GRAPH (default, as the original) or PYNATIVE.",
                    ("GRAPH", "PYNATIVE"))
    conv_impl: str = key("auto", "3-D convolution on CPU: auto (fast oneDNN op when built, else native), fast, "
                                 "or native (environment: RESNET3D_CONV_IMPL). GPU/Ascend always use native.",
                         ("auto", "fast", "native"))
    cpu_isa_cap: str = key("auto", "CPU only: cap MindSpore's bundled oneDNN at AVX2 so native convolutions use "
                                   "fast kernels. auto = cap when native convolutions run; on; off.",
                           ("auto", "on", "off"))
    num_workers: str | int = key("auto", "Data loading worker processes per rank; auto = this host's cores "
                                         "divided by the ranks on it, at most 8.", check=auto_or_at_least_one,
                                 convert=lambda v: v if v == "auto" else int(v))
    eval_batch_size: int = key(16, "Clips per evaluation micro-batch.", check=at_least(1))


@dataclass(frozen=True)
class Paths:
    """Where inputs are read and results written, and what a run starts from."""
    video_path: str = key("", "Directory of extracted frames <class>/<video>/image_00001.jpg, or of videos "
                              "<class>/<video>.avi (.mp4/.mkv/.webm).")
    annotation_path: str = key("", "Annotation JSON file (upstream 3D-ResNets format). Empty with a plain folder as "
                                   "--video_path: a split of it is made (see val_fraction).")
    result_path: str = key("./results/ucf101", "Directory for checkpoints, logs, curves and evaluation results.")
    pretrain_path: str = key("", "Pretrained model to fine-tune from (.ckpt, converted by pth_to_ckpt.py). "
                                 "Empty = train from scratch.")
    inference_ckpt_path: str = key("", "Checkpoint evaluated by eval.py (.ckpt), or a result folder (its best.ckpt, "
                                       "else its latest checkpoint).")
    onnx_path: str = key("", "ONNX model evaluated by eval_onnx.py, or by eval.py in place of a checkpoint (and "
                             "run by predict.py).")
    resume: str = key("", "Resume training from a checkpoint written by train.py (PATH), or 'auto' = the latest "
                          "one in result_path.")
    resume_allow: list = key([], "Keys whose change since the resumed checkpoint is accepted on purpose (e.g. "
                                 "[lr_max]); any other change that alters the result is an error on resume.")
    n_pretrain_classes: int = key(0, "Classes of the pretrained head; when set, a pretrained checkpoint with "
                                     "another head is an error. 0 = accept what the checkpoint holds.",
                                  check=at_least(0))


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a network's architecture (also what a model file's record carries)."""
    model: str = key("resnet", "Network family, upstream's --model: resnet (3D ResNet), resnet2p1d (R(2+1)D), the "
                               "CVPR 2018 release's preresnet, wideresnet, resnext, and torchvision's tv_r3d, tv_mc3, "
                               "tv_r2plus1d (r3d_18, mc3_18, r2plus1d_18: their own stem; shortcut B, stride 1).",
                     ("resnet", "resnet2p1d", "preresnet", "wideresnet", "resnext", "tv_r3d", "tv_mc3",
                      "tv_r2plus1d"))
    model_depth: int = key(50, "ResNet depth: 10, 18, 34, 50, 101, 152 or 200.", (10, 18, 34, 50, 101, 152, 200))
    resnet_shortcut: str = key("B", "Shortcut type: A (zero-padded identity, depths 10-34) or B (1x1x1 conv + BN, "
                                    "released weights).", ("A", "B"))
    conv1_t_size: int = key(7, "Temporal kernel size of the stem convolution.", check=at_least(1))
    conv1_t_stride: int = key(1, "Temporal stride of the stem convolution.", check=at_least(1))
    no_max_pool: bool = key(False, "Skip the stem max-pool.")
    widen_factor: float = key(1.0, "Channel width multiplier of all stages.", check=positive)
    wide_resnet_k: int = key(2, "wideresnet: width multiplier k of the stages.", check=at_least(1))
    resnext_cardinality: int = key(32, "resnext: groups of the 3x3x3 convolutions.", check=at_least(1))
    n_input_channels: int = key(3, "Number of input channels (3 for the RGB frames the data pipeline produces).",
                                check=at_least(1))
    n_classes: int = key(101, "Number of classes. hmdb51: 51, ucf101: 101.", check=at_least(1))


@dataclass(frozen=True)
class Data:
    """The dataset's name and the clips training makes."""
    dataset: str = key("ucf101", "Dataset name (ucf101, hmdb51, or your own: letters, digits, '_', '-'), used in "
                                 "checkpoint, log and result file names.", check=file_name_part)
    input_format: str = key("auto", "What video_path holds: frames (folders of JPEGs), video (video files), or auto "
                                    "(detected and printed).", ("auto", "frames", "video"))
    sample_size: int = key(112, "Height and width of inputs.", check=at_least(1))
    sample_duration: int = key(16, "Temporal duration of inputs (frames).", check=at_least(1))
    sample_t_stride: int = key(1, "If larger than 1, input frames are subsampled with the stride.",
                               check=at_least(1))
    train_crop: str = key("center", "Spatial cropping method in training.", ("random", "center"))
    h_flip: bool = key(False, "Random horizontal flip in training (drawn once per clip).")
    colorjitter: bool = key(False, "Color jitter (0.4, 0.4, 0.4, 0.1) in training (drawn once per clip).")
    train_crop_min_scale: float = key(0.25, "Min scale for random cropping in training.", check=fraction)
    train_crop_min_ratio: float = key(0.75, "Min aspect ratio for random cropping in training.", check=fraction)
    train_t_crop: str = key("random", "Temporal cropping method in training.", ("random", "center"))
    mean: list = key([0.4345, 0.4051, 0.3775], "Per-channel (RGB) mean the clips are normalised with: the "
                                               "original's; a model file's record sets its own (torchvision's).",
                      check=channel_values())
    std: list = key([0.2768, 0.2713, 0.2737], "Per-channel (RGB) standard deviation of the normalisation (as mean).",
                    check=channel_values(positive_only=True))
    resize: list = key([], "Evaluation frames: [] = resize the shorter side to sample_size, then the centre crop "
                           "(the original); [H, W] = resize every frame to HxW first (torchvision's [128, 171]).",
                      check=empty_or_size)
    val_fraction: float = key(0.2, "With --video_path a plain folder of <class>/<video> files or frame folders and no "
                                   "--annotation_path: each class's share of videos kept for validation (a stratified "
                                   "split with a fixed seed, written into the run folder and recorded in the model).",
                              check=between_0_and_1)


@dataclass(frozen=True)
class Evaluation:
    """How a model is evaluated: views, subset, precision, and evaluation during training."""
    inference_stride: int = key(16, "Stride of sliding window in inference.", check=at_least(1))
    test_clips: int = key(0, "Temporal views in evaluation: 0 = the original's sliding windows every inference_stride "
                             "frames; N = N clips spread uniformly over the video (MMAction2's test protocol).",
                          check=at_least(0))
    test_crops: int = key(1, "Spatial views in evaluation: 1 = centre crop (the original); 3 = three crops along the "
                             "longer side (MMAction2's ThreeCrop).", (1, 3))
    ignore: bool = key(True, "Leave videos without any prediction out of the video accuracy denominator "
                             "(reported as missing).")
    eval_subset: str = key("validation", "Annotation subset evaluated by eval.py and eval_in_training: validation "
                                         "(aliases val, test) or training.",
                           ("validation", "val", "test", "training"))
    infer_precision: str = key("fp32", "Precision of the inference network (eval.py, predict.py, extract_features.py, "
                                       "eval_in_training): fp32; bf16 = BF16 convolutions with FP32 accumulation and "
                                       "head, on CPUs with native BF16 (avx512_bf16 or amx_bf16) and the fast op, "
                                       "refused elsewhere; auto = bf16 where native, else fp32.",
                               ("fp32", "bf16", "auto"))
    eval_interval: int = key(1, "With eval_in_training: evaluate every this many epochs (and after the last).",
                             check=at_least(1))
    eval_in_training: bool = key(False, "Evaluate on the validation split after every epoch and keep best.ckpt.")


@dataclass(frozen=True)
class Optimisation:
    """The optimizer, the loss, precision and the batch."""
    seed: int = key(1, "Random seed of weights initialisation, shuffling and augmentation.")
    start_ft: str = key("layer4", "Module name of beginning of fine-tuning; modules before it are frozen.",
                        ("conv1", "layer1", "layer2", "layer3", "layer4", "fc"))
    amp_level: str = key("auto", "Mixed precision: auto = O2 on Ascend (the original) and on CPUs with native BF16 and "
                                 "the fast op, O0 (FP32) elsewhere. On the CPU, O1 / O2 = BF16 convolutions (FP32 "
                                 "accumulation, weights, BatchNorm and loss) and O3 is refused; on GPU / Ascend FP16. "
                                 "BatchNorm stays in FP32.", ("auto", "O0", "O1", "O2", "O3"))
    loss_scale: float = key(1024.0, "Loss scale (FP16 training on Ascend): the fixed value, or the start of a dynamic "
                                    "one.", check=positive)
    loss_scale_type: str = key("fixed", "fixed: the loss scale never changes (the original); dynamic: halved on an "
                                        "overflowing step (which is skipped), doubled after 1000 clean steps.",
                               ("fixed", "dynamic"))
    drop_overflow_update: bool = key(False, "Skip (and count) a step whose gradients overflow, leaving weights and "
                                            "optimizer state untouched. Always on with loss_scale_type dynamic.")
    label_smoothing: float = key(0.1, "Label smoothing of the softmax cross-entropy loss.", check=below_one)
    mixup_alpha: float = key(0.0, "Clip-level mixup: Beta(alpha, alpha) mixing of whole clips and their (smoothed) "
                                  "labels; 0 = off.", check=at_least(0))
    cutmix_alpha: float = key(0.0, "Clip-level cutmix: one box cut from another clip of the batch, the same on "
                                   "every frame; labels mixed by area; 0 = off. With both set, each batch uses one "
                                   "of them at random.", check=at_least(0))
    momentum: float = key(0.9, "SGD momentum.", check=below_one)
    nesterov: bool = key(True, "Nesterov momentum (the original); upstream 3D-ResNets used plain momentum.")
    weight_decay: float = key(0.001, "SGD weight decay.", check=at_least(0))
    batch_size: int = key(128, "Training batch size per device.", check=at_least(1))
    accumulation_steps: int = key(1, "Micro-batches whose gradients are averaged into one optimizer step: the "
                                     "effective batch is batch_size x ranks x accumulation_steps.", check=at_least(1))


@dataclass(frozen=True)
class Schedule:
    """The learning-rate schedule (n_epochs, its length, is the length section)."""
    lr_decay_mode: str = key("steps", "Learning-rate schedule after warm-up; plateau = lr_max until the validation "
                                      "loss stops improving (needs eval_in_training), as upstream's --lr_scheduler "
                                      "plateau.",
                             ("poly", "steps", "linear", "cosine", "plateau"))
    lr_milestones: list = key([], "steps mode only: epochs at which the LR is multiplied by 0.1. Empty = the "
                                  "original's global steps 50/100/150.")
    plateau_patience: int = key(10, "plateau mode: epochs without a lower validation loss before the LR is multiplied "
                                    "by 0.1 (upstream's lr_patience).", check=at_least(0))
    warmup_epochs: float = key(15.0, "Linear warm-up epochs from lr_init to lr_max.", check=at_least(0))
    lr_init: float = key(0.0, "Initial learning rate (start of warm-up).", check=at_least(0))
    lr_max: float = key(0.03, "Maximum learning rate.", check=positive)
    lr_end: float = key(0.0, "Final learning rate (poly, linear, cosine).", check=at_least(0))


@dataclass(frozen=True)
class Length:
    """How long training runs: the one key a resume may change, the schedule follows it."""
    n_epochs: int = key(200, "Number of training epochs.", check=at_least(1))


@dataclass(frozen=True)
class Checkpoints:
    """How often checkpoints are saved and how many are kept."""
    save_checkpoint_epochs: int = key(1, "Save a checkpoint every this many epochs.", check=at_least(1))
    save_checkpoint_steps: int = key(0, "Also save a (mid-epoch) checkpoint every this many steps; 0 = only per "
                                        "epoch.", check=at_least(0))
    keep_checkpoint_max: int = key(20, "Keep at most this many epoch checkpoints (at least 1: the latest one is "
                                       "the resumable state).", check=at_least(1))


@dataclass(frozen=True)
class Export:
    """What export.py (and predict.py) read and write."""
    ckpt_file: str = key("", "export.py / predict.py: checkpoint to use (.ckpt), or a result folder.")
    file_name: str = key("resnet3d", "export.py: output file name without extension.", check=no_space)
    file_format: str = key("MINDIR", "export.py: MINDIR, AIR or ONNX.", ("MINDIR", "AIR", "ONNX"))
    export_batch_size: int = key(1, "export.py: batch size of the exported graph (also --batch_size on export.py).",
                                 check=at_least(1))

# The sections, in order, and whether each changes what training computes: a resumed run must keep every key of
# the result sections (src.engine.state.check_fingerprint); the others (where it runs, how fast, where files go,
# how often it saves, what export writes) may change freely. n_epochs is the one length key a resume may change:
# the schedule is recomputed for the new length.
SECTION_TYPES = {"placement": (True, Placement), "runtime": (False, Runtime), "paths": (False, Paths),
                 "arch": (True, ModelSpec), "data": (True, Data), "evaluation": (True, Evaluation),
                 "optimisation": (True, Optimisation), "schedule": (True, Schedule), "length": (False, Length),
                 "checkpoints": (False, Checkpoints), "export": (False, Export)}
# derived: every key's Key, and each section's key names
KEYS = {f.name: f.metadata["key"] for _, cls in SECTION_TYPES.values() for f in fields(cls)}
SECTIONS = {name: (result, tuple(f.name for f in fields(cls))) for name, (result, cls) in SECTION_TYPES.items()}
SECTION_OF = {key: name for name, (_, keys) in SECTIONS.items() for key in keys}


def result_keys() -> tuple:
    """The keys that decide what training computes (recorded in every training checkpoint)."""
    return tuple(k for k in KEYS if SECTIONS[SECTION_OF[k]][0])
