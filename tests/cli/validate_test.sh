#!/usr/bin/env bash
# imgsel validate end to end: exit codes 0/1/2 and messages with FILE:LINE:COLUMN.
# Usage: validate_test.sh IMGSEL DATA_DIR   (DATA_DIR = tests/data/compat)
set -uo pipefail
IMGSEL="$1"
D="$2"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"

expect "valid NFD spec"            0 "valid nfd spec, 3 compatibility set(s), 9 rule(s)" -- validate "$D/realistic.yaml"
expect "valid Proposal F spec"     0 "valid keyValueGroups spec, 2 compatibility set(s)" -- validate "$D/groups.json"
expect "syntax error has a place"  1 "broken_syntax.yaml:6:1: error: YAML" -- validate "$D/broken_syntax.yaml"
expect "value count with place"    1 "invalid.yaml:10:" -- validate "$D/invalid.yaml"
expect "every problem listed"      1 "invalid.yaml: invalid (6 errors, 0 warnings)" -- validate "$D/invalid.yaml"
expect "regexp error"              1 "invalid.yaml:14:" -- validate "$D/invalid.yaml"
expect "unknown op"                1 "invalid.yaml:19:" -- validate "$D/invalid.yaml"
expect "missing file"              2 "imgsel:" -- validate "$TMP/nope.yaml"
expect "no FILE is usage"          2 "FILE" -- validate
expect "bad --output is usage"     2 "--output" -- validate --output yaml "$D/realistic.yaml"

# JSON: the problems as data, and the spec's verdict for a saved host.
out="$("$IMGSEL" validate --output json "$D/invalid.yaml")"
if /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert not d["valid"]; assert len([p for p in d["problems"] if p["severity"]=="error"])==6; assert d["problems"][0]["line"]==4' "$out"; then
  echo "ok   json problems"
else
  echo "FAIL json problems"; echo "$out" | head -20; failures=$((failures + 1))
fi

expect "host matches, best weight" 0 "compatible, weight 20" -- validate "$D/realistic.yaml" --host-profile "$D/host_avx2.json"
expect "validate-node style rows"  0 "RULE: CPU AVX-512 - FAIL" -- validate "$D/realistic.yaml" --host-profile "$D/host_avx2.json"
expect "gpu host gets set 1"       0 "compatible, weight 30" -- validate "$D/realistic.yaml" --host-profile "$D/host_gpu.json"
printf '{"platform": {"os": "linux", "architecture": "amd64"}, "nfd": {}}\n' > "$TMP/bare.json"
expect "no set matches is 1"       1 "no compatibility set matches" -- validate "$D/realistic.yaml" --host-profile "$TMP/bare.json"
expect "unreadable profile is 2"   2 "imgsel:" -- validate "$D/realistic.yaml" --host-profile "$TMP/missing.json"
out="$("$IMGSEL" validate --output json "$D/realistic.yaml" --host-profile "$D/host_gpu.json")"
if /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["hostMatches"] and d["weight"]==30; s=d["compatibilities"][0]; assert s["isMatch"] and s["rules"][0]["matchedExpressions"][0]["matcherType"]=="matchExpression"' "$out"; then
  echo "ok   json host result"
else
  echo "FAIL json host result"; echo "$out" | head -20; failures=$((failures + 1))
fi

finish
