"""`tagline`: the headless command line over the core engine (scripts, servers, tests)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

from core import __version__
from core.errors import TaglineError
from core.progress import CancelToken, Progress

T = TypeVar("T")
EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


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


def upload_mb(text: str) -> float:
    """argparse type for --max-upload-mb: a number above 0 and at most 1024 (nan or -1 used to
    reach the server as a limit)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1024:  # also false for nan
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1024 (got {text})")
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
    from core.jobs.project import scan_job, scan_notes
    from core.progress import run_to_end

    store = store if store is not None else _store(args)
    report = drive(scan_job(store), args.quiet) if not args.quiet else run_to_end(scan_job(store))
    args.scan_report = report
    args.scan_problems = len(report.problems)
    _tell(args, scan_notes(report))
    return store


def _store(args: argparse.Namespace) -> Any:
    from core.jobs.project import open_project

    store = open_project(args.folder, args.store)
    if store.notice:
        _warn(store.notice)
    return store


def _tell(args: argparse.Namespace, notes: Any) -> None:
    for line in notes.warnings:
        _warn(line)
    for line in notes.info:
        _info(args, line)


def _status(args: argparse.Namespace, *skipped: object) -> int:
    """1 when the scan met files it could not read (a dangling link, a pipe named like a photo,
    a path too long) or the job skipped some (`skipped`: counts or lists), else 0: every verb
    that reports a skipped file says so in its exit status too."""
    return EXIT_PARTIAL if getattr(args, "scan_problems", 0) or any(skipped) else EXIT_OK


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _import_request(args: argparse.Namespace, labels: bool) -> Any:
    from core.jobs.importing import ImportRequest

    return ImportRequest(_path(getattr(args, "captions", None)), _path(getattr(args, "label_map", None)), labels,
                         getattr(args, "keep_typed", False), getattr(args, "complete", "file"))


def _report_import(args: argparse.Namespace, request: Any, outcome: Any) -> int:
    from core.jobs.importing import import_summary

    if outcome is None:
        return 0
    for line in outcome.messages:
        _warn(line)
    for line in import_summary(request, outcome):
        _info(args, line)
    return len(outcome.rejected)


def cmd_scan(args: argparse.Namespace) -> int:
    if args.background and hasattr(os, "nice"):
        os.nice(10)  # the app's check of every file: the window keeps the processor
    store = _open_store(args)
    print(f"{store.count_images()} images in {store.folder} (project: {store.db_path})")
    if args.report:
        import json

        from core.formats.exporting import atomic_write_text

        atomic_write_text(Path(args.report), json.dumps(args.scan_report.as_dict()))
    return EXIT_PARTIAL if args.scan_problems else EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from core.jobs.importing import import_job

    store = _open_store(args)
    request = _import_request(args, labels=not args.no_labels)
    rejected = _report_import(args, request, drive(import_job(store, request, args.cancel), args.quiet))
    return _status(args, rejected)


def cmd_classify(args: argparse.Namespace) -> int:
    from core.jobs.classify import ClassifyRequest, classify_job

    store = _store(args)
    request = ClassifyRequest(
        model=_path(args.model), captions=_path(args.captions), label_map=_path(args.label_map), out=_path(args.out),
        label_ids=args.label_ids, probabilities=args.probabilities, batch_size=args.batch_size, redo=args.redo,
        top1_fallback=False if args.no_fallback else None, caption_missing=args.caption_missing,
        captioner=_path(args.captioner), use_generated_captions=args.use_generated_captions, prefer_gpu=not args.cpu,
        ray=args.ray, ray_workers=args.ray_workers, source=args.source)
    if request.model is not None:  # a missing or broken model is said before the scan
        from core.models.model_files import read_info

        read_info(request.model)
    store = _open_store(args, store)
    outcome = drive(classify_job(store, request, args.cancel), args.quiet)
    rejected = _report_import(args, _import_request(args, labels=False), outcome.imported)
    _warn_skipped(outcome.failures)
    _tell(args, outcome.notes)
    return _status(args, outcome.failures, outcome.report.failures, rejected)


def cmd_caption(args: argparse.Namespace) -> int:
    from core.jobs.caption import CaptionRequest, caption_job

    request = CaptionRequest(_path(args.model), _path(args.out), args.overwrite, args.style, args.batch_size, not args.cpu,
                             args.ray, args.ray_workers, args.source)
    store = _open_store(args)
    outcome = drive(caption_job(store, request, args.cancel), args.quiet)
    _warn_skipped(outcome.report.failures)
    _info(args, outcome.summary())
    if args.out:
        _info(args, f"wrote {outcome.rows_written} captions to {args.out}")
    return _status(args, outcome.report.failures)


