"""Official split files -> upstream annotation JSON (ucf101_01.json ..., hmdb51_1.json ...).

``n_frames`` is counted from the frames on disk (segment [1, n + 1]), or, for a folder of videos
``<class>/<video>.avi``, by decoding each video (frames that actually decode: the container's
count is an estimate; where they differ a warning says so). For every split the counts are
printed; videos listed in a split but without frames are an error unless ``allow_missing`` (then
they are left out of the JSON); videos on disk that no split lists are reported.
"""
import multiprocessing
import os
import re
import sys
from pathlib import Path, PurePosixPath

from src.atomic import remove_stale_temps, write_json
from src.data.layout import SourceLocator
from src.data.video import container_frame_count, count_decodable_frames
from src.errors import UserError
from src.cli import ArgumentParser

SPLITS = (1, 2, 3)
# (training, validation) videos of the official splits, to flag incomplete datasets
OFFICIAL_COUNTS = {("ucf101", 1): (9537, 3783), ("ucf101", 2): (9586, 3734), ("ucf101", 3): (9624, 3696),
                   ("hmdb51", 1): (3570, 1530), ("hmdb51", 2): (3570, 1530), ("hmdb51", 3): (3570, 1530)}
FULL_CLASSES = {"ucf101": 101, "hmdb51": 51}


def read_lines(path):
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                yield number, line.strip()


def read_class_index(path):
    """classInd.txt ("1 ApplyEyeMakeup") -> class names in index order."""
    if not Path(path).is_file():
        raise UserError(f"{path} not found: --dir_path must hold the UCF101 split files (classInd.txt ...)")
    names = {}
    for number, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UserError(f"{path}:{number}: expected '<index> <ClassName>', got '{line}'")
        names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise UserError(f"{path}: class indices must be 1..{len(names)} without gaps")
    return [names[i] for i in range(1, len(names) + 1)]


def read_ucf101_split(dir_path, split, classes):
    """[(video_id, class, subset)] of UCF101 split ``split``, or None if its files are absent."""
    train, test = Path(dir_path) / f"trainlist0{split}.txt", Path(dir_path) / f"testlist0{split}.txt"
    if not train.is_file() or not test.is_file():
        return None
    items = []
    for path, subset in ((train, "training"), (test, "validation")):
        for number, line in read_lines(path):
            parts = line.split()
            name = PurePosixPath(parts[0].replace("\\", "/"))
            allowed = (2,) if subset == "training" else (1, 2)  # test lines may carry the index too
            if len(parts) not in allowed or len(name.parts) != 2:
                form = "'<Class>/<video>.avi <index>'" if subset == "training" else "'<Class>/<video>.avi'"
                raise UserError(f"{path}:{number}: expected {form}, got '{line}'")
            label = name.parts[0]
            if label not in classes:
                raise UserError(f"{path}:{number}: class '{label}' is not in classInd.txt")
            if len(parts) == 2 and (not parts[1].isdigit() or int(parts[1]) != classes.index(label) + 1):
                raise UserError(f"{path}:{number}: index '{parts[1]}' does not match class {label} "
                                f"({classes.index(label) + 1} in classInd.txt)")
            items.append((name.stem, label, subset, f"{path}:{number}"))
    return items


_HMDB_FILE = re.compile(r"^(?P<label>.+)_test_split(?P<split>\d+)\.txt$")


def read_hmdb51_split(dir_path, split):
    """(classes, [(video_id, class, subset)]) of HMDB51 split ``split`` or None if absent.

    Ids: 1 = training, 2 = validation (test), 0 = unused (kept as subset None).
    """
    files = sorted(p for p in Path(dir_path).glob(f"*_test_split{split}.txt") if _HMDB_FILE.match(p.name))
    if not files:
        return None
    classes, items = [], []
    for path in files:
        label = _HMDB_FILE.match(path.name).group("label")
        classes.append(label)
        for number, line in read_lines(path):
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise UserError(f"{path}:{number}: expected '<video>.avi <0|1|2>', got '{line}'")
            subset = {"1": "training", "2": "validation", "0": None}[parts[1]]
            items.append((Path(parts[0]).stem, label, subset, f"{path}:{number}"))
    return sorted(classes), items


def _video_counts(path):
    import cv2

    cv2.setNumThreads(1)
    try:
        return count_decodable_frames(path), container_frame_count(path)
    except UserError:
        return 0, 0  # cannot be opened: reported as missing


def count_sources(items, locate, n_jobs=None):
    """{(class, video_id): frames} of the listed videos found on disk (frames on disk, or frames that
    decode, counted in parallel); warns about videos whose container declares another count."""
    paths = {}
    for video_id, label, subset, _ in items:
        if subset is not None and (label, video_id) not in paths:
            found = locate(label, video_id)
            if found is not None:
                paths[(label, video_id)] = found
    if locate.format == "frames":
        return {key: locate.count(path) for key, path in paths.items()}
    keys = list(paths)
    jobs = max(1, min(n_jobs or os.cpu_count() or 1, len(keys) or 1))
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            results = pool.map(_video_counts, [paths[k] for k in keys], chunksize=8)
    else:
        results = [_video_counts(paths[k]) for k in keys]
    differ = [(k, decoded, declared) for k, (decoded, declared) in zip(keys, results)
              if decoded and declared != decoded]
    if differ:
        (label, video_id), decoded, declared = differ[0]
        print(f"  warning: {len(differ)} videos decode to another frame count than their container declares "
              f"(e.g. {label}/{video_id}: {decoded} decode, {declared} declared); the JSON records the decoded "
              f"counts", file=sys.stderr)
    return {k: decoded for k, (decoded, _) in zip(keys, results)}


