"""`tagline`: the headless command line over the core engine (scripts, servers, tests)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

from core import __version__
from core.errors import TaglineError
from core.progress import CancelToken, Progress

T = TypeVar("T")
EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
MAX_LISTED = 20  # rejected CSV rows listed one by one; the rest are counted


def positive_int(text: str) -> int:
    """argparse type for counts and sizes: a batch of 0 or -1 is a usage error, not an empty run."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {value})")
    return value


def drive(job: Generator[Progress, None, T], quiet: bool = False) -> T:
    """Run a job with a progress bar per stage (shown only on a terminal)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    try:
        while True:
            try:
                event = next(job)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            bar = bars.get(event.stage)
            if bar is None:
                bar = bars[event.stage] = tqdm(total=event.total or None, desc=event.stage, unit="img",
                                              disable=True if quiet else None, file=sys.stderr)
            bar.total = event.total or bar.total
            bar.n = event.done
            if event.failed:
                bar.set_postfix(failed=event.failed)
            bar.refresh()
    finally:
        for bar in bars.values():
            bar.close()


def _open_store(args: argparse.Namespace, store: Any = None) -> Any:
    """Open the folder's project (unless given) and bring it in line with the folder."""
    from core.progress import run_to_end
    from core.store.sync import sync_folder

    store = store if store is not None else _store(args)
    report = drive(sync_folder(store), args.quiet) if not args.quiet else run_to_end(sync_folder(store))
    args.scan_problems = len(report.problems)
    for problem in report.problems:
        _warn(f"cannot read {problem.path}: {problem.reason}")
    if report.odd_names:
        _warn(f"{len(report.odd_names)} new file name(s) are not UTF-8; shown and exported with \\x escapes, "
              f"for example {report.odd_names[0]}")
    if report.added or report.removed or report.changed:
        _info(args, f"{len(report.added)} new, {len(report.changed)} changed, {len(report.removed)} missing images")
    return store


def _store(args: argparse.Namespace) -> Any:
    from core.store.database import ProjectStore

    store = ProjectStore(args.folder, Path(args.store) if args.store else None)
    if store.notice:
        _warn(store.notice)
    return store


def _classifier(args: argparse.Namespace, store: Any, **options: Any) -> Any:
    """`--model`, else the model the project uses (the last one `train` made for it, or the one
    chosen in the app), else the bundled one."""
    from core.tagging.classifier import Classifier

    if args.model:
        return Classifier(args.model, **options)
    active = store.active_model()
    if active is not None:
        if (active / "model.json").is_file():
            _info(args, f"using the project's model {active}")
            return Classifier(active, **options)
        _warn(f"the project's model {active} is gone; using the bundled model")
    return Classifier(None, **options)


def _import_captions(args: argparse.Namespace, store: Any, with_labels: bool) -> int:
    """Captions (and labels) from --captions, then sidecars for images still without one."""
    from core.formats.captions_io import import_rows, load_label_map, read_caption_csv, read_sidecar_captions

    rejected = 0
    if getattr(args, "captions", None):
        label_map = load_label_map(args.label_map) if getattr(args, "label_map", None) else None
        report = import_rows(store, read_caption_csv(args.captions), label_map,
                             overwrite_captions=not getattr(args, "keep_typed", False), import_labels=with_labels)
        for line, reason in report.rejected[:MAX_LISTED]:
            _warn(f"{args.captions}, line {line}: {reason}")
        if len(report.rejected) > MAX_LISTED:
            _warn(f"... and {len(report.rejected) - MAX_LISTED} more rejected rows")
        rejected = len(report.rejected)
        _info(args, f"imported {report.captions} captions, {report.labelled} labelled rows, {rejected} rows rejected")
    have = store.captions()
    sidecars = {i: t for i, t in read_sidecar_captions(store).items() if i not in have}
    if sidecars:
        store.set_captions(sidecars.items(), "imported")
        _info(args, f"imported {len(sidecars)} captions from .txt sidecars")
    return rejected


def cmd_scan(args: argparse.Namespace) -> int:
    store = _open_store(args)
    print(f"{len(store.images())} images in {store.folder} (project: {store.db_path})")
    return EXIT_PARTIAL if args.scan_problems else EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    store = _open_store(args)
    return EXIT_PARTIAL if _import_captions(args, store, with_labels=not args.no_labels) else EXIT_OK