def cmd_search(args: argparse.Namespace) -> int:
    from core.jobs.search import SearchRequest, search_job

    words = " ".join(args.words).strip()
    if not words:
        _warn("search needs some words to look for")
        return EXIT_ERROR
    request = SearchRequest(words, args.count, _path(args.alignment), args.batch_size, not args.cpu)
    store = _open_store(args)
    outcome = drive(search_job(store, request, args.cancel), args.quiet)
    for relpath, score in zip(outcome.relpaths, outcome.scores):
        print(f"{relpath}\t{score:.4f}" if args.scores else relpath)
    _warn_skipped(outcome.failures)
    return _status(args, outcome.failures)


def cmd_train(args: argparse.Namespace) -> int:
    from core.jobs.train import TrainRequest, train_job
    from core.learn.training import TrainConfig
    from core.tagging.learning import SplitRule

    store = _open_store(args)
    request = TrainRequest(
        out=Path(args.out), captions=_path(args.captions), label_map=_path(args.label_map),
        image_encoder=args.image_encoder, text_encoder=args.text_encoder,
        config=TrainConfig(max_epochs=args.epochs, ensemble=args.ensemble, loss=args.loss, seed=args.seed,
                           caption_words=args.caption_words),
        split=SplitRule(holdout=args.holdout, validation=args.validation, seed=args.seed), force_split=args.split,
        finetune=args.finetune, finetune_epochs=args.finetune_epochs, prefer_gpu=not args.cpu,
        activate=args.activate, refine=not args.from_scratch, generated_captions=not args.no_generated_captions)
    outcome = drive(train_job(store, request, args.cancel), args.quiet)
    rejected = _report_import(args, _import_request(args, labels=True), outcome.imported)
    result = outcome.result
    info = result.info
    if outcome.activated:
        print(f"model {info.version} saved to {result.model_dir}; it is now the project's model (classify and "
              f"suggest use it unless given --model): run `tagline classify {args.folder}` so it decides the "
              f"photos (exports show only the active model's predictions)")
    else:
        print(f"model {info.version} saved to {result.model_dir} as a candidate; the project's model is unchanged "
              f"(`tagline train --activate always` takes it anyway)")
    print(outcome.verdict)
    cross = info.metrics.get("cross_validation")
    if cross:
        print(f"{info.training['images']} labelled photos, all used for training; chose {cross['chosen']} by "
              f"{cross['folds']}-fold cross-validation: samples F1 {cross['cv_samples_f1']:.4f} "
              f"(+/- {cross['cv_spread']:.4f} over the folds), threshold {info.global_threshold:.2f}, "
              f"{'most likely label when none passes' if info.top1_fallback else 'photos may stay unlabelled'}")
        if cross["rare_labels"]:
            print(f"warning: too few photos to learn reliably (under 3 each): {', '.join(cross['rare_labels'])}; "
                  f"confirm more photos of them", file=sys.stderr)
        named = list((info.training.get("label_prior") or {}).get("labels") or [])
        if named:
            listed = ", ".join(named[:6]) + (f" and {len(named) - 6} more" if len(named) > 6 else "")
            print(f"{listed}: learnt from your photos and from what {'its' if len(named) == 1 else 'each'} name says "
                  f"(other words for a label: `tagline describe {args.folder} LABEL WORDS`)")
    else:
        print(f"validation samples F1 {info.metrics['validation']['samples_f1_global']:.4f} (global threshold "
              f"{info.global_threshold:.2f}), thresholds: {info.threshold_mode}")
    for name, scores in info.metrics.get("holdout", {}).items():
        print(f"held-out {name}: samples F1 {scores['samples_f1']:.4f}, micro F1 {scores['micro_f1']:.4f}, "
              f"macro F1 {scores['macro_f1']:.4f}")
    return _status(args, rejected)


def cmd_suggest(args: argparse.Namespace) -> int:
    from core.jobs.suggest import SuggestRequest, suggest_job

    store = _open_store(args)
    outcome = drive(suggest_job(store, SuggestRequest(args.n, _path(args.model), args.strategy, _path(args.out)),
                                args.cancel), args.quiet)
    _tell(args, outcome.notes)
    if not args.out:
        for suggestion in outcome.suggestions:
            print(suggestion.relpath)
    return _status(args)


