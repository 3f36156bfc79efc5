"""Plain ``relative/path label`` lists (the format MMAction2 users have) -> the same upstream annotation JSON
as the UCF101 / HMDB51 split files give.

One list per subset (``--train_list``, ``--val_list``), one video per line: a path relative to
``--video_path`` (a video file or a folder of image_00001.jpg frames) and its label, an integer index (into
``--class_names``, a file with one class name per line) or the class name itself. A class name may hold
blanks: a tab before it says where it starts; without one it is the class name of --class_names that ends
the line, or, without class names, the cut whose path exists (two that exist are an error). Frames are counted as for
the official splits; a listed video that cannot be found or decoded is an error (or left out with
``--allow_missing``).
"""
import re
import sys
from pathlib import Path

from src.atomic import write_json
from src.cli import ArgumentParser, run_main
from src.data.annotations import build_database, count_sources, read_lines
from src.data.degenerate import degenerate_lines, say
from src.data.frames import count_frames
from src.data.video import count_decodable_frames
from src.errors import UserError


class ListLocator:
    """Where each listed video is (what count_sources asks of a locator)."""

    def __init__(self, paths: dict, fmt: str):
        self.paths, self.format = paths, fmt

    def __call__(self, label, video_id):
        path = self.paths.get((label, video_id))
        return path if path is not None and path.exists() else None

    def count(self, path):
        return count_frames(path) if path.is_dir() else count_decodable_frames(path)


def read_class_names(path):
    if not Path(path).is_file():
        raise UserError(f"--class_names {path} not found: a text file with one class name per line")
    return [line.strip() for _, line in read_lines(path)]


def _splits(line):
    """Every way to cut ``line`` into (path, label) at a run of blanks, the last field as label first. A tab
    is the one unambiguous cut: a line with one is cut at its last tab only."""
    if "\t" in line:
        rel, label = line.rsplit("\t", 1)
        return [(rel.strip(), label.strip())]
    fields = line.split()
    return [(line[:m.start()], line[m.end():]) for m in reversed(list(re.finditer(r"\s+", line)))] \
        if len(fields) > 1 else []


def _label_problem(label, names, where):
    """Why ``label`` is no label of this list (a message), or None."""
    if label.isdigit():
        if names is None:
            return (f"{where}: label {label} is an index: pass --class_names with one class name per line (line "
                    f"1 = index 0)")
        if int(label) >= len(names):
            return f"{where}: label {label} is outside the {len(names)} classes of --class_names"
    elif names is not None and label not in names:
        return f"{where}: class '{label}' is not in --class_names"
    return None


def split_line(line, names, where, root=None):
    """(relative path, label) of one ``<relative/path> <label>`` line. The label is the last field, unless a
    class name with blanks is what ends the line: one that --class_names lists, or, without them, the one cut
    whose path exists under ``root`` (a tab between path and label always works)."""
    splits = _splits(line)
    if not splits or not all(splits[0]):
        raise UserError(f"{where}: expected '<relative/path> <label>' (a tab between them if the label has "
                        f"blanks), got '{line}'")
    valid = [s for s in splits if s[0] and s[1] and _label_problem(s[1], names, where) is None]
    if not valid or (names is None and splits[0][1].isdigit()):
        raise UserError(_label_problem(splits[0][1], names, where))
    if len(valid) == 1 or root is None:
        return valid[0]
    on_disk = [s for s in valid if (Path(root) / s[0]).exists()]
    if len(on_disk) > 1:
        readings = " or ".join(f"'{rel}' of class '{label}'" for rel, label in on_disk[:2])
        raise UserError(f"{where}: '{line}' reads as {readings}: put a tab between path and label")
    return on_disk[0] if on_disk else valid[0]


def read_list(path, subset, names, root=None):
    """[(video_id, label, subset, where, relative path)] of one list file; ``names``: class names or None;
    ``root``: the folder the paths are relative to (tells a class name with blanks from a path with them)."""
    if not Path(path).is_file():
        raise UserError(f"list file {path} not found: one '<relative/path> <label>' line per video")
    items = []
    for number, line in read_lines(path):
        rel, label = split_line(line, names, f"{path}:{number}", root)
        if label.isdigit():
            label = names[int(label)]
        video_id = str(Path(rel).with_suffix("")) if Path(rel).suffix else rel.rstrip("/")
        items.append((video_id, label, subset, f"{path}:{number}", rel))
    return items


def generate_from_lists(train_list, val_list, video_path, dst_json, class_names=None, allow_missing=False,
                        n_jobs=None, sample_duration=16):
    """Write one annotation JSON from the two lists; print the counts and the warnings about degenerate data
    (src.data.degenerate; ``sample_duration``: the clip length); return the exit code."""
    names = read_class_names(class_names) if class_names else None
    items = read_list(train_list, "training", names, video_path) + read_list(val_list, "validation", names,
                                                                             video_path)
    if names is None:  # labels given as names: classes in sorted order
        names = sorted({label for _, label, _, _, _ in items})
    root = Path(video_path)
    paths = {(label, video_id): root / rel for video_id, label, _, _, rel in items}
    fmt = "frames" if any(p.is_dir() for p in paths.values()) else "video"
    counts = count_sources([i[:4] for i in items], ListLocator(paths, fmt), n_jobs)
    database, missing, _ = build_database([i[:4] for i in items], counts)
    for video_id, value in database.items():
        value["video_path"] = str(paths[(value["annotations"]["label"], video_id)].resolve())
    per_subset = {s: sum(1 for v in database.values() if v["subset"] == s) for s in ("training", "validation")}
    print(f"{Path(dst_json).name}: {len(names)} classes, {per_subset['training']} training, "
          f"{per_subset['validation']} validation, {len(missing)} listed but missing under {video_path}")
    say(degenerate_lines(names, database, sample_duration, lambda _, value: Path(value["video_path"])))
    if missing and not allow_missing:
        blanks = any(len(video_id.split()) > 1 for video_id, _ in missing)
        print(f"error: {len(missing)} listed videos cannot be found or decoded under {video_path} (e.g. "
              f"{missing[0][0]}, listed at {missing[0][1]}): fix the paths"
              f"{' (a class name with blanks: put a tab between path and label)' if blanks else ''} or pass "
              f"--allow_missing; {dst_json} not written", file=sys.stderr)
        return 1
    write_json(dst_json, {"labels": names, "database": database}, ensure_ascii=False)
    return 0


def main(argv=None):

    parser = ArgumentParser(description="Write an annotation JSON from '<relative/path> <label>' lists.")
    parser.add_argument("--train_list", required=True, help="training list: '<relative/path> <label>' per line")
    parser.add_argument("--val_list", required=True, help="validation list, same format")
    parser.add_argument("--video_path", required=True, help="folder the list paths are relative to")
    parser.add_argument("--class_names", default="", help="class names, one per line (needed for index labels)")
    parser.add_argument("--dst_json", required=True, help="the annotation JSON to write")
    parser.add_argument("--n_jobs", type=int, default=0, help="processes counting video frames (0 = all cores)")
    parser.add_argument("--allow_missing", action="store_true", help="leave videos that cannot be found out")
    parser.add_argument("--sample_duration", type=int, default=16,
                        help="frames of a training clip: shorter videos are warned about (default 16, the configs')")
    args = parser.parse_args(argv)
    return generate_from_lists(args.train_list, args.val_list, args.video_path, args.dst_json, args.class_names,
                               args.allow_missing, args.n_jobs or None, args.sample_duration)


if __name__ == "__main__":
    sys.exit(run_main(main))
