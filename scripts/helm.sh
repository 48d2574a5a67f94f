#!/usr/bin/env bash
# Prints the path of the project's pinned helm, installing it first when it is missing.
#   scripts/helm.sh            -> <repo>/.tools/bin/helm
# helm exists only as a Go module here (no download site), so it is built with `go install` from the
# Go module proxy at a pinned version into <repo>/.tools/bin (git-ignored). A helm of another version
# found there is replaced; a helm on PATH is not used (the committed kustomize base must render the
# same on every machine). v4 is the pinned one; v3 is the fallback only when v4 does not build, and
# then the script says so on stderr. Progress goes to stderr, the path alone to stdout.
set -euo pipefail

HELM_V4=helm.sh/helm/v4/cmd/helm@v4.3.2
HELM_V3=helm.sh/helm/v3/cmd/helm@v3.21.4

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/.tools/bin"
HELM="$BIN/helm"
STAMP="$BIN/helm.module" # the module@version the binary was built from

mkdir -p "$BIN"
# One installer at a time (tests may run in parallel); the others wait and reuse its binary.
exec 9>"$BIN/.helm.lock"
flock 9

if [[ -x "$HELM" && -f "$STAMP" ]] && grep -qxF -e "$HELM_V4" -e "$HELM_V3" "$STAMP"; then
    echo "$HELM"
    exit 0
fi

GO=$(command -v go || true)
[[ -z "$GO" && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
if [[ -z "$GO" ]]; then
    echo "helm.sh: helm is missing and there is no Go toolchain to build it (go install $HELM_V4);" >&2
    echo "         install Go (the machine image has it at /usr/local/go/bin/go) and try again" >&2
    exit 1
fi

rm -f "$HELM" "$STAMP"
start=$(date +%s)
for mod in "$HELM_V4" "$HELM_V3"; do
    echo "helm.sh: go install $mod (first time only; takes a few minutes)" >&2
    if GOBIN="$BIN" GOFLAGS=-buildvcs=false "$GO" install "$mod" >"$BIN/helm-install.log" 2>&1; then
        echo "$mod" >"$STAMP"
        echo "helm.sh: installed $mod in $(($(date +%s) - start)) s" >&2
        [[ "$mod" == "$HELM_V3" ]] && echo "helm.sh: NOTE: $HELM_V4 did not build; using $HELM_V3" >&2
        echo "$HELM"
        exit 0
    fi
    echo "helm.sh: go install $mod failed; the last lines of its output:" >&2
    tail -n 15 "$BIN/helm-install.log" | sed 's/^/  | /' >&2
done
echo "helm.sh: could not build helm ($HELM_V4, nor $HELM_V3)" >&2
exit 1
