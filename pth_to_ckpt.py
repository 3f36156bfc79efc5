"""Convert an upstream 3D-ResNets-PyTorch .pth (resnet, resnet2p1d, and the CVPR 2018 preresnet, wideresnet,
resnext) into a MindSpore .ckpt; the family and its options are read from the tensors and printed.

python pth_to_ckpt.py --pth_path=./pretrained.pth --ckpt_path=./pretrained.ckpt [--model_depth=50] [--resnet_shortcut=B]
"""
import argparse
import sys

from src.cli import ArgumentParser, run_main


def _main(argv):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pth_path", required=True, help="upstream .pth (state_dict, {'state_dict': ...}, "
                                                          "DataParallel 'module.' prefixes are fine)")
    parser.add_argument("--ckpt_path", required=True, help="MindSpore checkpoint to write")
    parser.add_argument("--model_depth", type=int, default=None, help="force the depth (default: inferred)")
    parser.add_argument("--resnet_shortcut", choices=["A", "B"], default=None,
                        help="force the shortcut type (default: inferred)")
    args = parser.parse_args(argv)
    from src.logs import out
    from src.runtime import setup_context
    from src.weights.pth_convert import convert_pth

    setup_context("CPU", "PYNATIVE")
    arch, count, notes = convert_pth(args.pth_path, args.ckpt_path, args.model_depth, args.resnet_shortcut)
    out.info(f"architecture: {arch.describe()}")
    for note in notes:
        out.info(note)
    flags = " ".join(f for f in (f"--model={arch.model}", arch.options()) if f)
    out.info(f"use it with {flags} --model_depth={arch.model_depth} --resnet_shortcut={arch.resnet_shortcut}")
    out.info(f"converted {count} tensors: {args.pth_path} -> {args.ckpt_path}")
    return 0


def main(argv=None):
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
