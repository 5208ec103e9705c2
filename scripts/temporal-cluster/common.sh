# shellcheck shell=bash
# Shared by install.sh, up.sh and down.sh (sourced, not run): which Temporal server release and
# where its build is cached (outside the repo, like Kafka's jars and Hydra).
# v1.32.1 is the newest release whose go.mod accepts this machine's Go (1.26.8); v1.32.2 asks for
# go 1.26.10, which would need GOTOOLCHAIN=go1.27.3 in every shell that builds it.
TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-v1.32.1}"
if [ -z "${AXION_TEMPORAL_SERVER_HOME:-}" ]; then
  AXION_TEMPORAL_SERVER_HOME=/var/cache/axion-temporal-server
  if ! { mkdir -p "$AXION_TEMPORAL_SERVER_HOME" && [ -w "$AXION_TEMPORAL_SERVER_HOME" ]; } 2>/dev/null; then
    AXION_TEMPORAL_SERVER_HOME="${XDG_CACHE_HOME:-$HOME/.cache}/axion-temporal-server"
  fi
fi
TEMPORAL_SERVER_DIR="$AXION_TEMPORAL_SERVER_HOME/$TEMPORAL_SERVER_VERSION"
TEMPORAL_SERVER_BIN="$TEMPORAL_SERVER_DIR/bin"
