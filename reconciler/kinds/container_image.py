"""container_image: the image `image.tag` in the repository; its live state is the digest
ECR holds for that tag.

Without `image.build` the tool never builds: when the tag is missing the plan says so and
apply refuses to go on (the function cannot be created or updated without it).

With `image.build` the desired image is the one built from the build context, identified by
its content hash (image_build.context): ECR must hold it under the content tag
`canvas-<first 16 hex>` *and* under `image.tag`. One DescribeImages on `image.tag` answers
both, since it lists every tag of the image the tag points at. When the content differs the
plan shows a `create` with `content_hash` (nothing about an image changes in place: a new
one is built and the tag moves to it); apply logs in to ECR, builds and pushes both tags,
and the function's code update follows from the digest change, pinned by digest.
"""
from __future__ import annotations

import base64

from reconciler.aws import absent_on
from reconciler.checks import DEFAULT_PLATFORM, PLATFORM_OF
from reconciler.diff import Field
from reconciler.errors import ReconcileError
from reconciler.image_build import docker
from reconciler.image_build.context import BuildSpec, build_spec, content_hash, content_tag
from reconciler.kinds.defaults import keep_desired
from reconciler.reserved import CONTENT_TAG_PREFIX

TYPE = "container_image"
SERVICE = "ecr"
FIELDS = (Field("tag"), Field("content_hash"))
# An image is never changed in place: a changed one is built anew and the tag moves to it.
CREATE_ON_CHANGE = True
# What the function's image_digest will be once a pending build has been pushed.
AFTER_BUILD = "(known after the build)"


def address_name(repository: str, tag: str) -> str:
    return f"{repository}:{tag}"


def desired(spec, target) -> dict:
    repository, tag = spec.repository["name"], spec.image["tag"]
    want = {"name": address_name(repository, tag), "repository": repository, "tag": tag,
            "uri": f"{target.repository_uri(repository)}:{tag}", "platform": _platform(spec),
            "build": None, "content_hash": None, "content_tag": None}
    build = build_spec(spec, platform=want["platform"])
    if build is not None:
        digest = content_hash(build)
        want.update(build=build.to_dict(), content_hash=digest, content_tag=content_tag(digest),
                    shown_build=_shown_build(spec))
    return want


def _platform(spec) -> str:
    build = spec.image.get("build") or {}
    if build.get("platform"):
        return build["platform"]
    architecture = (spec.function.get("architectures") or [None])[0]
    return PLATFORM_OF.get(architecture, DEFAULT_PLATFORM)


def _shown_build(spec) -> str:
    build = spec.image["build"]
    return f"{build.get('dockerfile', 'Dockerfile.lambda')} in {build.get('context', '.')}"


def read(clients, want: dict) -> dict | None:
    image = describe_tag(clients, want["repository"], want["tag"])
    if image is None:
        return None
    have = {"name": want["name"], "repository": want["repository"], "tag": want["tag"],
            "digest": image["imageDigest"]}
    if want.get("content_hash"):
        carried = sorted(t for t in image.get("imageTags", []) if t.startswith(CONTENT_TAG_PREFIX))
        have["up_to_date"] = want["content_tag"] in carried
        # The tag holds only the hash's first 16 hex digits: that is all ECR can tell of the old one.
        have["content_hash"] = want["content_hash"] if have["up_to_date"] else (
            carried[0].removeprefix(CONTENT_TAG_PREFIX) if carried else None)
    return have


def describe_tag(clients, repository: str, tag: str) -> dict | None:
    """ECR's imageDetails for the image `tag` points at (its digest and all its tags), or None."""
    answer = absent_on(("ImageNotFoundException", "RepositoryNotFoundException"),
                       lambda: clients.ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}]))
    return answer["imageDetails"][0] if answer and answer["imageDetails"] else None


def tag_digest(clients, repository: str, tag: str) -> str | None:
    """The digest the tag points at now, or None when the tag (or the repository) is not there."""
    image = describe_tag(clients, repository, tag)
    return image["imageDigest"] if image else None


def is_current(want_build: bool, have: dict | None) -> bool:
    """Whether the image the tag points at is the one canvas.yaml wants (always, without a build)."""
    return not want_build or bool(have and have.get("up_to_date"))


