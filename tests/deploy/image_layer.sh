# Shared by the deploy tests: the image deploy/image.py writes has one layer.
#
# unpack_image_layer LAYOUT DIR -- unpacks the layer of the OCI layout's
# first manifest into DIR (created); fails when there is none to unpack.
unpack_image_layer() {
  local layout="$1" dir="$2" layer
  layer="$(/usr/bin/python3 -c '
import json, sys
d = sys.argv[1]
idx = json.load(open(d + "/index.json"))
m = json.load(open(d + "/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
print(m["layers"][0]["digest"][7:])' "$layout")" || return 1
  mkdir -p "$dir" && tar -xzf "$layout/blobs/sha256/$layer" -C "$dir"
}
