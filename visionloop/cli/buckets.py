"""``visionloop bucket``: list and copy objects in the data folder's buckets."""

from __future__ import annotations

import os
from pathlib import Path

import click

from visionloop.cli.app import Context, cli, console, emit, pass_ctx


@cli.group()
def bucket() -> None:
    """List and copy objects in buckets (folders under <data-dir>/buckets/)."""


@bucket.command("ls")
@click.argument("target", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def bucket_ls(ctx: Context, target: str | None, as_json: bool) -> None:
    """List buckets, or the objects under s3://BUCKET[/PREFIX]."""
    from visionloop.core.keys import parse_s3_prefix

    store = ctx.services.buckets
    if not target:
        names = store.list_buckets()

        def render_names() -> None:
            for n in names:
                click.echo(n)

        emit(names, as_json, render_names)
        return
    name, prefix = parse_s3_prefix(target if target.startswith("s3://") else f"s3://{target}")
    objects = list(store.list_objects(name, prefix))
    data = [{"key": o.key, "size": o.size, "modified": o.modified.isoformat()} for o in objects]

    def render() -> None:
        for o in objects:
            click.echo(f"{o.modified:%Y-%m-%d %H:%M}  {o.size:>10}  s3://{name}/{o.key}")

    emit(data, as_json, render)


@bucket.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("target")
@pass_ctx
def bucket_put(ctx: Context, file: str, target: str) -> None:
    """Copy FILE to s3://BUCKET/KEY (a TARGET ending in '/' keeps the file name)."""
    from visionloop.core.keys import check_bucket, parse_s3_uri

    if target.endswith("/"):
        target += os.path.basename(file)
    ref = parse_s3_uri(target)
    ctx.services.buckets.create_bucket(check_bucket(ref.bucket))
    ctx.services.buckets.put(ref.bucket, ref.key, Path(file).read_bytes())
    console.print(f"put {file} → {ref.uri()}")


@bucket.command("sync")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("target")
@pass_ctx
def bucket_sync(ctx: Context, folder: str, target: str) -> None:
    """Copy every file under FOLDER to s3://BUCKET/PREFIX/, skipping files already there unchanged."""
    from visionloop.core.keys import check_key, parse_s3_prefix

    name, prefix = parse_s3_prefix(target)
    store = ctx.services.buckets
    store.create_bucket(name)
    existing = {o.key: o.size for o in store.list_objects(name, prefix)}
    copied = same = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith("."):
                continue
            path = os.path.join(dirpath, fname)
            key = check_key(prefix + os.path.relpath(path, folder).replace(os.sep, "/"))
            data = Path(path).read_bytes()
            if existing.get(key) == len(data) and store.get(name, key) == data:
                same += 1
                continue
            store.put(name, key, data)
            copied += 1
    console.print(f"copied {copied} files to s3://{name}/{prefix} ({same} already up to date)")
