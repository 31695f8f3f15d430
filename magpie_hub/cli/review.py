"""`magpie-hub review push|status|pull`: human review of a build in Argilla."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from magpie_hub.cli.output import err, out, print_json
from magpie_hub.review.sync import DEFAULT_WORKSPACE, review_pull, review_push, review_status

app = typer.Typer(help="Human review in Argilla: push samples, follow progress, pull reviews.")

Build = Annotated[Path, typer.Argument(help="A build folder made by `magpie-hub generate`.")]
Dataset = Annotated[str, typer.Option("--dataset", help="Argilla dataset name.")]
Workspace = Annotated[str, typer.Option("--workspace", help="Argilla workspace.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("push")
def push(
    build: Build,
    dataset: Dataset,
    workspace: Workspace = DEFAULT_WORKSPACE,
    sample: Annotated[int | None, typer.Option("--sample", help="Push N rows.", min=1)] = None,
    stratify_by: Annotated[
        str | None, typer.Option("--stratify-by", help="Keep this column's proportions.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample.")] = 0,
    create_workspace: Annotated[
        bool, typer.Option("--create-workspace", help="Create the workspace if missing.")
    ] = False,
    annotators: Annotated[
        list[str] | None,
        typer.Option(
            "--annotator", help="Make this user a member (repeatable; default: every annotator)."
        ),
    ] = None,
    min_submitted: Annotated[
        int, typer.Option("--min-submitted", help="People who review each record.", min=1)
    ] = 1,
    suggestions: Annotated[
        bool,
        typer.Option("--suggestions", help="Pre-fill the judge's tags and the scorer's choice."),
    ] = False,
    as_json: Json = False,
) -> None:
    """Push BUILD's rows (or a sample) as Argilla records; rows already there are skipped.
    The workspace's annotators become members, so they see the dataset."""
    with Progress(
        TextColumn("pushing"), BarColumn(), MofNCompleteColumn(), console=err, disable=as_json
    ) as bar:
        task = bar.add_task("push", total=None)
        result = review_push(
            build,
            dataset,
            workspace=workspace,
            sample=sample,
            stratify_by=stratify_by,
            seed=seed,
            create_workspace=create_workspace,
            annotators=annotators,
            min_submitted=min_submitted,
            suggestions=suggestions,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(asdict(result))
        return
    table = Table(title=f"review push: {dataset}", show_header=False)
    table.add_row("added", str(result.added))
    table.add_row("already in Argilla", str(result.already_there))
    table.add_row("annotators added", ", ".join(result.members_added) or "none new")
    table.add_row("annotate at", result.url)
    out.print(table)


@app.command("status")
def status(
    dataset: Dataset, workspace: Workspace = DEFAULT_WORKSPACE, as_json: Json = False
) -> None:
    """Progress of the review: records answered per question, responses per annotator."""
    info = review_status(dataset, workspace=workspace)
    if as_json:
        print_json(info)
        return
    title = (
        f"{dataset}: {info['completed']} of {info['records']} records complete "
        f"({info['min_submitted']} review(s) each)"
    )
    questions = Table("question", "records answered", title=title)
    for name, q in info["questions"].items():
        questions.add_row(name, f"{q['records_answered']} / {q['of']}")
    out.print(questions)
    people = Table("annotator", "submitted", "discarded", "draft")
    for user, counts in info["annotators"].items():
        people.add_row(user, *(str(counts.get(s, 0)) for s in ("submitted", "discarded", "draft")))
    out.print(people)
    out.print(agreement_table(info["agreement"]))


def agreement_table(agreement: dict) -> Table:
    """Krippendorff's alpha between reviewers; machine labels against the human majority."""
    table = Table("question", "between reviewers", "machine vs humans", title="agreement")
    between, versus = agreement["between_reviewers"], agreement["machine_vs_humans"]
    for question in sorted(set(between) | set(versus)):
        b, v = between.get(question), versus.get(question)
        table.add_row(
            question,
            f"alpha {_num(b['alpha'])} on {b['records']} records" if b else "-",
            f"{_num(v['agreement'])} agree, alpha {_num(v['alpha'])}, {v['rows']} rows"
            if v
            else "-",
        )
    return table


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


@app.command("pull")
def pull(
    build: Build, dataset: Dataset, workspace: Workspace = DEFAULT_WORKSPACE, as_json: Json = False
) -> None:
    """Merge the submitted reviews into BUILD as the `reviewed` view (data/reviewed/)."""
    result = review_pull(build, dataset, workspace=workspace)
    if as_json:
        print_json(asdict(result))
        return
    table = Table(title=f"review pull: {dataset}", show_header=False)
    table.add_row("reviewed rows", str(result.reviewed_rows))
    table.add_row("responses (all pulls)", str(result.responses))
    table.add_row("reviewers", str(result.reviewers))
    table.add_row("written to", str(build / result.view))
    out.print(table)


@app.command("watch")
def watch_command(
    config: Annotated[Path, typer.Argument(help="The magpie-hub.toml the build was made from.")],
    repo: Annotated[str, typer.Option("--repo", help="Dataset repository, NAMESPACE/NAME.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Build folder.")] = Path("build"),
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Argilla dataset (default: NAME).")
    ] = None,
    every: Annotated[
        int, typer.Option("--every", help="Release after this many more complete records.", min=1)
    ] = 50,
    tag_prefix: Annotated[str, typer.Option("--tag-prefix", help="Tags: PREFIX1, PREFIX2...")] = (
        "review-"
    ),
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between checks.", min=1)
    ] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="Check once, then exit (for CI).")] = False,
    local: Annotated[
        Path | None, typer.Option("--local", help="Write the release tree here; no Hub.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config field (repeatable).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Follow the review; each time EVERY more records are complete, pull and publish a new
    release. Ctrl-C stops it; the next start carries on from the last release."""
    from magpie_hub.config import load_config
    from magpie_hub.plugins import get_registry
    from magpie_hub.review.watch import WatchRound, watch

    cfg = load_config(config, get_registry(), overrides=overrides or [])

    def report(r: WatchRound) -> None:
        if as_json:
            print_json(asdict(r))
        elif r.released:
            out.print(f"{r.completed}/{r.records} complete: released {r.released}")
        else:
            err.print(f"{r.completed}/{r.records} complete; next release after {every} more")

    try:
        watch(
            cfg,
            out_dir,
            repo,
            dataset=dataset or repo.split("/")[-1],
            every=every,
            tag_prefix=tag_prefix,
            interval=interval,
            once=once,
            local=local,
            on_round=report,
        )
    except KeyboardInterrupt:
        err.print("Stopped. Releases so far are kept; run the same command to carry on.")
        raise typer.Exit(130) from None


def register(cli: typer.Typer) -> None:
    cli.add_typer(app, name="review")
