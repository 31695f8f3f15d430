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


def register(cli: typer.Typer) -> None:
    cli.add_typer(app, name="review")
