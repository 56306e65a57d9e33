"""`reconcile stand-in-image`: put a placeholder image into a local emulator's ECR under the tags
apply looks for, so canvas.yaml can be tried end to end against `reconcile local` without Docker.

moto's ECR has no registry (`docker push` cannot reach it) and runs no containers, so the image
is only a manifest registered with PutImage. With `image.build` it is registered under the
content tag as well, exactly as a real build would be, so apply finds it and does not build.
Refused against anything but an endpoint on this machine: on AWS it would replace a real image.
"""
from __future__ import annotations

from reconciler.errors import ReconcileError
from reconciler.kinds import container_image, ecr_repository


def refuse_unless_local(clients) -> None:
    """Checked before any call is made: nothing is sent to an endpoint that is not on this machine."""
    for service in ("ecr", "sts"):
        if not clients.is_local(service):
            raise ReconcileError(f"stand-in-image only works against a local emulator (reconcile local); "
                                 f"{clients.client(service).meta.endpoint_url} is not on this machine — on "
                                 f"AWS, build and push a real image")


def put_stand_in_image(spec, clients, target) -> list[str]:
    """Register the stand-in; returns the lines saying what was done."""
    refuse_unless_local(clients)
    endpoint = clients.ecr.meta.endpoint_url
    from reconciler.emulator import register_image  # moto's helpers load only for this command

    lines = []
    repository = ecr_repository.desired(spec, target)
    if ecr_repository.read(clients, repository) is None:
        ecr_repository.create(clients, repository)
        lines.append(f"Created ecr_repository.{repository['name']} (as apply would).")
    image = container_image.desired(spec, target)
    tags = [image["content_tag"], image["tag"]] if image["content_tag"] else [image["tag"]]
    content = f"canvas-reconcile stand-in image for {spec.stack}: {image['content_hash'] or image['tag']}"
    for tag in tags:
        try:
            digest = register_image(clients.ecr, repository["name"], tag, content.encode())
        except clients.ecr.exceptions.ImageAlreadyExistsException:  # run twice: the same stand-in is there
            digest = clients.ecr.describe_images(repositoryName=repository["name"], imageIds=[{"imageTag": tag}])[
                "imageDetails"][0]["imageDigest"]
            lines.append(f"The stand-in image is already {repository['name']}:{tag} ({digest}) at {endpoint}.")
            continue
        lines.append(f"Registered a stand-in image as {repository['name']}:{tag} ({digest}) at {endpoint}.")
    lines.append("It is a manifest only: the emulator runs no containers. Now run reconcile plan / apply.")
    return lines
