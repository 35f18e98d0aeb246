#!/usr/bin/python3
"""Builds examples/layout: a small, reproducible OCI image layout.

Every blob is written under blobs/sha256/<hex> with its real digest, so the
layout can be read by imgsel, pushed with skopeo or pulled by containerd.
Each image's only layer holds /imgsel-variant, a file naming the entry, so a
test can tell which entry was unpacked. Run from anywhere; rewrites the
layout in place and is deterministic (fixed mtimes, no randomness).
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "layout")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def put(data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(OUT, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def canonical(obj) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"


def layer_tar(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        body = (name + "\n").encode()
        info = tarfile.TarInfo("imgsel-variant")
        info.size = len(body)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def image(name: str, os_: str, arch: str, variant: str = "", zstd: bool = False):
    tar = layer_tar(name)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    if zstd:
        layer = subprocess.run(["zstd", "-q", "-19", "-c"], input=tar, check=True,
                               capture_output=True).stdout
        layer_type = LAYER_ZSTD
    else:
        layer = gzip.compress(tar, mtime=0)
        layer_type = LAYER_GZIP
    config = {"architecture": arch, "os": os_,
              "config": {"Cmd": ["/imgsel-variant"]},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    if variant:
        config["variant"] = variant
    cfg = put(canonical(config))
    lay = put(layer)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": dict(mediaType=OCI_CONFIG, **cfg),
                "layers": [dict(mediaType=layer_type, **lay)]}
    return put(canonical(manifest))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "blobs", "sha256"))
    entries = []

    def add(desc, platform, annotations=None):
        d = dict(mediaType=OCI_MANIFEST, **desc)
        d["platform"] = platform
        if annotations:
            d["annotations"] = annotations
        entries.append(d)
        return d

    generic = add(image("generic-amd64", "linux", "amd64"),
                  {"os": "linux", "architecture": "amd64"})
    add(image("amd64-v3", "linux", "amd64", "v3"),
        {"os": "linux", "architecture": "amd64", "variant": "v3"})
    add(image("amd64-avx2-bmi2", "linux", "amd64"),
        {"os": "linux", "architecture": "amd64", "features": ["avx2", "bmi2"]})
    add(image("amd64-nvidia", "linux", "amd64"),
        {"os": "linux", "architecture": "amd64"},
        {"com.example.gpu": "nvidia"})
    add(image("amd64-zstd", "linux", "amd64", zstd=True),
        {"os": "linux", "architecture": "amd64"},
        {"io.github.containers.compression.zstd": "true"})
    add(image("arm64", "linux", "arm64"), {"os": "linux", "architecture": "arm64"})
    add(image("arm-v7", "linux", "arm", "v7"),
        {"os": "linux", "architecture": "arm", "variant": "v7"})
    # A BuildKit attestation manifest: an image manifest that no host can run.
    add(image("attestation", "unknown", "unknown"),
        {"os": "unknown", "architecture": "unknown"},
        {"vnd.docker.reference.digest": generic["digest"],
         "vnd.docker.reference.type": "attestation-manifest"})

    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    idx = put(canonical(index))
    layout_index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        dict(mediaType=OCI_INDEX, annotations={"org.opencontainers.image.ref.name": "demo"}, **idx)]}
    with open(os.path.join(OUT, "index.json"), "wb") as f:
        f.write(canonical(layout_index))
    with open(os.path.join(OUT, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    print(idx["digest"])


if __name__ == "__main__":
    main()