def build_database(items, counts):
    """(database dict, missing [(video_id, where)], listed {(class, video_id)}); ``counts`` as count_sources."""
    database, missing, listed, seen = {}, [], set(), {}
    for video_id, label, subset, where in items:
        if video_id in seen:
            raise UserError(f"{where}: video {video_id} is already listed at {seen[video_id]}")
        seen[video_id] = where
        listed.add((label, video_id))
        if subset is None:
            continue
        n_frames = counts.get((label, video_id), 0)
        if n_frames == 0:
            missing.append((video_id, where))
            continue
        database[video_id] = {"subset": subset, "annotations": {"label": label, "segment": [1, n_frames + 1]}}
    return database, missing, listed


def _example(pairs):
    return ", ".join(str(p[0]) for p in pairs[:3]) + (" ..." if len(pairs) > 3 else "")


def generate(dataset, dir_path, video_path, dst_dir_path, allow_missing=False, input_format="auto", n_jobs=None):
    """Write every available split's JSON; print counts; return the exit code (0 ok, 1 problems)."""
    if not Path(dir_path).is_dir():
        raise UserError(f"--dir_path {dir_path} is not a directory of split files")
    if not Path(video_path).is_dir():
        raise UserError(f"--video_path {video_path} is not a directory of extracted frames or videos")
    locate = SourceLocator(video_path, input_format)
    on_disk = locate.on_disk()
    counted = {}
    classes = read_class_index(Path(dir_path) / "classInd.txt") if dataset == "ucf101" else None
    status, written = 0, 0
    remove_stale_temps(dst_dir_path)  # JSON files of a killed earlier run
    for split in SPLITS:
        if dataset == "ucf101":
            items = read_ucf101_split(dir_path, split, classes)
            name, split_classes = f"ucf101_0{split}.json", classes
        else:
            found = read_hmdb51_split(dir_path, split)
            split_classes, items = found if found else (None, None)
            name = f"hmdb51_{split}.json"
        if items is None:
            continue
        todo = [item for item in items if (item[1], item[0]) not in counted]
        counted.update(count_sources(todo, locate, n_jobs))  # each video once, whatever the splits
        database, missing, listed = build_database(items, counted)
        counts = {s: sum(1 for v in database.values() if v["subset"] == s) for s in ("training", "validation")}
        print(f"{name}: {len(split_classes)} classes, {counts['training']} training, "
              f"{counts['validation']} validation, {len(missing)} listed but missing on disk")
        official = OFFICIAL_COUNTS.get((dataset, split))
        if len(split_classes) == FULL_CLASSES[dataset] and official != (counts["training"], counts["validation"]):
            print(f"  warning: the official {dataset} split {split} has {official[0]} training / "
                  f"{official[1]} validation videos", file=sys.stderr)
        unlisted = sorted(on_disk - listed)
        if unlisted:
            print(f"  {len(unlisted)} videos on disk are in no split of {name} "
                  f"(e.g. {', '.join('/'.join(p) for p in unlisted[:3])})")
        if missing and not allow_missing:
            print(f"error: {len(missing)} videos listed for {name} have no frames under {video_path} "
                  f"(e.g. {_example(missing)}, listed at {missing[0][1]}): extract them or pass "
                  f"--allow_missing; {name} not written", file=sys.stderr)
            status = 1
            continue
        write_json(Path(dst_dir_path) / name, {"labels": split_classes, "database": database}, ensure_ascii=False)
        written += 1
    if written == 0 and status == 0:
        raise UserError(f"no split files found in {dir_path}: expected "
                        + ("trainlist01.txt/testlist01.txt" if dataset == "ucf101" else "<class>_test_split1.txt"))
    return status


def main(dataset, argv=None):

    parser = ArgumentParser(description=f"Write {dataset} annotation JSON files from the official splits.")
    parser.add_argument("--dir_path", required=True, help="directory of the official split files")
    parser.add_argument("--video_path", required=True,
                        help="directory of extracted frames <class>/<video>/ or of videos <class>/<video>.avi")
    parser.add_argument("--input_format", default="auto", choices=["auto", "frames", "video"],
                        help="what --video_path holds (auto: detected)")
    parser.add_argument("--n_jobs", type=int, default=0, help="processes counting video frames (0 = all cores)")
    parser.add_argument("--dst_dir_path", required=True, help="output directory of the JSON files")
    parser.add_argument("--allow_missing", action="store_true",
                        help="write the JSON even if listed videos have no frames (they are left out)")
    args = parser.parse_args(argv)
    return generate(dataset, args.dir_path, args.video_path, args.dst_dir_path, args.allow_missing,
                    args.input_format, args.n_jobs or None)