def note(want: dict, have: dict | None) -> str | None:
    if want.get("build") is None:
        if have is None:
            return f"image {want['name']} is not in ECR yet: push it before apply can create or update the function"
        return None
    if have is None:
        return (f"image {want['name']} is not in ECR yet: apply builds it from {want['shown_build']} "
                f"and pushes it as {want['content_tag']} and {want['tag']} (needs Docker)")
    if have.get("up_to_date"):
        return None
    if have.get("content_hash") is None:
        return (f"{want['tag']} was not built by canvas-reconcile from this context (it carries no canvas- tag): "
                f"apply builds {want['shown_build']} and pushes it (needs Docker)")
    return (f"the build context changed since {want['tag']} was built: apply builds {want['shown_build']} "
            f"and pushes it as {want['content_tag']} and {want['tag']} (needs Docker)")


def missing_image(want: dict, *, local: bool = False) -> ReconcileError:
    if local:
        return ReconcileError(f"image {want['name']} not found in the emulator's ECR — the emulator has no "
                              f"registry for docker push: run `reconcile stand-in-image` to register a stand-in "
                              f"image, then apply again")
    return ReconcileError(
        f"image {want['name']} not found in ECR — build and push it "
        f"(docker build --platform {want.get('platform', DEFAULT_PLATFORM)} --provenance=false -t {want['uri']} … "
        f"&& docker push {want['uri']}), "
        "or set image.tag to a tag that exists")


def create(clients, want: dict) -> None:
    if want.get("build") is None:
        # The tag may have been pushed since the plan was made: look once more before refusing.
        if tag_digest(clients, want["repository"], want["tag"]) is None:
            raise missing_image(want, local=clients.is_local())
        return
    image = describe_tag(clients, want["repository"], want["tag"])
    if image and want["content_tag"] in image.get("imageTags", []):
        clients.notify(f"{want['tag']} already carries {want['content_tag']} (pushed since the plan): nothing to build")
        return
    try:
        build_and_push(clients, want)
    except ReconcileError as exc:
        if not clients.is_local():
            raise
        raise ReconcileError(f"{exc} — a local emulator has no registry for a real docker push: run "
                             f"`reconcile stand-in-image` to register a stand-in under {want['content_tag']} and "
                             f"{want['tag']}, then apply again") from exc


def build_and_push(clients, want: dict) -> None:
    executable = docker.find_docker()
    buildx = docker.has_buildx(executable)
    build = BuildSpec.from_dict(want["build"])
    _refuse_if_changed_since_plan(build, want)
    _login(clients, executable, registry=want["uri"].split("/", 1)[0])
    # The content tag first: image.tag, the one the function follows, moves only once the
    # image is safely in ECR under its content tag.
    refs = [f"{want['uri'].rsplit(':', 1)[0]}:{want['content_tag']}", want["uri"]]
    argv = docker.build_command(executable, build, refs, buildx=buildx)
    clients.notify("$ " + docker.shown(argv))
    docker.run(argv, notify=clients.notify, what="docker build")
    for ref in refs:
        docker.run([executable, "push", ref], notify=clients.notify, what=f"docker push {ref}")
    digest = tag_digest(clients, want["repository"], want["tag"])
    if digest is None:
        raise ReconcileError(f"docker pushed {want['uri']}, but ECR does not list the tag {want['tag']}")
    clients.notify(f"{want['tag']} and {want['content_tag']} are {digest}")


def _refuse_if_changed_since_plan(build: BuildSpec, want: dict) -> None:
    # The image is tagged with the hash the plan showed; if the files moved on since, that
    # tag would describe something else and a later plan would skip a needed build.
    now = content_hash(build)
    if now != want["content_hash"]:
        raise ReconcileError(f"the build context changed after the plan was made (content hash "
                             f"{want['content_hash'][:16]}… is now {now[:16]}…) — run apply again to plan "
                             "and build what is there now")


def _login(clients, executable: str, *, registry: str) -> None:
    """docker login with ECR's username and password from GetAuthorizationToken (a base64
    "user:password"), the password on stdin."""
    data = clients.ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    docker.login(executable, registry=registry, username=username, password=password, notify=clients.notify)


def update(clients, want: dict, have: dict, paths) -> None:
    raise ReconcileError(f"{TYPE}.{want['name']} has nothing to update in place")


# The interface's optional members this kind has no use for (kinds.Kind).
CREATE_CALL_FIELDS: tuple[str, ...] = ()
REPLACE_ON_CHANGE = False
resolve = keep_desired
delete = None  # images go with their repository (destroy)