def cmd_classify(args: argparse.Namespace) -> int:
    from core.formats.exporting import collect_rows, export_csv
    from core.tagging.classifier import classify_project

    store = _store(args)
    classifier = _classifier(args, store, top1_fallback=False if args.no_fallback else None)
    store = _open_store(args, store)
    if args.out:  # before minutes of work: never over the truth file, the database or a photo
        from core.formats.exporting import check_output_path

        check_output_path(store, Path(args.out), [Path(args.captions)] if args.captions else [])
    rejected = _import_captions(args, store, with_labels=False)
    caption_failures: list[tuple[str, str]] = []
    if args.caption_missing:  # photos without a caption get a generated one first, and it is read
        from core.captions.caption_job import caption_project
        from core.captions.captioning import load_captioner

        captioning = drive(caption_project(store, load_captioner(args.captioner, prefer_gpu=not args.cpu), cancel=args.cancel,
                                           batch_size=args.batch_size), args.quiet)
        caption_failures = captioning.failures
        _info(args, f"captioned {captioning.captioned} images without a caption")
    encoders = classifier.encoders(prefer_gpu=not args.cpu)
    job = classify_project(store, classifier, encoders, args.batch_size, args.redo, args.cancel,
                           use_generated_captions=args.use_generated_captions or args.caption_missing)
    report = drive(job, args.quiet)
    _warn_skipped(list(dict(caption_failures + report.failures).items()))  # each file once
    rate = report.classified / report.seconds if report.seconds else 0.0
    _info(args, f"classified {report.classified} images ({rate:.1f}/s on {report.provider or 'no device'}), "
                f"{report.already_done} already done, {len(report.failures)} failed; model {classifier.version}")
    if args.out:
        rows = collect_rows(store, predicted_only=True)
        export_csv(store, Path(args.out), rows, label_ids=args.label_ids, probabilities=args.probabilities)
        _info(args, f"wrote {len(rows)} rows to {args.out}")
    return EXIT_PARTIAL if report.failures or rejected else EXIT_OK


def cmd_caption(args: argparse.Namespace) -> int:
    from core.captions.caption_job import caption_project, write_caption_csv
    from core.captions.captioning import load_captioner

    captioner = load_captioner(args.model, prefer_gpu=not args.cpu, style=args.style)
    store = _open_store(args)
    if args.out:
        from core.formats.exporting import check_output_path

        check_output_path(store, Path(args.out))
    report = drive(caption_project(store, captioner, args.overwrite, args.cancel, args.batch_size), args.quiet)
    _warn_skipped(report.failures)
    rate = report.captioned / report.seconds if report.seconds else 0.0
    _info(args, f"captioned {report.captioned} images ({rate:.1f}/s), {report.kept} already had a caption, "
                f"{len(report.failures)} failed; {captioner.name}")
    if args.out:
        count = write_caption_csv(store, Path(args.out))
        _info(args, f"wrote {count} captions to {args.out}")
    return EXIT_PARTIAL if report.failures else EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from core.formats.captions_io import load_label_map
    from core.learn.training import TrainConfig
    from core.models.embedding import Encoders
    from core.models.registry import image_spec, text_spec
    from core.tagging.learning import SplitRule, learn

    store = _open_store(args)
    rejected = _import_captions(args, store, with_labels=True)
    encoders = Encoders(image_spec(args.image_encoder), text_spec(args.text_encoder), not args.cpu)
    external = {v: k for k, v in load_label_map(args.label_map).items()} if args.label_map else None
    config = TrainConfig(max_epochs=args.epochs, ensemble=args.ensemble, loss=args.loss, seed=args.seed,
                         caption_words=args.caption_words)
    split = SplitRule(holdout=args.holdout, validation=args.validation, seed=args.seed)
    if args.finetune:
        from core.tagging.finetune import FinetuneConfig, finetune

        tune = FinetuneConfig(epochs=args.finetune_epochs, device="cpu" if args.cpu else "auto")
        job = finetune(store, Path(args.out), encoders, split, tune, config, external, args.cancel)
    else:
        job = learn(store, Path(args.out), encoders, split, config, external, args.cancel, force_split=args.split)
    result = drive(job, args.quiet)
    info = result.info
    store.set_active_model(Path(result.model_dir).resolve())
    print(f"model {info.version} saved to {result.model_dir}; it is now the project's model (classify and "
          f"suggest use it unless given --model)")
    cross = info.metrics.get("cross_validation")
    if cross:
        print(f"{info.training['images']} labelled photos, all used for training; chose {cross['chosen']} by "
              f"{cross['folds']}-fold cross-validation: samples F1 {cross['cv_samples_f1']:.4f} "
              f"(+/- {cross['cv_spread']:.4f} over the folds), threshold {info.global_threshold:.2f}, "
              f"{'most likely label when none passes' if info.top1_fallback else 'photos may stay unlabelled'}")
        if cross["rare_labels"]:
            print(f"warning: too few photos to learn reliably (under 3 each): {', '.join(cross['rare_labels'])}; "
                  f"confirm more photos of them", file=sys.stderr)
    else:
        print(f"validation samples F1 {info.metrics['validation']['samples_f1_global']:.4f} (global threshold "
              f"{info.global_threshold:.2f}), thresholds: {info.threshold_mode}")
    for name, scores in info.metrics.get("holdout", {}).items():
        print(f"held-out {name}: samples F1 {scores['samples_f1']:.4f}, micro F1 {scores['micro_f1']:.4f}, "
              f"macro F1 {scores['macro_f1']:.4f}")
    return EXIT_PARTIAL if rejected else EXIT_OK


