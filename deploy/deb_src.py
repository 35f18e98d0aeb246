#!/usr/bin/python3
"""Prints apt source entries (deb822) that add deb-src to Debian's own ones.

`apt-get source` needs the Sources index of the archive a binary package
came from. This reads the entries apt already uses (the one-line
sources.list format and deb822 .sources files) and prints, for every `deb`
entry whose suite is this release's (bookworm, bookworm-updates,
bookworm-security, ...), the same archive, suites and components as a
`deb-src` entry. Third-party repositories (other suite names) are left out:
many of them publish no sources, and apt-get update would fail on them.

Prints nothing when every such entry already has its deb-src twin.

Usage: deb_src.py CODENAME [APT_DIR]   (APT_DIR: /etc/apt)
"""

import glob
import os
import sys


def one_line_entries(path):
    """(type, uri, suite, components, signed_by) of a sources.list file."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if len(words) < 3 or words[0] not in ("deb", "deb-src"):
                continue
            kind, rest = words[0], words[1:]
            signed_by = ""
            if rest[0].startswith("["):  # [ option=value ... ]
                options = []
                while rest and not rest[0].endswith("]"):
                    options.append(rest.pop(0))
                options.append(rest.pop(0))
                for option in " ".join(options).strip("[] ").split():
                    if option.startswith("signed-by="):
                        signed_by = option.split("=", 1)[1]
            if len(rest) < 2:
                continue
            entries.append((kind, rest[0], rest[1], tuple(rest[2:]), signed_by))
    return entries


def deb822_entries(path):
    """The same tuples for every stanza of a deb822 .sources file."""
    entries = []
    with open(path, encoding="utf-8") as f:
        stanzas = f.read().split("\n\n")
    for stanza in stanzas:
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if fields.get("enabled", ["yes"])[0].lower() == "no":
            continue
        signed_by = " ".join(fields.get("signed-by", []))
        for kind in fields.get("types", []):
            for uri in fields.get("uris", []):
                for suite in fields.get("suites", []):
                    entries.append(
                        (kind, uri, suite, tuple(fields.get("components", [])), signed_by))
    return entries


def main():
    codename = sys.argv[1]
    apt_dir = sys.argv[2] if len(sys.argv) > 2 else "/etc/apt"
    entries = []
    lists = [os.path.join(apt_dir, "sources.list")]
    lists += sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*.list")))
    for path in lists:
        if os.path.exists(path):
            entries += one_line_entries(path)
    for path in sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*.sources"))):
        entries += deb822_entries(path)

    def ours(suite):
        return suite == codename or suite.startswith(codename + "-")

    have_src = {(uri, suite) for kind, uri, suite, _, _ in entries if kind == "deb-src"}
    missing = {}
    for kind, uri, suite, components, signed_by in entries:
        if kind == "deb" and ours(suite) and (uri, suite) not in have_src:
            missing.setdefault((uri, components, signed_by), []).append(suite)
    for (uri, components, signed_by), suites in missing.items():
        print("Types: deb-src")
        print("URIs: " + uri)
        print("Suites: " + " ".join(dict.fromkeys(suites)))
        print("Components: " + " ".join(components))
        if signed_by:
            print("Signed-By: " + signed_by)
        print()


if __name__ == "__main__":
    main()
