"""``visionloop faces collection|index|list|delete|search|user``: face collections in the data folder,
run in this process with the face analyser (the server's collections: the same database)."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from visionloop.cli.analyze import _analysis_inputs
from visionloop.cli.app import Context, console, emit, pass_ctx
from visionloop.cli.faces import faces
from visionloop.errors import InvalidInput

QUALITY = click.Choice(["NONE", "AUTO", "LOW", "MEDIUM", "HIGH"])


def _one_image(image: str) -> Any:
    return _analysis_inputs((image,))[0]


def _tags(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"a tag is KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


# --- collections -----------------------------------------------------------------------------------------


@faces.group("collection")
def collection() -> None:
    """Create, list, describe and delete face collections."""


@collection.command("create")
@click.argument("name")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@pass_ctx
def collection_create(ctx: Context, name: str, tags: tuple[str, ...]) -> None:
    """A new, empty collection NAME of the current face model."""
    from visionloop.core import collections as col

    c = col.create_collection(ctx.services, ctx.analysers, name, _tags(tags))
    console.print(f"collection {c.name} created ({c.face_model_version})")


@collection.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def collection_list(ctx: Context, as_json: bool) -> None:
    """The collections with their face and user counts."""
    from visionloop.api.collections import collection_json
    from visionloop.core import collections as col

    found = col.list_collections(ctx.services)

    def render() -> None:
        table = Table("collection", "faces", "users", "face model", "created")
        for c in found:
            table.add_row(
                c.name, str(c.face_count), str(c.user_count), c.face_model_version, f"{c.created_at:%F %R}"
            )
        console.print(table)

    emit([collection_json(c) for c in found], as_json, render)


@collection.command("describe")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def collection_describe(ctx: Context, name: str, as_json: bool) -> None:
    """A collection's counts, face model and tags."""
    from visionloop.api.collections import collection_json
    from visionloop.core import collections as col

    doc = collection_json(col.describe_collection(ctx.services, name))
    emit(doc, as_json, lambda: console.print("\n".join(f"{k}: {v}" for k, v in doc.items())))


@collection.command("delete")
@click.argument("name")
@pass_ctx
def collection_delete(ctx: Context, name: str) -> None:
    """Delete a collection with its faces, their vectors and its users."""
    from visionloop.core import collections as col

    col.delete_collection(ctx.services, name)
    console.print(f"collection {name} deleted")


# --- faces -----------------------------------------------------------------------------------------------