def cmd_describe(args: argparse.Namespace) -> int:
    from core.tagging.label_guesses import add_prompt, label_prompts, saved_prompts, set_prompts

    store = _open_store(args)
    names = [label.name for label in store.labels()]
    if args.label not in names:
        _warn(f"no label {args.label!r} in this project" + (f" (its labels: {', '.join(names)})" if names else "")
              + "; add it in the app, or import labels, first")
        return EXIT_ERROR
    if args.clear:
        set_prompts(store, args.label, [])
    words = " ".join(args.words).strip()
    if words:
        add_prompt(store, args.label, words)
    for prompt in label_prompts(args.label, saved_prompts(store).get(args.label, [])):
        print(prompt)
    return _status(args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.jobs.evaluate import EvaluateRequest, evaluate_job
    from core.tagging.evaluation import format_report

    outcome = drive(evaluate_job(EvaluateRequest(Path(args.predictions), Path(args.truth), _path(args.label_map))), True)
    for note in outcome.notes:
        _warn(note)
    print(format_report(outcome.report))
    if args.json:
        import json

        from core.formats.exporting import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps(outcome.report.as_dict(), indent=1))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from core.jobs.export import ExportRequest, export_job

    store = _open_store(args)
    request = ExportRequest(_path(args.out), args.format, None, args.label_ids, args.probabilities, args.overwrite,
                            args.threshold, args.predicted_only)
    outcome = drive(export_job(store, request, args.cancel), args.quiet)
    for line in outcome.warnings:
        _warn(line)
    _info(args, outcome.summary)
    return _status(args)


def cmd_info(args: argparse.Namespace) -> int:
    from core.build_kind import describe_build
    from core.models.encoders import select_providers
    from core.tagging.classifier import Classifier

    print(f"build: {describe_build()}")
    classifier = Classifier(args.model)
    info = classifier.info
    print(f"model {info.version} in {classifier.folder}")
    print(f"labels ({len(info.labels)}): {', '.join(info.labels)}")
    print(f"{info.trained_on()}")
    from core.models.runtimes import precision_note

    encoders = classifier.encoders(prefer_gpu=True)
    runtime = encoders.runtime
    print(f"encoders: {info.image_key} + {info.text_key}; runtime {runtime.name}"
          + (f" (onnxruntime providers: {', '.join(select_providers())})" if runtime.engine == "onnxruntime" else "")
          + precision_note(runtime, encoders.image_graph))
    print(_device_line())
    kind, scores = info.quality()
    if kind:
        print(f"{kind} samples F1 {scores['samples_f1']:.4f}, micro F1 {scores['micro_f1']:.4f}, macro F1 {scores['macro_f1']:.4f}")
    return EXIT_OK


def _device_line() -> str:
    from core.build_kind import CPU, build_kind

    if build_kind() == CPU:
        return "GPU: not used by the CPU build (heads and the captioner run and train on the CPU; the GPU build uses an NVIDIA GPU)"
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return f"GPU: {name}; heads train on the CPU (seconds), --finetune and captioner training on the GPU"
    return "GPU: none found; everything runs on the CPU (heads train in seconds; --finetune is slow without a GPU)"


def cmd_audit_captions(args: argparse.Namespace) -> int:
    from core.captions.audit import format_audit
    from core.jobs.audit import AuditRequest, audit_job

    store = _open_store(args)
    request = AuditRequest(_path(args.captions), _path(args.model), args.batch_size, not args.cpu)
    outcome = drive(audit_job(store, request, args.cancel), args.quiet)
    print(f"{outcome.photos} photos with human and generated captions; captioner {outcome.captioner}")
    print(format_audit(outcome.results))
    if args.json:
        import json

        from core.formats.exporting import atomic_write_text

        report = {"photos": outcome.photos, "captioner": outcome.captioner,
                  "attributes": [r.as_dict() for r in outcome.results]}
        atomic_write_text(Path(args.json), json.dumps(report, indent=1))
    return _status(args)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from core.serve.app import serve
        from core.serve.limits import LOCAL_NAMES
    except ImportError as exc:
        raise TaglineError(f"the server needs its extra packages ({exc.name} is missing): pip install 'tagline[serve]'") from exc
    token = _serve_token(args)
    hosts = _serve_hosts(args)
    if args.host not in LOCAL_NAMES and not token:
        _warn(f"listening on {args.host} without a token: anyone who can reach this machine can use the server")
    serve(_path(args.model), _path(args.captioner), args.host, args.port, token, args.max_upload_mb,
          args.max_batch, not args.cpu, hosts, lambda line: _info(args, line))
    return EXIT_OK


