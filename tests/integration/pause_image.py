#!/usr/bin/python3
"""Writes a pause image as an OCI image layout, for RunPodSandbox in tests.

    tests/integration/pause_image.py --out DIR [--tag pause] [--busybox /bin/busybox]

One layer: Debian's statically linked busybox (busybox-static) at
/bin/busybox; the entrypoint sleeps until the sandbox is stopped
(containerd stops a sandbox's container with SIGKILL). Built with
deploy/image.py's layer and blob writers; prints the manifest digest.
"""
import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy"))
import image  # noqa: E402  deploy/image.py


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="OCI image layout directory (replaced)")
    ap.add_argument("--tag", default="pause")
    ap.add_argument("--busybox", default=image.BUSYBOX)
    args = ap.parse_args()
    if not os.access(args.busybox, os.X_OK):
        image.fail(f"{args.busybox}: missing; install Debian's busybox-static")
    deb_arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                              text=True).stdout.strip()
    if deb_arch not in image.PLATFORMS:
        image.fail(f"architecture {deb_arch!r}: no OCI platform known for it")
    arch, variant = image.PLATFORMS[deb_arch]

    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(os.path.join(args.out, "blobs", "sha256"))
    tar = image.layer({"bin/busybox": (args.busybox, 0o755)}, ["tmp"], {})
    layer_desc = dict(image.put(args.out, gzip.compress(tar, mtime=0)),
                      mediaType=image.LAYER_GZIP)
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    config = dict(platform, created="1970-01-01T00:00:00Z", config={
        "Entrypoint": ["/bin/busybox", "sleep", "2147483647"],
    }, rootfs={"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]})
    config_desc = dict(image.put(args.out, image.canonical(config)), mediaType=image.OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": image.OCI_MANIFEST, "config": config_desc,
                "layers": [layer_desc]}
    manifest_desc = dict(image.put(args.out, image.canonical(manifest)),
                         mediaType=image.OCI_MANIFEST, platform=platform,
                         annotations={"org.opencontainers.image.ref.name": args.tag})
    with open(os.path.join(args.out, "index.json"), "wb") as f:
        f.write(image.canonical({"schemaVersion": 2, "mediaType": image.OCI_INDEX,
                                 "manifests": [manifest_desc]}))
    with open(os.path.join(args.out, "oci-layout"), "wb") as f:
        f.write(image.canonical({"imageLayoutVersion": "1.0.0"}))
    print(manifest_desc["digest"])


if __name__ == "__main__":
    main()