def cmd_suggest(args: argparse.Namespace) -> int:
    from core.tagging.suggest import suggest_next

    store = _store(args)
    classifier = _classifier(args, store)
    store = _open_store(args, store)
    suggestions = drive(suggest_next(store, classifier, args.n, args.strategy, args.cancel), args.quiet)
    if args.out:
        from core.formats.exporting import atomic_write_text, check_output_path, csv_text

        check_output_path(store, Path(args.out))
        atomic_write_text(Path(args.out), csv_text(["ImageID", "Uncertainty"],
                                                   ([s.relpath, f"{s.uncertainty:.3f}"] for s in suggestions)))
        _info(args, f"wrote {len(suggestions)} photos to label next to {args.out}")
    else:
        for suggestion in suggestions:
            print(suggestion.relpath)
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.tagging.evaluation import evaluate_csvs, format_report

    report, notes = evaluate_csvs(Path(args.predictions), Path(args.truth),
                                  Path(args.label_map) if args.label_map else None)
    for note in notes:
        _warn(note)
    print(format_report(report))
    if args.json:
        import json

        from core.formats.exporting import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps(report.as_dict(), indent=1))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from core.formats.exporting import collect_rows, export_csv, export_json, export_sidecars

    store = _open_store(args)
    rows = collect_rows(store, predicted_only=args.predicted_only, threshold=args.threshold)
    if args.format == "csv":
        _info(args, f"exported {export_csv(store, Path(args.out), rows, args.label_ids, args.probabilities)} images")
    elif args.format == "json":
        _info(args, f"exported {export_json(store, Path(args.out), rows)} images")
    else:
        _info(args, export_sidecars(store, rows, overwrite=args.overwrite).summary())
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from core.models.encoders import select_providers
    from core.tagging.classifier import Classifier

    classifier = Classifier(args.model)
    info = classifier.info
    print(f"model {info.version} in {classifier.folder}")
    print(f"labels ({len(info.labels)}): {', '.join(info.labels)}")
    print(f"{info.trained_on()}")
    print(f"encoders: {info.image_key} + {info.text_key}; inference providers: {', '.join(select_providers())}")
    print(_device_line())
    kind, scores = info.quality()
    if kind:
        print(f"{kind} samples F1 {scores['samples_f1']:.4f}, micro F1 {scores['micro_f1']:.4f}, macro F1 {scores['macro_f1']:.4f}")
    return EXIT_OK


def _device_line() -> str:
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return f"GPU: {name}; heads train on the CPU (seconds), --finetune and captioner training on the GPU"
    return "GPU: none found; everything runs on the CPU (heads train in seconds; --finetune is slow without a GPU)"


