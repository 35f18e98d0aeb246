#!/usr/bin/python3
"""Builds the imgseld container image as an OCI image layout, from the tree.

    deploy/image.py --imgseld BIN --imgsel BIN --out DIR [--tag NAME] [--busybox BIN]

No base image and no container engine. The one layer holds imgseld's
runtime root: the two binaries (/usr/sbin/imgseld, /usr/bin/imgsel), every
shared library `ldd` says they load (at the paths the loader looks for
them), the CA bundle for registries over TLS, Debian's statically linked
busybox (/bin/busybox, package busybox-static) and the empty directories
the systemd unit binds over. Beside it, in /usr/share/imgsel/, the
DaemonSet's installer (install-on-host.sh, run by `/bin/busybox sh`), the
two systemd units it writes on the node, and rootfs.list: every entry of
the runtime root with the sha256 of each file, which the installer copies
to the node's /opt/imgsel/rootfs-ID (ID: the first 16 hex digits of the
list's own sha256) and checks.

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
BUSYBOX = "/bin/busybox"
DEPLOY = os.path.dirname(os.path.abspath(__file__))
# What the image carries for the installer, path in image -> file in deploy/.
INSTALLER_FILES = {
    "usr/share/imgsel/install-on-host.sh": "kubernetes/install-on-host.sh",
    "usr/share/imgsel/imgseld.service": "kubernetes/imgseld-rootfs.service",
    "usr/share/imgsel/imgseld.socket": "systemd/imgseld.socket",
    "usr/share/imgsel/imgseld-api.socket": "systemd/imgseld-api.socket",
}
ROOTFS_LIST = "usr/share/imgsel/rootfs.list"
# Mount points in the runtime root: what imgseld-rootfs.service binds over
# (BindPaths=, BindReadOnlyPaths=), the API file systems of MountAPIVFS=,
# PrivateTmp='s /tmp. The image carries them too (as the pod's mount points).
EMPTY_DIRS = ["etc/imgsel", "run/imgsel", "var/cache/imgsel", "tmp", "sys", "proc", "dev",
              "boot", "lib/modules", "etc/containerd/certs.d", "run/containerd"]
# File mount points of the unit; created empty on the node, not carried by
# the image (a container runtime mounts its own /etc/hosts, /etc/resolv.conf).
EMPTY_FILES = ["etc/os-release", "etc/resolv.conf", "etc/hosts", "etc/nsswitch.conf"]
# Symlinks in the runtime root: ExecReload='s /bin/kill is busybox's.
LINKS = {"bin/kill": "busybox"}
# Directories only the pod uses: the installer's mounts.
POD_DIRS = ["config", "host"]
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


def file_entry(path_in_image: str, source, mode: int):
    """source: a file's path, or its content as bytes."""
    info = tarfile.TarInfo(path_in_image)
    if isinstance(source, bytes):
        data = source
    else:
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


def link_entry(path_in_image: str, target: str):
    info = tarfile.TarInfo(path_in_image)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    info.mtime = 0
    info.uname = info.gname = "root"
    return info


def layer(files: dict, dirs: list, links: dict) -> bytes:
    """files: path in image -> (source, mode), a source of bytes being the
    content itself; links: path in image -> target. Parents come first,
    then files and links, each sorted."""
    all_dirs = set(dirs)
    for path in list(files) + dirs + list(links):
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
        for path in sorted(links):
            tar.addfile(link_entry(path, links[path]))
    return buf.getvalue()


def sha256_of(source) -> str:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    with open(source, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def rootfs_list(files: dict) -> bytes:
    """The runtime root as install-on-host.sh reads it, one entry a line."""
    lines = ["# imgseld's runtime root, copied by install-on-host.sh to the node's",
             "# /opt/imgsel/rootfs-ID. d PATH: a directory; e PATH: an empty file",
             "# (a mount point); l PATH TARGET: a symlink; f PATH SHA256: a file of",
             "# this image, checked after the copy."]
    lines += [f"d {d}" for d in sorted(EMPTY_DIRS)]
    lines += [f"e {e}" for e in sorted(EMPTY_FILES)]
    lines += [f"f {path} {sha256_of(files[path][0])}" for path in sorted(files)]
    lines += [f"l {link} {target}" for link, target in sorted(LINKS.items())]
    return ("\n".join(lines) + "\n").encode()


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
    ap.add_argument("--busybox", default=BUSYBOX,
                    help="a statically linked busybox (Debian's busybox-static)")
    args = ap.parse_args()
    for b in (args.imgseld, args.imgsel):
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            fail(f"{b}: not an executable file")
    if not (os.path.isfile(args.busybox) and os.access(args.busybox, os.X_OK)):
        fail(f"{args.busybox}: missing; the DaemonSet's installer runs on it: install Debian's "
             "busybox-static (deploy/dev.sh deps)")
    ldd = subprocess.run(["ldd", args.busybox], capture_output=True, text=True)
    if "not a dynamic executable" not in ldd.stdout + ldd.stderr:
        fail(f"{args.busybox}: dynamically linked; the image needs Debian's busybox-static")

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
    files[BUSYBOX.lstrip("/")] = (args.busybox, 0o755)

    # The runtime root is what the node gets; the installer's files are the
    # pod's alone.
    image_files = dict(files)
    for path, source in INSTALLER_FILES.items():
        image_files[path] = (os.path.join(DEPLOY, source), 0o644)
    image_files[ROOTFS_LIST] = (rootfs_list(files), 0o644)

    os.makedirs(os.path.join(args.out, "blobs", "sha256"))
    tar = layer(image_files, EMPTY_DIRS + POD_DIRS, LINKS)
    shutil.rmtree(stripped)
    gz = gzip.compress(tar, compresslevel=6, mtime=0)
    layer_desc = dict(put(args.out, gz), mediaType=LAYER_GZIP)
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    labels = {"org.opencontainers.image.title": "imgseld",
              "org.opencontainers.image.version": version}
    config = dict(platform, created="1970-01-01T00:00:00Z", config={
        "Entrypoint": ["/bin/busybox", "sh", "/usr/share/imgsel/install-on-host.sh"],
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
