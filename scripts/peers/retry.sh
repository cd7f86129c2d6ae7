# Sourced by the peer scripts: `retry CMD ARGS…` runs a package install up to three times,
# 15 s apart. The package registries reached from here lag at times (a dependency's new
# release is listed before it can be fetched), and one such moment must not fail a CI run.
retry() {
  local attempt
  for attempt in 1 2 3; do
    if "$@"; then
      return 0
    fi
    if [[ $attempt -lt 3 ]]; then
      echo "install failed (attempt $attempt of 3); trying again in 15 s" >&2
      sleep 15
    fi
  done
  return 1
}
