"""Registers container images in (moto's) ECR without a Docker engine: a stand-in for `docker push`.

The helper lives in the package (reconciler/emulator.py), where `reconcile demo` uses it too;
it is re-exported here so the tests keep importing it from where they always have.
"""
from reconciler.emulator import CONFIG_V1, LAYER_TAR_GZIP, MANIFEST_V2, image_manifest, register_image

__all__ = ["CONFIG_V1", "LAYER_TAR_GZIP", "MANIFEST_V2", "image_manifest", "register_image"]