def cmd_gui(args: argparse.Namespace) -> int:
    if args.gui_runner is None:
        raise TaglineError("the desktop application is not installed with this command line")
    return int(args.gui_runner(args.folder))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagline", description="Label image collections from photo and caption.")
    parser.add_argument("--version", action="version", version=f"tagline {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summaries")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def folder_verb(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("folder", type=Path, help="the image folder (scanned recursively)")
        sub.add_argument("--store", help="project database path (default: FOLDER/.tagline/project.db, "
                                         "or the user-data folder when FOLDER is read-only)")
        return sub

    def captions_args(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--captions", help="CSV with ImageID,Labels,Caption columns")
        sub.add_argument("--label-map", help="JSON mapping label ids in the CSV to names")

    folder_verb("scan", "Scan a folder and update its project (new, changed, missing images).").set_defaults(func=cmd_scan)
    sub = folder_verb("import", "Import captions and confirmed labels from a CSV and .txt sidecars.")
    captions_args(sub)
    sub.add_argument("--no-labels", action="store_true", help="import captions only")
    sub.add_argument("--keep-typed", action="store_true", help="keep captions a person typed")
    sub.set_defaults(func=cmd_import)

    sub = folder_verb("classify", "Predict labels for every image from photo and caption.")
    captions_args(sub)
    sub.add_argument("--model", help="model folder (default: the bundled model)")
    sub.add_argument("--out", help="write predictions as CSV ImageID,Labels,Caption")
    sub.add_argument("--label-ids", action="store_true", help="write label ids instead of names")
    sub.add_argument("--probabilities", action="store_true", help="add a probability column per label")
    sub.add_argument("--batch-size", type=positive_int, default=32)
    sub.add_argument("--redo", action="store_true", help="classify again images already done")
    sub.add_argument("--caption-missing", action="store_true",
                     help="first caption the photos that have none and read those captions, weighed as the model "
                          "learned on validation (docs/captioning.md)")
    sub.add_argument("--captioner", help="captioner folder for --caption-missing (default: the bundled one)")
    sub.add_argument("--no-fallback", action="store_true",
                     help="leave a photo unlabelled when no label passes its threshold (default: give it the most "
                          "likely label, right when every photo shows one of the labels); add --redo for photos done")
    sub.add_argument("--use-generated-captions", action="store_true",
                     help="also read machine-generated captions already in the project (docs/captioning.md)")
    sub.add_argument("--cpu", action="store_true", help="do not use a GPU")
    sub.set_defaults(func=cmd_classify)

    sub = folder_verb("caption", "Generate captions for images that have none (source: generated).")
    sub.add_argument("--model", help="captioner folder or a Hugging Face BLIP folder (default: the bundled captioner)")
    sub.add_argument("--out", help="write ImageID,Caption,Source as CSV")
    sub.add_argument("--overwrite", action="store_true", help="also replace imported and typed captions")
    sub.add_argument("--style", help="write like one of the captioner's training sources (e.g. comp5329, flickr8k)")
    sub.add_argument("--batch-size", type=positive_int, default=32)
    sub.add_argument("--cpu", action="store_true", help="do not use a GPU")
    sub.set_defaults(func=cmd_caption)

    sub = folder_verb("suggest", "The photos to confirm next: those the model is least sure of (a simulated person "
                                 "labelling in rounds learnt a little faster this way than at random; docs/benchmarks.md).")
    sub.add_argument("-n", type=positive_int, default=50, help="how many photos (default 50)")
    sub.add_argument("--model", help="model folder (default: the bundled model)")
    sub.add_argument("--strategy", choices=["uncertain", "diverse", "random"], default="uncertain")
    sub.add_argument("--out", help="write ImageID,Uncertainty as CSV instead of printing the names")
    sub.set_defaults(func=cmd_suggest)

    sub = folder_verb("train", "Train a model from the project's confirmed labels. Under 3,000 labelled photos every "
                               "photo trains and the recipe and score come from 5-fold cross-validation; from 3,000 "
                               "on (or with --split) a fixed split trains, validates and scores a held-out part.")
    captions_args(sub)
    sub.add_argument("--out", required=True, help="folder for the new model")
    sub.add_argument("--split", action="store_true", help="use the fixed split below even with few labelled photos")
    sub.add_argument("--holdout", type=float, default=0.15, help="split: fraction kept unseen for the final score")
    sub.add_argument("--validation", type=float, default=0.10, help="split: fraction for early stopping/thresholds")
    sub.add_argument("--epochs", type=positive_int, default=15, help="split: most epochs per head")
    sub.add_argument("--ensemble", type=positive_int, default=1, help="split: heads averaged (different seeds)")
    sub.add_argument("--loss", choices=["weighted_bce", "asymmetric"], default="asymmetric")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--caption-words", action="store_true", help="split: add a bag of caption words to the caption side")
    sub.add_argument("--image-encoder", default="efficientnet_lite0",
                     help="registered encoder, or timm:MODEL[@WEIGHTS] (timm downloads weights when online)")
    sub.add_argument("--finetune", action="store_true",
                     help="fine-tune the image backbone end to end with augmentation first (for a GPU)")
    sub.add_argument("--finetune-epochs", type=positive_int, default=4)
    sub.add_argument("--text-encoder", default="minilm_l6")
    sub.add_argument("--cpu", action="store_true", help="do not use a GPU")
    sub.set_defaults(func=cmd_train)

    sub = verbs.add_parser("evaluate", help="Score a predictions CSV against a truth CSV.")
    sub.add_argument("predictions")
    sub.add_argument("truth")
    sub.add_argument("--label-map", help="JSON mapping label ids to names (when the files use ids)")
    sub.add_argument("--json", help="also write the report as JSON")
    sub.set_defaults(func=cmd_evaluate)

    sub = folder_verb("export", "Export labels and captions (confirmed labels override predictions).")
    sub.add_argument("--out", help="output file (csv or json)")
    sub.add_argument("--format", choices=["csv", "json", "sidecars"], default="csv")
    sub.add_argument("--label-ids", action="store_true")
    sub.add_argument("--probabilities", action="store_true")
    sub.add_argument("--predicted-only", action="store_true", help="ignore confirmed labels")
    sub.add_argument("--overwrite", action="store_true", help="replace existing sidecar files")
    sub.add_argument("--threshold", type=probability, help="one threshold for every label instead of the model's "
                                                           "(as the app's threshold slider); confirmed labels still win")
    sub.set_defaults(func=cmd_export)

    sub = verbs.add_parser("info", help="Describe a model and the inference device.")
    sub.add_argument("--model")
    sub.set_defaults(func=cmd_info)

    sub = verbs.add_parser("gui", help="Open the desktop application.")
    sub.add_argument("folder", nargs="?", type=Path)
    sub.set_defaults(func=cmd_gui)
    return parser


def _warn(message: str) -> None:
    print(f"tagline: {message}", file=sys.stderr)


def _warn_skipped(failures: list[tuple[str, str]]) -> None:
    for relpath, reason in failures:
        _warn(f"skipped {relpath}: {reason}")


def _info(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def main(argv: list[str] | None = None, gui_runner: Callable[[Path | None], int] | None = None) -> int:
    """Entry point; the GUI package passes `gui_runner` so that core never imports it."""
    args = build_parser().parse_args(argv)
    args.gui_runner = gui_runner
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    args.cancel = CancelToken()
    if getattr(args, "command", None) == "export" and args.format != "sidecars" and not args.out:
        _warn("export needs --out for csv and json")
        return EXIT_ERROR
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        _warn("interrupted; finished work is saved, run the same command again to resume")
        return EXIT_INTERRUPTED
    except TaglineError as exc:
        _warn(f"error: {exc}")
        return EXIT_ERROR
    except BrokenPipeError:  # `tagline evaluate ... | head`: the reader has all it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK
    except Exception as exc:  # a bug: one line on screen, the traceback in a file to attach to a report
        log_path = _save_crash_report(exc)
        _warn(f"internal error ({type(exc).__name__}: {exc}); nothing finished was lost. "
              f"Please report it with {log_path}" if log_path else f"internal error: {exc!r}")
        if args.verbose:
            raise
        return EXIT_INTERNAL


def _save_crash_report(exc: BaseException) -> Path | None:
    import time
    import traceback

    from platformdirs import user_log_dir

    try:
        folder = Path(user_log_dir("Tagline", appauthor=False))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}.txt"
        path.write_text(f"tagline {__version__} {sys.argv!r}\n" + "".join(traceback.format_exception(exc)),
                        encoding="utf-8")
        return path
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