@faces.command("index")
@click.argument("name", metavar="COLLECTION")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--external-id", help="ExternalImageId of the faces (default: none).")
@click.option("--max-faces", type=int, help="Index at most the N largest faces of each image (1-100).")
@click.option("--quality-filter", type=QUALITY, default="AUTO", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def faces_index(
    ctx: Context,
    name: str,
    images: tuple[str, ...],
    external_id: str | None,
    max_faces: int | None,
    quality_filter: str,
    as_json: bool,
) -> None:
    """Add the faces of IMAGES (files or s3://bucket/key) to COLLECTION (IndexFaces)."""
    from visionloop.api.collections import index_json
    from visionloop.core import collections as col

    options = col.IndexOptions(external_id, ("DEFAULT",), max_faces, quality_filter)
    results = []
    for image, source in zip(images, _analysis_inputs(images), strict=True):
        try:
            results.append(col.index_faces(ctx.services, ctx.analysers, name, source, options))
        except InvalidInput as e:
            raise InvalidInput(f"{image}: {e.message}") from None

    def render() -> None:
        table = Table("image", "face id", "box", "conf.", "left out")
        for image, r in zip(images, results, strict=True):
            for x in r.indexed:
                b = x.face.box
                box = f"{b.left:.2f} {b.top:.2f} {b.width:.2f}×{b.height:.2f}"
                table.add_row(image, x.face.face_id, box, f"{x.face.confidence:.1f}", "")
            for u in r.unindexed:
                table.add_row(image, "", "", f"{u.detail.confidence:.1f}", ", ".join(u.reasons))
        console.print(table)

    emit([{"image": i, **index_json(r)} for i, r in zip(images, results, strict=True)], as_json, render)


def _faces_table(rows: list[tuple[str, Any]], title: str) -> Table:
    table = Table("similarity", "face id", "external id", "user", title=title)
    for similarity, f in rows:
        table.add_row(similarity, f.face_id, f.external_image_id or "", f.user_id or "")
    return table


@faces.command("list")
@click.argument("name", metavar="COLLECTION")
@click.option("--user", "user_id", help="Only the faces of this user.")
@click.option("--limit", type=int, default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def faces_list(ctx: Context, name: str, user_id: str | None, limit: int, as_json: bool) -> None:
    """The faces of COLLECTION, oldest first (ListFaces)."""
    from visionloop.api.collections import face_json
    from visionloop.core import collections as col

    _, found = col.list_faces(ctx.services, name, user_id=user_id, limit=limit)
    emit(
        [face_json(f) for f in found],
        as_json,
        lambda: console.print(_faces_table([("", f) for f in found], name)),
    )


@faces.command("delete")
@click.argument("name", metavar="COLLECTION")
@click.argument("face_ids", nargs=-1, required=True, metavar="FACE_ID...")
@pass_ctx
def faces_delete(ctx: Context, name: str, face_ids: tuple[str, ...]) -> None:
    """Delete faces from COLLECTION (a user's faces are kept: disassociate them first)."""
    from visionloop.core import collections as col

    deleted, failed = col.delete_faces(ctx.services, name, face_ids)
    console.print(f"{len(deleted)} face(s) deleted")
    for u in failed:
        console.print(f"{u.face_id}: {', '.join(u.reasons)}")


@faces.command("search")
@click.argument("name", metavar="COLLECTION")
@click.argument("image", required=False, metavar="[IMAGE]")
@click.option("--face-id", help="Search with a stored face instead of an image (SearchFaces).")
@click.option("--threshold", type=float, default=80.0, show_default=True, help="Similarity 0-100.")
@click.option("--max-faces", type=int, default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def faces_search(
    ctx: Context,
    name: str,
    image: str | None,
    face_id: str | None,
    threshold: float,
    max_faces: int,
    as_json: bool,
) -> None:
    """The faces of COLLECTION like IMAGE's largest face (SearchFacesByImage) or a stored face."""
    from visionloop.api.collections import search_json
    from visionloop.core import collections as col

    if (image is None) == (face_id is None):
        raise InvalidInput("give an IMAGE or --face-id, not both")
    options = col.SearchOptions(max_faces, threshold)
    svc = ctx.services
    if face_id is not None:
        r = col.search_faces(svc, ctx.analysers, name, face_id, options)
    else:
        assert image is not None
        r = col.search_faces_by_image(svc, ctx.analysers, name, _one_image(image), options)
    rows = [(f"{m.similarity:.1f}", m.face) for m in r.matches]
    emit(search_json(r), as_json, lambda: console.print(_faces_table(rows, f"{name}: {len(rows)} match(es)")))


# --- users -----------------------------------------------------------------------------------------------


@faces.group("user")
def user() -> None:
    """Users of a collection: create, list, delete, give them faces, search them."""


@user.command("create")
@click.argument("name", metavar="COLLECTION")
@click.argument("user_id", metavar="USER")
@pass_ctx
def user_create(ctx: Context, name: str, user_id: str) -> None:
    """A user with no face yet."""
    from visionloop.core import collections as col

    col.create_user(ctx.services, name, user_id)
    console.print(f"user {user_id} created in {name}")


@user.command("list")
@click.argument("name", metavar="COLLECTION")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def user_list(ctx: Context, name: str, as_json: bool) -> None:
    """The users of COLLECTION with their status and face count."""
    from visionloop.api.collections import user_json
    from visionloop.core import collections as col

    found = col.list_users(ctx.services, name)

    def render() -> None:
        table = Table("user", "status", "faces", title=name)
        for u in found:
            table.add_row(u.user_id, u.status.value, str(u.face_count))
        console.print(table)

    emit([user_json(u) for u in found], as_json, render)


@user.command("delete")
@click.argument("name", metavar="COLLECTION")
@click.argument("user_id", metavar="USER")
@pass_ctx
def user_delete(ctx: Context, name: str, user_id: str) -> None:
    """Delete a user; its faces stay, associated with nobody."""
    from visionloop.core import collections as col

    col.delete_user(ctx.services, name, user_id)
    console.print(f"user {user_id} deleted from {name}")


def _association(r: Any, verb: str) -> None:
    console.print(f"{len(r.done)} face(s) {verb}; the user is {r.status.value}")
    for u in r.failed:
        extra = f" (similarity {u.confidence:.1f})" if u.confidence is not None else ""
        console.print(f"{u.face_id}: {', '.join(u.reasons)}{extra}")


@user.command("associate")
@click.argument("name", metavar="COLLECTION")
@click.argument("user_id", metavar="USER")
@click.argument("face_ids", nargs=-1, required=True, metavar="FACE_ID...")
@click.option("--threshold", type=float, default=75.0, show_default=True, help="UserMatchThreshold 0-100.")
@pass_ctx
def user_associate(
    ctx: Context, name: str, user_id: str, face_ids: tuple[str, ...], threshold: float
) -> None:
    """Give faces to USER (AssociateFaces)."""
    from visionloop.core import collections as col

    _association(
        col.associate_faces(ctx.services, ctx.analysers, name, user_id, face_ids, threshold), "associated"
    )


@user.command("disassociate")
@click.argument("name", metavar="COLLECTION")
@click.argument("user_id", metavar="USER")
@click.argument("face_ids", nargs=-1, required=True, metavar="FACE_ID...")
@pass_ctx
def user_disassociate(ctx: Context, name: str, user_id: str, face_ids: tuple[str, ...]) -> None:
    """Take faces from USER (DisassociateFaces)."""
    from visionloop.core import collections as col

    _association(col.disassociate_faces(ctx.services, name, user_id, face_ids), "disassociated")


@user.command("search")
@click.argument("name", metavar="COLLECTION")
@click.argument("image", required=False, metavar="[IMAGE]")
@click.option("--user", "user_id", help="Search with a user's faces instead of an image.")
@click.option("--threshold", type=float, default=80.0, show_default=True, help="Similarity 0-100.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def user_search(
    ctx: Context, name: str, image: str | None, user_id: str | None, threshold: float, as_json: bool
) -> None:
    """The users of COLLECTION like IMAGE's largest face (SearchUsersByImage) or like a user."""
    from visionloop.api.collections import user_search_json
    from visionloop.core import collections as col

    if (image is None) == (user_id is None):
        raise InvalidInput("give an IMAGE or --user, not both")
    options = col.UserSearchOptions(threshold=threshold)
    if user_id is not None:
        r = col.search_users(ctx.services, ctx.analysers, name, user_id=user_id, options=options)
    else:
        assert image is not None
        r = col.search_users_by_image(ctx.services, ctx.analysers, name, _one_image(image), options)

    def render() -> None:
        table = Table("similarity", "user", "status", title=f"{name}: {len(r.matches)} user(s)")
        for m in r.matches:
            table.add_row(f"{m.similarity:.1f}", m.user.user_id, m.user.status.value)
        console.print(table)

    emit(user_search_json(r), as_json, render)
