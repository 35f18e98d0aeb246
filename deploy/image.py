#!/usr/bin/python3
"""Builds the imgseld container image as an OCI image layout, from the tree.

    deploy/image.py --imgseld BIN --imgsel BIN --out DIR [--tag NAME]

No base image and no container engine: the one layer holds the two binaries
(/usr/sbin/imgseld, /usr/bin/imgsel), every shared library `ldd` says they
load (at the paths the loader looks for them), the CA bundle for registries
over TLS, and the empty directories the DaemonSet mounts over. Everything
else imgseld reads on a node (/sys, /proc, /etc/os-release, containerd's
socket) comes from the host through the DaemonSet's mounts.

The build is reproducible for the same binaries and libraries: file times,
owners and order are fixed, gzip carries no name or time. Prints the
manifest digest, which the DaemonSet pins. Push with
`skopeo copy --preserve-digests oci:DIR:TAG docker://REGISTRY/imgsel/imgseld:VERSION`.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Mount points of the DaemonSet and a writable /tmp for a read-only root.
EMPTY_DIRS = ["etc/imgsel", "run/imgsel", "var/cache/imgsel", "tmp", "sys", "proc", "boot",
              "lib/modules", "etc/containerd/certs.d", "run/containerd"]
# Debian architecture -> OCI platform. Debian's amd64 build targets the
# baseline ISA, so the image is generic amd64 (no variant, no features).
PLATFORMS = {"amd64": ("amd64", ""), "arm64": ("arm64", ""), "armhf": ("arm", "v7"),
             "ppc64el": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


def fail(msg: str):
    print(f"image.py: {msg}", file=sys.stderr)
    sys.exit(2)


def shared_libraries(binary: str) -> list:
    """Paths the dynamic loader opens for `binary`, as it names them."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"ldd {binary}: {out.stderr.strip() or out.stdout.strip()}")
    paths = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            fail(f"{binary}: a library is missing on this machine: {line}")
        m = re.match(r"^\S+ => (/\S+) \(0x[0-9a-f]+\)$", line) or re.match(
            r"^(/\S+) \(0x[0-9a-f]+\)$", line)
        if m:
            paths.append(m.group(1))
    if not paths:
        fail(f"ldd {binary}: no libraries listed (a static binary is not expected here)")
    return paths


def file_entry(path_in_image: str, source: str, mode: int):
    info = tarfile.TarInfo(path_in_image)
    with open(source, "rb") as f:
        data = f.read()
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info, data


def dir_entry(path_in_image: str):
    info = tarfile.TarInfo(path_in_image)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    info.uname = info.gname = "root"
    return info


def layer(files: dict, dirs: list) -> bytes:
    """files: path in image -> (source, mode). Parents come first, sorted."""
    all_dirs = set(dirs)
    for path in list(files) + dirs:
        parent = os.path.dirname(path)
        while parent:
            all_dirs.add(parent)
            parent = os.path.dirname(parent)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(all_dirs):
            tar.addfile(dir_entry(d))
        for path in sorted(files):
            source, mode = files[path]
            info, data = file_entry(path, source, mode)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def put(out: str, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def canonical(obj) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"


def version_of(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    m = re.match(r"^imgseld (\S+)$", out.stdout.strip())
    if out.returncode != 0 or not m:
        fail(f"{binary} --version: unexpected answer {out.stdout.strip()!r}")
    return m.group(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imgseld", required=True)
    ap.add_argument("--imgsel", required=True)
    ap.add_argument("--out", required=True, help="OCI image layout directory (replaced)")
    ap.add_argument("--tag", default="imgseld", help="ref.name of the image in the layout")
    args = ap.parse_args()
    for b in (args.imgseld, args.imgsel):
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            fail(f"{b}: not an executable file")

    version = version_of(args.imgseld)
    deb_arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                              text=True).stdout.strip()
    if deb_arch not in PLATFORMS:
        fail(f"architecture {deb_arch!r}: no OCI platform known for it")
    arch, variant = PLATFORMS[deb_arch]

    # The image carries the binaries without debug sections (a tenth of the
    # size); keep the build tree's copies for debugging.
    shutil.rmtree(args.out, ignore_errors=True)
    stripped = os.path.join(args.out, ".stripped")
    os.makedirs(stripped)
    files = {}
    for binary, path in ((args.imgseld, "usr/sbin/imgseld"), (args.imgsel, "usr/bin/imgsel")):
        copy = os.path.join(stripped, os.path.basename(path))
        r = subprocess.run(["objcopy", "--strip-debug", binary, copy], capture_output=True,
                           text=True)
        if r.returncode != 0:
            fail(f"objcopy --strip-debug {binary}: {r.stderr.strip()}")
        files[path] = (copy, 0o755)
    for binary in (args.imgseld, args.imgsel):
        for lib in shared_libraries(binary):
            files[lib.lstrip("/")] = (os.path.realpath(lib), 0o755)
    if os.path.isfile(CA_BUNDLE):
        files[CA_BUNDLE.lstrip("/")] = (CA_BUNDLE, 0o644)
    else:
        print(f"image.py: warning: {CA_BUNDLE} missing; registries over TLS will not verify",
              file=sys.stderr)

    os.makedirs(os.path.join(args.out, "blobs", "sha256"))
    tar = layer(files, EMPTY_DIRS)
    shutil.rmtree(stripped)
    gz = gzip.compress(tar, compresslevel=6, mtime=0)
    layer_desc = dict(put(args.out, gz), mediaType=LAYER_GZIP)
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    labels = {"org.opencontainers.image.title": "imgseld",
              "org.opencontainers.image.version": version}
    config = dict(platform, created="1970-01-01T00:00:00Z", config={
        "Entrypoint": ["/usr/sbin/imgseld"],
        "Cmd": ["--config", "/etc/imgsel/imgsel.toml"],
        "Env": ["PATH=/usr/sbin:/usr/bin"],
        "Labels": labels,
    }, rootfs={"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]})
    config_desc = dict(put(args.out, canonical(config)), mediaType=OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                "layers": [layer_desc], "annotations": labels}
    manifest_desc = dict(put(args.out, canonical(manifest)), mediaType=OCI_MANIFEST,
                         platform=platform,
                         annotations={"org.opencontainers.image.ref.name": args.tag})
    with open(os.path.join(args.out, "index.json"), "wb") as f:
        f.write(canonical({"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": [manifest_desc]}))
    with open(os.path.join(args.out, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    print(manifest_desc["digest"])


if __name__ == "__main__":
    main()
