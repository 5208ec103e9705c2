#!/usr/bin/env bash
# The test-host image with docker.io already installed, for `bench/bootstrap.ts --docker-preinstalled`:
# scripts/testhosts/build-docker-image.sh (the image `up.sh --docker-preinstalled` boots). Prints its path.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/testhosts/build-docker-image.sh"