TOKEN_ENV = "TAGLINE_TOKEN"


def _serve_hosts(args: argparse.Namespace) -> frozenset[str]:
    """The Host names answered without a token, beside any IP address: localhost's, --host's and
    --allow-host's (an IPv6 address also in brackets, as a Host header writes it)."""
    from core.serve.limits import LOCAL_NAMES

    names = [n.lower() for n in (args.host, *(args.allow_host or []))]
    return LOCAL_NAMES | set(names) | {f"[{n}]" for n in names if ":" in n}


def _serve_token(args: argparse.Namespace) -> str | None:
    """--token, else --token-file's first line, else $TAGLINE_TOKEN (the flag shows in `ps` to every
    local user; a file or the environment does not)."""
    if args.token is not None and args.token_file is not None:
        raise TaglineError("give --token or --token-file, not both")
    token = args.token
    if args.token_file is not None:
        from core.formats.bounded_read import read_bounded

        data = read_bounded(Path(args.token_file), 4096, lambda reason: TaglineError(f"--token-file {args.token_file}: "
                                                                                     f"{reason}"), "token file")
        token = data.decode("utf-8", "replace").strip().splitlines()[0] if data.strip() else ""
    elif token is None:
        token = os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        raise TaglineError("the token is empty: put at least one character in it (or leave the token out)")
    return token.strip() if token is not None else None


def cmd_gui(args: argparse.Namespace) -> int:
    if args.gui_runner is None:
        raise TaglineError("the desktop application is not installed with this command line")
    return int(args.gui_runner(args.folder))


