# Sourced by the parity scripts: sets REPO and WORK (a temporary folder, removed on exit) and checks
# out commit $BEFORE as a worktree in $WORK/before, whose package PYTHONPATH="$WORK/before" imports.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'git -C "$REPO" worktree remove --force "$WORK/before" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
git -C "$REPO" worktree add --detach "$WORK/before" "$BEFORE" >/dev/null 2>&1
LOADED=$(PYTHONPATH="$WORK/before" python -c "import tailored_harness; print(tailored_harness.__file__)")
case "$LOADED" in "$WORK/before/"*) echo "before: $BEFORE, imported from $LOADED";;
  *) echo "PYTHONPATH did not select the worktree's package ($LOADED)"; exit 1;; esac