BATCH_HELP = "photos per batch on the encoders (default 32; lower it if memory runs out)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tagline", description="Label image collections from photo and caption.")
    parser.add_argument("--version", action="version", version=f"tagline {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summaries")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    parser.add_argument("--runtime", choices=["auto", "onnxruntime", "openvino", "openvino-bf16"],
                        help="engine for the encoders (default auto: onnxruntime on a GPU, else OpenVINO where "
                             "installed, else onnxruntime; openvino-bf16 is faster on CPUs with bf16, its features "
                             "cached apart)")
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

    sub = folder_verb("scan", "Scan a folder and update its project (new, changed, missing images).")
    sub.add_argument("--report", help="also write what the scan found as JSON")
    sub.add_argument("--background", action="store_true", help="run at low priority (the app's check of every file)")
    sub.set_defaults(func=cmd_scan)
    sub = folder_verb("import", "Import captions and confirmed labels from a CSV and .txt sidecars.")
    captions_args(sub)
    sub.add_argument("--no-labels", action="store_true", help="import captions only")
    sub.add_argument("--keep-typed", action="store_true", help="keep captions a person typed")
    sub.add_argument("--complete", choices=("file", "all", "none"), default="file",
                     help="which labels a row's Labels cell decides, named or not: 'file' (default) the labels the "
                          "file names anywhere (or its --label-map), 'all' every label of the project, 'none' only "
                          "the labels it names; other labels keep their decisions. A Tagline export is read back "
                          "from its Confirmed and Rejected columns")
    sub.set_defaults(func=cmd_import)

    sub = folder_verb("classify", "Predict labels for every image from photo and caption.")
    captions_args(sub)
    sub.add_argument("--model", help="model folder (default: the bundled model)")
    sub.add_argument("--out", help="write predictions as CSV ImageID,Labels,Caption")
    sub.add_argument("--label-ids", action="store_true", help="write label ids instead of names")
    sub.add_argument("--probabilities", action="store_true", help="add a probability column per label")
    sub.add_argument("--batch-size", type=positive_int, default=32, help=BATCH_HELP)
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
    sub.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run on a Ray cluster (without ADDRESS a local Ray instance is started and stopped); "
                          "needs pip install 'tagline[cluster]'")
    sub.add_argument("--ray-workers", type=positive_int, help="with --ray: actors (default one per CPU)")
    sub.add_argument("--source", help="with --ray: where workers read the photos, an s3:// or gs:// prefix holding "
                                      "the folder's relative paths (default: the folder itself)")
    sub.set_defaults(func=cmd_classify)

    sub = folder_verb("caption", "Generate captions for images that have none (source: generated).")
    sub.add_argument("--model", help="captioner folder or a Hugging Face BLIP folder (default: the bundled captioner)")
    sub.add_argument("--out", help="write ImageID,Caption,Source as CSV")
    sub.add_argument("--overwrite", action="store_true", help="also replace imported and typed captions")
    sub.add_argument("--style", help="write like one of the captioner's training sources (e.g. comp5329, flickr8k)")
    sub.add_argument("--batch-size", type=positive_int, default=32, help=BATCH_HELP)
    sub.add_argument("--cpu", action="store_true", help="do not use a GPU")
    sub.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run on a Ray cluster (without ADDRESS a local Ray instance); pip install 'tagline[cluster]'")
    sub.add_argument("--ray-workers", type=positive_int, help="with --ray: actors (default one per CPU)")
    sub.add_argument("--source", help="with --ray: an s3:// or gs:// prefix holding the folder's relative paths")
    sub.set_defaults(func=cmd_caption)

    sub = folder_verb("suggest", "The photos to confirm next: those the model is least sure of (a simulated person "
                                 "labelling in rounds learnt a little faster this way than at random; docs/benchmarks.md).")
    sub.add_argument("-n", type=positive_int, default=50, help="how many photos (default 50)")
    sub.add_argument("--model", help="model folder (default: the bundled model)")
    sub.add_argument("--strategy", choices=["uncertain", "diverse", "random"], default="uncertain",
                     help="uncertain: labels nearest their thresholds (default); diverse: spread over the photos; random")
    sub.add_argument("--out", help="write ImageID,Uncertainty as CSV instead of printing the names")
    sub.set_defaults(func=cmd_suggest)

    sub = folder_verb("describe", "Say in other words what a label shows ('a snowy mountain' for snow): a label no "
                                  "model knows is guessed from these and its name, and its first training starts from "
                                  "them. Prints the label's queries, its own last.")
    sub.add_argument("label", help="a label of the project")
    sub.add_argument("words", nargs="*", help="what its photos show (none: only print its queries)")
    sub.add_argument("--clear", action="store_true", help="forget the label's own words first (its name stays)")
    sub.set_defaults(func=cmd_describe)

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
    sub.add_argument("--loss", choices=["weighted_bce", "asymmetric"], default="asymmetric",
                     help="training loss (default asymmetric: 0.6 points above weighted BCE on validation)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the split and the training (same seed, same model)")
    sub.add_argument("--caption-words", action="store_true", help="split: add a bag of caption words to the caption side")
    sub.add_argument("--image-encoder", default="efficientnet_lite0",
                     help="registered encoder, or timm:MODEL[@WEIGHTS] (timm downloads weights when online)")
    sub.add_argument("--finetune", action="store_true",
                     help="fine-tune the image backbone end to end with augmentation first (for a GPU)")
    sub.add_argument("--finetune-epochs", type=positive_int, default=4, help="epochs of backbone fine-tuning (default 4)")
    sub.add_argument("--text-encoder", default="minilm_l6", help="caption encoder (default minilm_l6)")
    sub.add_argument("--cpu", action="store_true", help="do not use a GPU")
    sub.add_argument("--activate", choices=["better", "always", "never"], default="better",
                     help="make the new model the project's: when it scores at least as well as the current one on "
                          "your confirmed photos (default), always, or never (kept as a candidate)")
    sub.add_argument("--no-generated-captions", action="store_true",
                     help="learn from the photos and the captions people wrote only (default: captions a captioner "
                          "wrote train too, and the model weighs them against the photo alone; docs/captioning.md)")
    sub.add_argument("--from-scratch", action="store_true",
                     help="learn from the confirmed photos alone instead of refining the model in use (or the bundled one)")
    sub.set_defaults(func=cmd_train)

    sub = verbs.add_parser("evaluate", help="Score a predictions CSV against a truth CSV.")
    sub.add_argument("predictions", help="CSV to score (ImageID,Labels,...), e.g. from classify --out")
    sub.add_argument("truth", help="CSV with the right labels, same columns")
    sub.add_argument("--label-map", help="JSON mapping label ids to names (when the files use ids)")
    sub.add_argument("--json", help="also write the report as JSON")
    sub.set_defaults(func=cmd_evaluate)

    sub = folder_verb("export", "Export labels and captions (confirmed labels override predictions).")
    sub.add_argument("--out", help="output file (csv or json)")
    sub.add_argument("--format", choices=["csv", "json", "sidecars"], default="csv",
                     help="csv (ImageID,Labels,Caption,Confirmed,Rejected,CaptionSource; reads back with import), "
                          "json, or a caption .txt beside each photo")
    sub.add_argument("--label-ids", action="store_true",
                     help="write each label as its id (a COCO number, from --label-map or the label editor), "
                          "space-separated, instead of names")
    sub.add_argument("--probabilities", action="store_true",
                     help="add a p_LABEL column per label: the active model's probability")
    sub.add_argument("--predicted-only", action="store_true", help="ignore confirmed labels")
    sub.add_argument("--overwrite", action="store_true", help="replace existing sidecar files")
    sub.add_argument("--threshold", type=probability, help="one threshold for every label instead of the model's "
                                                           "(as the app's threshold slider); confirmed labels still win")
    sub.set_defaults(func=cmd_export)

    sub = verbs.add_parser("info", help="Describe a model and the inference device.")
    sub.add_argument("--model", help="model folder (default: the bundled model)")
    sub.set_defaults(func=cmd_info)

    sub = folder_verb("audit-captions", "Compare generated captions with the human captions of the same photos: "
                                        "how often they name the other gender, age or number of people.")
    sub.add_argument("--captions", help="human captions CSV (several rows a photo allowed); default: the project's")
    sub.add_argument("--model", help="captioner folder (default: the bundled one)")
    sub.add_argument("--json", help="also write the report as JSON")
    sub.add_argument("--batch-size", type=positive_int, default=32, help=BATCH_HELP)
    sub.add_argument("--cpu", action="store_true", help="do not use a GPU")
    sub.set_defaults(func=cmd_audit_captions)

    sub = folder_verb("search", "Print the folder's photos that best match some words, best first, one path (relative "
                                "to the folder) a line; photos without captions are found by what they show.")
    sub.add_argument("words", nargs="+", help="what to look for, e.g. a dog on a beach")
    sub.add_argument("-n", "--count", type=positive_int, default=20, help="how many photos to print (default 20)")
    sub.add_argument("--scores", action="store_true", help="print each photo's similarity after a tab")
    sub.add_argument("--alignment", help="image-text alignment folder (default: the bundled one)")
    sub.add_argument("--batch-size", type=positive_int, default=32, help=BATCH_HELP)
    sub.add_argument("--cpu", action="store_true", help="do not use a GPU")
    sub.set_defaults(func=cmd_search)

    sub = verbs.add_parser("serve", help="Serve classification and captioning over HTTP, with a web page at /.",
                           description="Serve classification and captioning over HTTP, with a web page at / and the "
                                       "API's schema at /openapi.json. The token, when wanted, comes from --token, "
                                       "--token-file or the environment variable TAGLINE_TOKEN.")
    sub.add_argument("--model", help="model folder (default: the bundled model)")
    sub.add_argument("--captioner", help="captioner folder (default: the bundled one)")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    sub.add_argument("--port", type=positive_int, default=8765, help="port to listen on (default 8765)")
    sub.add_argument("--token", help="require Authorization: Bearer TOKEN on every API request (other local users "
                                      "can see it in `ps`: prefer --token-file or the TAGLINE_TOKEN variable)")
    sub.add_argument("--token-file", help="read the token from the first line of this file")
    sub.add_argument("--allow-host", action="append", metavar="NAME",
                     help="without a token only requests naming an IP address, localhost or --host in their Host "
                          "header are answered (against DNS rebinding); add a name clients use, e.g. this machine's "
                          "(repeatable)")
    sub.add_argument("--max-upload-mb", type=upload_mb, default=20.0, help="largest photo accepted (default 20; "
                                                                          "at most 1024)")
    sub.add_argument("--max-batch", type=positive_int, default=16, help="requests sharing one forward pass (1: none)")
    sub.add_argument("--cpu", action="store_true", help="do not use a GPU")
    sub.set_defaults(func=cmd_serve)

    sub = verbs.add_parser("gui", help="Open the desktop application.")
    sub.add_argument("folder", nargs="?", type=Path, help="the folder to open (default: the last one)")
    sub.set_defaults(func=cmd_gui)
    for verb in verbs.choices.values():  # `tagline VERB --help` starts with what the verb does
        if not verb.description:
            verb.description = next(a.help for a in verbs._choices_actions if verbs.choices.get(a.dest) is verb)
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
    if args.runtime:
        import os

        from core.models.runtimes import RUNTIME_ENV

        os.environ[RUNTIME_ENV] = args.runtime  # read by every Encoders built in this process
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
        from core.errors import disk_full

        if disk_full(exc):  # a library's own words for ENOSPC, met where no writer mapped it
            _warn(f"error: the disk is full ({type(exc).__name__}: {exc}): free some space and run the same "
                  f"command again (finished work is saved)")
            return EXIT_ERROR
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
